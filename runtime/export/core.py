"""Exports of a graph, each verified numerically as it is written.

Formats (see docs/export.md), one module each in ``formats/``:
- ``bundle``: graph JSON + safetensors weights + manifest, a directory or one ``.zip``
  (the native format of a trained model; loading it never runs code);
- ``torchscript``: ``torch.jit.script`` of the compiled module, ``torch.jit.trace`` where
  a layer cannot be scripted;
- ``pt2``: a ``torch.export`` program with a dynamic batch dimension (and sequence length
  where torch can keep it dynamic);
- ``onnx``: the legacy (TorchScript-based) exporter with explicit names and dynamic axes,
  checked with onnxruntime at two batch sizes (and two sequence lengths);
- ``python``: a directory with model.py (readable standalone code), weights.safetensors
  and train.py (the training configuration, runs under torchrun with DDP).

Compiling is in ``prepare``, the comparison in ``verify``, the write-then-move of the
files in ``staging``. Every export compares the written artefact's outputs with the
compiled module's at two batch sizes and fails (ExportError) when the largest difference
exceeds the tolerance; a failed export leaves nothing at its target.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import torch

from ..compiler import signature
from ..diagnostics import first_line
from ..graph import GraphDocument
from .formats.bundle import BUNDLE_FORMAT, export_bundle, load_bundle
from .formats.onnx import ONNX_OPSET, export_onnx
from .formats.pt2 import export_pt2
from .formats.python import export_python
from .formats.torchscript import export_torchscript
from .prepare import Prepared, make_inputs, other_steps, prepare, steps_label
from .result import (DEFAULT_SUFFIX, FORMAT_TITLES, FORMATS, Capability, ExportError,
                     ExportResult, Progress)
from .staging import check_target, staged
from .verify import ATOL, RTOL, compare, reference
from .weights import WeightsError

__all__ = ["ATOL", "BUNDLE_FORMAT", "DEFAULT_SUFFIX", "EXPORTERS", "FORMATS", "FORMAT_TITLES",
           "ONNX_OPSET", "RTOL", "UNSUPPORTED", "Capability", "ExportError", "ExportResult",
           "Prepared", "capabilities", "compare", "export", "export_prepared", "load_bundle",
           "make_inputs", "other_steps", "prepare", "reference", "steps_label"]


# Node types a format cannot carry, with the reason (measured with torch 2.13).
UNSUPPORTED: dict[str, dict[str, str]] = {
    "onnx": {},
    "pt2": {},
    "torchscript": {},
    "python": {},
    "bundle": {},
}


def capabilities(doc: GraphDocument) -> dict[str, Capability]:
    """Per format: whether this graph can be exported, and why not (or its limits)."""
    from ..diagnostics import has_errors
    from ..pipeline import validate

    diags = validate(doc)
    if has_errors(diags):
        first = next(d for d in diags if d.is_error)
        why = f"the graph has errors (first: {first})"
        return {f: Capability(False, why) for f in FORMATS}
    sig = signature(doc)
    caps: dict[str, Capability] = {}
    types = {n.type for n in doc}
    recurrent = sorted(t for t in types if any(k in t for k in ("LSTM", "GRU", "RNN")))
    loops = _loop_regions(doc)
    for f in FORMATS:
        if not sig.outputs:
            caps[f] = Capability(False, "the graph has no output or loss prediction to export")
            continue
        bad = sorted((t, UNSUPPORTED[f][t]) for t in types if t in UNSUPPORTED[f])
        if bad:
            caps[f] = Capability(False, "; ".join(f"{t}: {r}" for t, r in bad))
            continue
        notes = ""
        if f in ("pt2", "onnx", "torchscript") and (recurrent or loops):
            notes = ("recurrent graph: the export is checked at a second sequence length; "
                     "where the format cannot keep the length dynamic it is fixed at the "
                     "analysed length and the result says so (the batch is always dynamic)")
        elif f == "torchscript":
            notes = "TorchScript is deprecated in PyTorch; prefer .pt2 for deployment"
        elif f == "python" and loops:
            notes = ("hand-drawn recurrent cells are written as a per-step module and a plain "
                     "time loop (the app runs them on torch's fused kernels): outputs agree "
                     "to float precision, not bit for bit")
        elif f == "python" and not sig.losses:
            notes = "no loss nodes: model.py only, no train.py"
        caps[f] = Capability(True, notes)
    return caps


def _loop_regions(doc: GraphDocument) -> list[str]:
    from ..topology import find_regions, has_recurrent_nodes

    if not has_recurrent_nodes(doc):
        return []
    regions, _ = find_regions(doc)
    return [", ".join(r.nodes[:3]) + (" ..." if len(r.nodes) > 3 else "") for r in regions if r.steps]


EXPORTERS = {"bundle": export_bundle, "torchscript": export_torchscript, "pt2": export_pt2,
             "onnx": export_onnx, "python": export_python}


def export(doc: GraphDocument, fmt: str, out: str | Path,
           weights: Mapping[str, torch.Tensor] | str | Path | None = None,
           progress: Progress | None = None, *, overwrite: bool = False) -> ExportResult:
    """Write ``doc`` in ``fmt`` to ``out`` and verify it; ExportError with a plain message
    (never another exception) when it cannot be written or does not match.

    The output appears only once complete and verified (written beside it, then moved into
    place); an existing ``out`` is replaced only with ``overwrite``."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_target(Path(out).expanduser(), overwrite=overwrite)
    progress = progress or (lambda f, m: None)
    try:
        progress(0.05, "compiling the graph")
        p = prepare(doc, weights)
    except ExportError:
        raise
    except WeightsError as exc:
        raise ExportError(str(exc)) from None
    except Exception as exc:
        raise ExportError(f"cannot compile the graph: {type(exc).__name__}: {first_line(exc)}") from None
    return export_prepared(p, fmt, out, progress, overwrite=overwrite)


def export_prepared(p: Prepared, fmt: str, out: str | Path,
                    progress: Progress | None = None, *, overwrite: bool = False) -> ExportResult:
    """Like :func:`export` for a graph already compiled by :func:`prepare` (one compile
    for several formats)."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    progress = progress or (lambda f, m: None)
    out = Path(out).expanduser().resolve()
    check_target(out, overwrite=overwrite)
    folder = fmt == "python" or (fmt == "bundle" and out.suffix.lower() != ".zip")
    if folder and out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory (the {fmt} export writes a "
                          "directory; for a single-file bundle use a .zip name)")
    if not folder and out.is_dir():
        raise ExportError(f"{out} is a directory: give a file name for the {fmt} export")
    t0 = time.perf_counter()
    result = ExportResult(fmt, out)
    try:
        progress(0.3, f"writing {FORMAT_TITLES[fmt]}")
        with staged(out) as where:
            try:
                EXPORTERS[fmt](p, where, result)
            except ExportError as exc:  # name the target, not the staging folder
                raise ExportError(str(exc).replace(str(where), str(out))
                                  + _non_finite_weights(p)) from None
            result.files = [out / f.relative_to(where) if f != where else out
                            for f in result.files]
        _note_unused_inputs(p, fmt, result)
        progress(1.0, "verified")
    except ExportError:
        raise
    except WeightsError as exc:
        raise ExportError(str(exc)) from None
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc} (nothing was "
                          "written)") from None
    except Exception as exc:  # a bug of ours or a torch failure: still a plain message
        raise ExportError(f"{fmt} export failed: {type(exc).__name__}: {first_line(exc)}") from None
    result.seconds = time.perf_counter() - t0
    return result


def _non_finite_weights(p: Prepared) -> str:
    """'; weights holding NaN or inf: fc1.weight' (what makes a check fail that way)."""
    bad = [k for k, v in p.state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if not bad:
        return ""
    return "; weights holding NaN or inf: " + ", ".join(bad[:6]) + (" ..." if len(bad) > 6 else "")


def _note_unused_inputs(p: Prepared, fmt: str, result: ExportResult) -> None:
    """Inputs and targets left on the canvas feeding nothing are not part of the model (see
    compiler.signature); inputs only the losses need stay inputs of the prediction."""
    sig = p.sig
    stray = [n.id for n in p.doc if n.spec.source_kind in ("input", "target")
             and n.id not in sig.inputs + sig.targets]
    if stray:
        many = len(stray) > 1
        result.notes.append(f"{'nodes' if many else 'node'} {', '.join(stray)} "
                            f"feed{'' if many else 's'} no output or loss: left out of the "
                            "model (not an input, no data bound to it)")
    idle = [n.name for n in p.predict.graph.nodes if n.op == "placeholder" and not n.users]
    if idle and fmt != "bundle":
        many = len(idle) > 1
        result.notes.append(f"input{'s' if many else ''} {', '.join(idle)} "
                            f"feed{'' if many else 's'} only the losses: kept as "
                            f"{'inputs' if many else 'an input'} the prediction ignores, so "
                            "it takes the same inputs as training")
