"""Exports of a graph, each verified numerically as it is written.

Formats (see docs/export.md):
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

Every export compares the written artefact's outputs with the compiled module's at two
batch sizes and fails (ExportError) when the largest difference exceeds the tolerance.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import fx

from ..analysis import Analysis
from ..pipeline import analyze, flatten
from ..compiler import (CompileError, Signature, build_module, class_name, random_source,
                        signature)
from ..graph import GraphDocument
from ..serialization import (GraphFileError, atomic_write_bytes, atomic_write_text, dumps,
                             loads)
from .weights import (WeightsError, apply_weights, load_safetensors_bytes, load_weights,
                      save_safetensors, state_dict_for_file)

FORMATS = ("bundle", "torchscript", "pt2", "onnx", "python")
FORMAT_TITLES = {
    "bundle": "Netbuilder bundle (graph JSON + safetensors weights)",
    "torchscript": "TorchScript (.pt)",
    "pt2": "torch.export program (.pt2)",
    "onnx": "ONNX (.onnx)",
    "python": "PyTorch code (model.py + train.py + weights)",
}
DEFAULT_SUFFIX = {"bundle": ".zip", "torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx",
                  "python": ""}
BUNDLE_FORMAT = "netbuilder.bundle"
ATOL = 1e-4  # absolute tolerance (plus RTOL times the largest reference value)
RTOL = 1e-4
ONNX_OPSET = 17
Progress = Callable[[float, str], None]


class ExportError(Exception):
    """An export that could not be written or did not pass its check (plain message)."""


@dataclass
class ExportResult:
    format: str
    path: Path
    files: list[Path] = field(default_factory=list)
    verified: bool = False
    max_abs_diff: float = 0.0
    checks: list[str] = field(default_factory=list)  # what was compared, one line each
    notes: list[str] = field(default_factory=list)  # limits the user should know
    seconds: float = 0.0

    def summary(self) -> str:
        head = (f"{self.format}: wrote {self.path} - verified, max abs difference "
                f"{self.max_abs_diff:.3g}" if self.verified else f"{self.format}: wrote {self.path}")
        return "\n".join([head] + [f"  check: {c}" for c in self.checks]
                         + [f"  note: {n}" for n in self.notes])


@dataclass
class Capability:
    supported: bool
    reason: str = ""  # why not (or a limit when supported)


# ---- preparing the modules ------------------------------------------------------------


@dataclass
class Prepared:
    doc: GraphDocument
    analysis: Analysis
    sig: Signature
    predict: fx.GraphModule
    train: fx.GraphModule | None  # superset of predict's layers; None without losses
    state: dict[str, torch.Tensor]  # weights of all layers (train module's names)
    class_name: str
    seq_inputs: tuple[int, ...]  # indices of inputs with a time axis (dim 1)
    seq_variable: bool  # the eager module accepts other sequence lengths (seq_groups)
    # inputs whose lengths vary, grouped: one group per length the graph ties together
    # (its own group for an input the graph does not tie to another), with the second
    # length each group is checked at; the seq inputs in no group have a fixed length
    seq_groups: tuple[tuple[tuple[int, ...], int], ...] = ()

    @property
    def owner(self) -> torch.nn.Module:
        return self.train if self.train is not None else self.predict

    @property
    def seq_fixed(self) -> tuple[int, ...]:
        """Sequence inputs whose length the graph itself fixes."""
        grouped = {i for g, _ in self.seq_groups for i in g}
        return tuple(i for i in self.seq_inputs if i not in grouped)


def prepare(doc: GraphDocument, weights: Mapping[str, torch.Tensor] | str | Path | None = None,
            *, weights_source: str = "weights", seed: int = 0) -> Prepared:
    """Compile ``doc`` (train and predict modules sharing one set of weights)."""
    sig = signature(doc)
    if not sig.outputs:
        raise ExportError("the graph has no output: add an Output node or a loss whose "
                          "prediction can be exported")
    analysis = analyze(doc)
    try:
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's RNG untouched
            torch.manual_seed(seed)
            train = build_module(doc, mode="train", analysis=analysis) if sig.losses else None
            predict = build_module(doc, mode="predict", analysis=analysis)
    except CompileError as exc:
        lines = [str(d) for d in exc.diagnostics if d.is_error]
        raise ExportError("the graph has errors:\n  " + "\n  ".join(lines)) from None
    owner = train if train is not None else predict
    if isinstance(weights, (str, Path)):
        weights_source = str(weights)
        weights = load_weights(weights)  # WeightsError for a bad or unsafe file
    if weights is not None:
        apply_weights(owner, weights, weights_source)
    state = state_dict_for_file(owner)
    if train is not None:
        predict.load_state_dict({k: state[k] for k in predict.state_dict()}, strict=True)
    owner.eval()
    predict.eval()
    seq_inputs = tuple(i for i, nid in enumerate(sig.inputs)
                       if doc.nodes[nid].type in ("SequenceInput", "TokenInput"))
    p = Prepared(doc, analysis, sig, predict, train, state, class_name(doc), seq_inputs, False)
    if seq_inputs:
        p.seq_groups = _length_groups(p)
        p.seq_variable = bool(p.seq_groups)
    return p


def _default_steps(p: Prepared, i: int) -> int:
    """The length of sequence input ``i`` (its index in the signature) in the graph."""
    node = p.doc.nodes[p.sig.inputs[i]]
    return int(node.spec.source_shape(node.params)[0])


def _runs_at(p: Prepared, steps: dict[int, int]) -> bool:
    try:
        with torch.no_grad():
            p.predict(*make_inputs(p, 2, steps=steps))
        return True
    except Exception:
        return False


def _length_groups(p: Prepared) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Which sequence lengths can vary, and which the graph ties together: an input whose
    length varies alone gets its own group; inputs that only run when their lengths change
    together (e.g. added step by step) share one; any other input is fixed. Each group's
    second length moves in the other direction from the previous group's (20 and 24 steps
    are checked again at 17 and 27), so two independent lengths are never checked equal."""
    def candidates(t: int, k: int) -> list[int]:
        down, up = ([t - 3] if t >= 8 else []), [t + 3]
        return down + up if k % 2 == 0 else up + down

    groups: list[tuple[tuple[int, ...], int]] = []
    pending: list[int] = []
    for i in p.seq_inputs:
        t = _default_steps(p, i)
        other = next((o for o in candidates(t, len(groups)) if _runs_at(p, {i: o})), None)
        if other is None:
            pending.append(i)
        else:
            groups.append(((i,), other))
    tied: list[list[int]] = []  # inputs that cannot vary alone, by the length they share
    for i in pending:
        for g in tied:
            if _default_steps(p, g[0]) == _default_steps(p, i):
                g.append(i)
                break
        else:
            tied.append([i])
    for g in tied:
        while len(g) > 1:
            t = _default_steps(p, g[0])
            other = next((o for o in candidates(t, len(groups))
                          if _runs_at(p, {j: o for j in g})), None)
            if other is not None:
                groups.append((tuple(g), other))
                break
            g.pop()  # the last one may be fixed on its own: try the others without it
    groups.sort(key=lambda g: g[0][0])
    if groups and not _runs_at(p, _steps_of(groups)):
        return ()  # the lengths interact in a way these checks do not cover: keep them all
    return tuple(groups)


def _steps_of(groups) -> dict[int, int]:
    return {i: t for g, t in groups for i in g}


def _other_steps(p: Prepared) -> dict[int, int]:
    """The second length of every sequence input that can vary (signature index -> steps)."""
    return _steps_of(p.seq_groups)


def _steps_label(p: Prepared, steps: Mapping[int, int]) -> str:
    """'source 17 steps, previous 27 steps' (one name per input)."""
    return ", ".join(f"{p.sig.inputs[i]} {t} steps" for i, t in sorted(steps.items()))


def _fixed_lengths(p: Prepared, indices=None) -> str:
    """'source at 20 steps, previous at 24 steps': each input's fixed length."""
    idx = p.seq_inputs if indices is None else indices
    return ", ".join(f"{p.sig.inputs[i]} at {_default_steps(p, i)} steps" for i in idx)


def _fixed_note(p: Prepared, where: str, why: str, indices=None) -> str:
    idx = tuple(p.seq_inputs if indices is None else indices)
    what = "the sequence length is" if len(idx) == 1 else "the sequence lengths are"
    return f"{what} fixed {where}: {_fixed_lengths(p, idx)} ({why})"


def _axis_name(p: Prepared, i: int) -> str:
    """The dynamic time axis of sequence input ``i``: its own (steps_<input id>), or the one
    it shares with the inputs the graph ties it to (steps_<id>_<id>...)."""
    group = next(g for g, _ in p.seq_groups if i in g)
    return "steps_" + "_".join(p.sig.inputs[j] for j in group)


def make_inputs(p: Prepared, batch: int, *, steps: int | Mapping[int, int] | None = None,
                seed: int = 1, targets: bool = False) -> tuple[torch.Tensor, ...]:
    """Random inputs (and targets); ``steps``: one length for every sequence input, or a
    length per sequence input (signature index -> steps; the others keep the graph's)."""
    if isinstance(steps, int):
        steps = {i: steps for i in p.seq_inputs}
    steps = dict(steps or {})
    gen = torch.Generator().manual_seed(seed + 1000 * batch + sum(steps.values()))
    ids = p.sig.inputs + (p.sig.targets if targets else ())
    out = []
    for i, nid in enumerate(ids):
        node = p.doc.nodes[nid]
        shape = [batch] + list(node.spec.source_shape(node.params))
        if i < len(p.sig.inputs) and i in steps:
            shape[1] = steps[i]
        out.append(random_source(node, shape, gen))
    return tuple(out)


def _seq_case(p: Prepared, batch: int = 3) -> tuple[str, tuple[torch.Tensor, ...]]:
    steps = _other_steps(p)
    return (f"batch {batch}, {_steps_label(p, steps)}", make_inputs(p, batch, steps=steps))


def _cases(p: Prepared, seq: bool = True) -> list[tuple[str, tuple[torch.Tensor, ...]]]:
    """The input sets every export is checked on: two batch sizes (and sequence lengths)."""
    cases = [("batch 1", make_inputs(p, 1)), ("batch 4", make_inputs(p, 4))]
    if seq and p.seq_inputs and p.seq_variable:
        cases.append(_seq_case(p))
    return cases


def _as_tuple(y) -> tuple[torch.Tensor, ...]:
    if isinstance(y, torch.Tensor):
        return (y,)
    if isinstance(y, dict):
        return tuple(y.values())
    return tuple(y)


def reference(p: Prepared, inputs) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return _as_tuple(p.predict(*inputs))


def compare(ref, got, what: str) -> float:
    got = _as_tuple(got)
    if len(ref) != len(got):
        raise ExportError(f"{what}: {len(got)} outputs, expected {len(ref)}")
    worst = 0.0
    for i, (r, g) in enumerate(zip(ref, got)):
        g = torch.as_tensor(g)
        if tuple(g.shape) != tuple(r.shape):
            raise ExportError(f"{what}: output {i} has shape {tuple(g.shape)}, expected "
                              f"{tuple(r.shape)}")
        if r.numel() == 0:
            continue
        diff = float((g.to(torch.float64) - r.to(torch.float64)).abs().max())
        scale = float(r.abs().max()) if r.is_floating_point() else 0.0
        if not diff <= ATOL + RTOL * scale:
            raise ExportError(f"{what}: output {i} differs by {diff:.3g} from the compiled "
                              f"model (tolerance {ATOL + RTOL * scale:.3g})")
        worst = max(worst, diff)
    return worst


def _check(p: Prepared, run: Callable, result: ExportResult, label: str,
           cases=None) -> None:
    for name, inputs in cases or _cases(p):
        ref = reference(p, inputs)
        try:
            with torch.no_grad():
                got = run(inputs)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{label} failed to run at {name}: {_first_line(exc)}") from None
        d = compare(ref, got, f"{label} at {name}")
        result.max_abs_diff = max(result.max_abs_diff, d)
        result.checks.append(f"{label} vs compiled model at {name}: max abs diff {d:.3g}")
    result.verified = True


# ---- bundle --------------------------------------------------------------------------


def _manifest(p: Prepared) -> dict[str, Any]:
    from .. import __version__

    return {"format": BUNDLE_FORMAT, "version": 1, "netbuilder": __version__,
            "torch": torch.__version__.split("+")[0], "graph": "graph.json",
            "weights": "weights.safetensors", "inputs": list(p.sig.inputs),
            "targets": list(p.sig.targets), "outputs": list(p.sig.outputs),
            "losses": list(p.sig.losses)}


def export_bundle(p: Prepared, out: Path, result: ExportResult) -> None:
    from safetensors.torch import save

    graph = dumps(p.doc).encode("utf-8")
    weights = save(p.state, metadata={"format": "pt"})
    manifest = (json.dumps(_manifest(p), indent=2) + "\n").encode("utf-8")
    files = {"manifest.json": manifest, "graph.json": graph, "weights.safetensors": weights}
    if out.suffix.lower() == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        atomic_write_bytes(out, buf.getvalue())
        result.files = [out]
    else:
        if out.exists() and not out.is_dir():
            raise ExportError(f"{out} exists and is not a directory (use a .zip name for "
                              "a single-file bundle)")
        for name, data in files.items():
            atomic_write_bytes(out / name, data)
        result.files = [out / n for n in files]
    doc2, state2 = load_bundle(out)
    q = prepare(doc2, state2, weights_source=str(out))
    _check(p, lambda x: q.predict(*x), result, "bundle reloaded")


def load_bundle(path: str | Path) -> tuple[GraphDocument, dict[str, torch.Tensor]]:
    """Read a bundle (directory or .zip): JSON and safetensors only, never code."""
    path = Path(path)
    try:
        if path.is_dir():
            read = lambda name: (path / name).read_bytes()  # noqa: E731
        elif zipfile.is_zipfile(path):
            z = zipfile.ZipFile(path)
            read = z.read
        elif not path.exists():
            raise ExportError(f"{path}: no such file or directory")
        else:
            raise ExportError(f"{path}: not a Netbuilder bundle (expected a directory or a .zip)")
        try:
            manifest = json.loads(read("manifest.json"))
        except (KeyError, FileNotFoundError):
            manifest = {"graph": "graph.json", "weights": "weights.safetensors"}
        if manifest.get("format", BUNDLE_FORMAT) != BUNDLE_FORMAT:
            raise ExportError(f"{path}: manifest.json is not a Netbuilder bundle manifest")
        doc = loads(read(manifest.get("graph", "graph.json")).decode("utf-8"),
                    f"{path}/graph.json")
        state = load_safetensors_bytes(read(manifest.get("weights", "weights.safetensors")),
                                       f"{path}/weights.safetensors")
    except (KeyError, FileNotFoundError) as exc:
        raise ExportError(f"{path}: bundle is missing {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise ExportError(f"{path}: damaged bundle ({_first_line(exc)})") from None
    except (GraphFileError, WeightsError) as exc:
        raise ExportError(str(exc)) from None
    return doc, state


# ---- TorchScript ---------------------------------------------------------------------


@contextlib.contextmanager
def _quiet():
    """Silence torch's deprecation and tracer warnings (we verify numerically instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_torchscript(p: Prepared, out: Path, result: ExportResult) -> None:
    with _quiet():
        try:
            scripted = torch.jit.script(p.predict)
            how = "torch.jit.script"
        except Exception as exc:
            why = _first_line(exc)
            example = make_inputs(p, 2)
            try:
                scripted = torch.jit.trace(p.predict, example, check_trace=False, strict=False)
            except Exception as exc2:
                raise ExportError(f"TorchScript: cannot script ({why}) nor trace "
                                  f"({_first_line(exc2)}) the model") from None
            how = "torch.jit.trace"
            result.notes.append(f"scripting failed ({why[:120]}); traced instead: control flow "
                                "is fixed to the traced path")
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
        atomic_write_bytes(out, buf.getvalue())
        loaded = torch.jit.load(str(out), map_location="cpu")
    result.files = [out]
    result.checks.append(f"written with {how}; reloaded with torch.jit.load")
    cases = _cases(p)
    if how == "torch.jit.trace" and p.seq_inputs and p.seq_variable:
        name, xs = cases[-1]
        try:
            with torch.no_grad(), _quiet():
                compare(reference(p, xs), loaded(*xs), "trace")
        except Exception:
            cases = cases[:-1]
            result.notes.append(_fixed_note(p, "in the traced TorchScript module",
                                            "the trace unrolled the time loop"))
    _note_graph_fixed(p, result)
    with _quiet():
        _check(p, lambda x: loaded(*x), result, "TorchScript", cases)


def _note_graph_fixed(p: Prepared, result: ExportResult) -> None:
    """Say which sequence lengths the graph itself fixes (whatever the format)."""
    if p.seq_fixed:
        result.notes.append(_fixed_note(p, "by the graph", "it needs that length, e.g. a "
                                        "Flatten or Dense over time", p.seq_fixed))


# ---- torch.export --------------------------------------------------------------------


def _dynamic_shapes(p: Prepared, seq: bool):
    """Dim("batch") on every input's first axis; with ``seq``, Dim.AUTO (one per input, so
    torch.export keeps each length its own unless the graph ties them) on the time axis of
    every sequence input whose length can vary."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=1 << 20)
    grouped = set(_other_steps(p)) if seq else set()
    shapes = []
    for i, _ in enumerate(p.sig.inputs):
        d: dict[int, Any] = {0: batch}
        if i in grouped:
            d[1] = Dim.AUTO
        shapes.append(d)
    return tuple(shapes)


def _pt2_time_symbols(p: Prepared, ep) -> dict[int, str | None]:
    """Per sequence input (signature index): the program's symbol for its time axis, None
    where torch.export fixed the length."""
    vals = {n.name: n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"}
    user = list(ep.graph_signature.user_inputs)
    out: dict[int, str | None] = {}
    for i in p.seq_inputs:
        v = vals.get(user[i]) if i < len(user) else None
        d = v.shape[1] if v is not None and getattr(v, "dim", lambda: 0)() > 1 else None
        out[i] = str(d) if isinstance(d, torch.SymInt) else None
    return out


def export_pt2(p: Prepared, out: Path, result: ExportResult) -> None:
    example = make_inputs(p, 2)
    want_seq = bool(p.seq_inputs and p.seq_variable)
    with _quiet():
        try:
            ep = torch.export.export(p.predict, example, dynamic_shapes=_dynamic_shapes(p, want_seq))
        except Exception as exc:
            raise ExportError(f"torch.export failed: {_first_line(exc)}") from None
        buf = io.BytesIO()
        torch.export.save(ep, buf)
        atomic_write_bytes(out, buf.getvalue())
        loaded = torch.export.load(str(out)).module()
    result.files = [out]
    cases = _cases(p, seq=False)
    kept: list[tuple[tuple[int, ...], int]] = []  # groups whose length the program keeps
    if want_seq:
        sym = _pt2_time_symbols(p, ep)
        for g, t in p.seq_groups:
            names = {sym[i] for i in g}
            if None not in names and len(names) == 1:
                kept.append((g, t))
        # two groups the graph does not tie must not share one symbol either
        seen = [sym[g[0]] for g, _ in kept]
        kept = [(g, t) for g, t in kept if seen.count(sym[g[0]]) == 1]
        if kept:
            steps = _steps_of(kept)
            seq_case = (f"batch 3, {_steps_label(p, steps)}", make_inputs(p, 3, steps=steps))
            try:
                with torch.no_grad(), _quiet():
                    loaded(*seq_case[1])
                cases.append(seq_case)
            except Exception:
                kept = []
        lost = sorted(i for g, t in p.seq_groups if (g, t) not in kept for i in g)
        if lost:
            result.notes.append(_fixed_note(
                p, "in the .pt2 program", "torch.export could not keep it dynamic for this "
                "graph; the batch size is dynamic", lost))
        dyn = ", ".join(f"{p.sig.inputs[i]} ({sym[i]})" for g, _ in kept for i in g)
    result.checks.append("written with torch.export.export (batch dimension dynamic"
                         + (f"; time axes dynamic: {dyn}" if kept else "")
                         + "); reloaded with torch.export.load")
    _note_graph_fixed(p, result)
    with _quiet():
        _check(p, lambda x: loaded(*x), result, ".pt2", cases)


# ---- ONNX ----------------------------------------------------------------------------


def export_onnx(p: Prepared, out: Path, result: ExportResult) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("ONNX export needs the onnxruntime package to verify the file") from None
    seq = bool(p.seq_inputs and p.seq_variable)
    done = False
    if seq:
        try:
            _export_onnx(p, out, result, ort, True)
            done = True
        except ExportError:
            result.checks.clear()
            result.max_abs_diff = 0.0
            result.notes.append(_fixed_note(p, "in the ONNX file", "the exporter traced the "
                                            "time loop for one length", sorted(_other_steps(p))))
    if not done:
        _export_onnx(p, out, result, ort, False)
    _note_graph_fixed(p, result)


def _onnx_axes(p: Prepared, names_in: list[str], names_out: list[str], seq: bool):
    """dynamic_axes: batch everywhere; with ``seq``, each varying sequence input's time
    axis under its own name (steps_<input id>, shared only by inputs the graph ties), and
    an output axis that follows an input's length under that input's name."""
    axes: dict[str, dict[int, str]] = {}
    for i, n in enumerate(names_in):
        axes[n] = {0: "batch"}
        if seq and i in _other_steps(p):
            axes[n][1] = _axis_name(p, i)
    with torch.no_grad():
        ref = reference(p, make_inputs(p, 2))
        alt = reference(p, make_inputs(p, 2, steps=_other_steps(p))) if seq else ref
    for n, r, a in zip(names_out, ref, alt):
        axes[n] = {0: "batch"} if r.dim() else {}
        for d in range(1, r.dim()):
            if r.shape[d] == a.shape[d]:
                continue
            axes[n][d] = next((_axis_name(p, g[0]) for g, t in p.seq_groups
                               if _default_steps(p, g[0]) == r.shape[d] and t == a.shape[d]),
                              f"{n}_dim{d}")
    return axes


def _keep_unused_inputs(data: bytes, p: Prepared, names_in: list[str],
                        axes: dict[str, dict[int, str]]) -> bytes:
    """The exporter drops an input nothing uses; put it back (ignored) so the file takes
    the same inputs, in the same order, as every other format."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load_from_string(data)
    have = {i.name: i for i in m.graph.input}
    if all(n in have for n in names_in):
        return data
    for i, n in enumerate(names_in):
        if n in have:
            continue
        node = p.doc.nodes[n]
        shape = [axes[n].get(0, "batch")] + list(node.spec.source_shape(node.params))
        for d, name in axes[n].items():
            shape[d] = name
        dtype = make_inputs(p, 1)[i].dtype
        have[n] = helper.make_tensor_value_info(
            n, TensorProto.INT64 if dtype == torch.int64 else TensorProto.FLOAT, shape)
    rest = [v for k, v in have.items() if k not in names_in]
    del m.graph.input[:]
    m.graph.input.extend([have[n] for n in names_in] + rest)
    return m.SerializeToString()


def _export_onnx(p: Prepared, out: Path, result: ExportResult, ort, seq: bool) -> None:
    names_in = list(p.sig.inputs)
    names_out = [f"{o}" if o not in names_in else f"{o}_out" for o in p.sig.outputs]
    example = make_inputs(p, 2)
    axes = _onnx_axes(p, names_in, names_out, seq)
    buf = io.BytesIO()
    with _quiet(), contextlib.redirect_stdout(io.StringIO()):
        try:
            torch.onnx.export(p.predict, example, buf, dynamo=False, input_names=names_in,
                              output_names=names_out, dynamic_axes=axes,
                              opset_version=ONNX_OPSET, do_constant_folding=True)
        except Exception as exc:
            raise ExportError(f"ONNX export failed: {_first_line(exc)}") from None
    data = buf.getvalue()
    try:
        import onnx

        data = _keep_unused_inputs(data, p, names_in, axes)
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as exc:
        raise ExportError(f"the ONNX file fails onnx.checker: {_first_line(exc)}") from None
    atomic_write_bytes(out, data)
    result.files = [out]
    try:
        so = ort.SessionOptions()
        # fatal only: a failed run reaches us as an exception (3 still printed onnxruntime's
        # error log to stderr, e.g. while trying a dynamic length the file cannot take)
        so.log_severity_level = 4
        sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load the exported file: {_first_line(exc)}") from None
    steps = ", ".join(f"{names_in[i]} ({axes[names_in[i]][1]})"
                      for i in sorted(_other_steps(p))) if seq else ""
    result.checks.append(f"written with the TorchScript-based exporter (opset {ONNX_OPSET}, "
                         "dynamic batch" + (f", dynamic steps: {steps}" if seq else "")
                         + "); checked with onnx.checker and onnxruntime "
                         f"{ort.__version__}")

    def run(x):
        feeds = {n: t.numpy() for n, t in zip(names_in, x)}
        return tuple(torch.from_numpy(a) for a in sess.run(names_out, feeds))
    _check(p, run, result, "onnxruntime", _cases(p, seq=seq))


# ---- Python code -----------------------------------------------------------------------


_BLOCK_NETBUILDER = r'''
import importlib.abc, importlib.util, json, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("runtime", "app", "graph_editor", "netbuilder"):
            raise ImportError(f"the generated code imported {name}: it must not need Netbuilder")
        return None
sys.meta_path.insert(0, _Block())
import torch
from safetensors.torch import load_file, save_file
spec = importlib.util.spec_from_file_location("model", sys.argv[1])
model_mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(model_mod)
cls = getattr(model_mod, sys.argv[2])
model = cls.from_pretrained(sys.argv[3]).eval()
cases = json.loads(sys.argv[5])
data = load_file(sys.argv[4])
out = {}
with torch.no_grad():
    for c in range(cases):
        xs = [data[f"{c}/{i}"] for i in range(len(model_mod.INPUTS))]
        y = model(*xs)
        y = y if isinstance(y, tuple) else (y,)
        for j, t in enumerate(y):
            out[f"{c}/{j}"] = t.contiguous()
    if model_mod.LOSSES:
        xs = [data[f"loss/{i}"] for i in range(len(model_mod.INPUTS) + len(model_mod.TARGETS))]
        out["loss"] = model.compute_losses(*xs)["loss"].reshape(1)
save_file(out, sys.argv[6])
bad = [m for m in sys.modules if m.split(".")[0] in ("runtime", "app", "graph_editor")]
assert not bad, bad
'''


def export_python(p: Prepared, out: Path, result: ExportResult) -> None:
    from .pycode import CodegenError, generate_model_code
    from .trainscript import generate_train_script

    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory (python export writes a "
                          "directory with model.py, weights.safetensors and train.py)")
    doc, analysis, sig = p.doc, p.analysis, p.sig
    flat = flatten(doc)  # code has one attribute per layer: blocks are inlined (C1 -> block1__C1)
    if flat is not doc:
        doc, analysis, sig = flat, analyze(flat), signature(flat)
    try:
        code = generate_model_code(doc, analysis, p.predict, p.train, sig, p.class_name)
    except CodegenError as exc:
        raise ExportError(f"cannot write the model as Python code: {exc}") from None
    compile(code, "model.py", "exec")  # a syntax error here is a bug of ours
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "model.py", code)
    save_safetensors(p.state, out / "weights.safetensors", {"format": "pt"})
    files = [out / "model.py", out / "weights.safetensors"]
    if p.train is not None:
        from .trainscript import dataset_arrays

        atomic_write_text(out / "train.py", generate_train_script(p))
        files.append(out / "train.py")
        arrays, why = dataset_arrays(p.doc)
        if arrays is not None:
            import numpy as np

            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            atomic_write_bytes(out / "data.npz", buf.getvalue())
            files.append(out / "data.npz")
        result.notes.append(why)
    result.files = files
    _note_graph_fixed(p, result)
    cases = _cases(p)
    with tempfile.TemporaryDirectory(prefix="nb-verify-") as tmp:
        tensors = {f"{c}/{i}": t for c, (_, xs) in enumerate(cases) for i, t in enumerate(xs)}
        loss_ref = None
        if p.train is not None:
            xs = make_inputs(p, 4, targets=True, seed=7)
            for i, t in enumerate(xs):
                tensors[f"loss/{i}"] = t
            with torch.no_grad():
                loss_ref = p.train(*xs)["loss"].reshape(1)
        save_safetensors(tensors, Path(tmp) / "inputs.safetensors")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONNOUSERSITE"] = "1"
        env.setdefault("OMP_NUM_THREADS", "1")  # tiny inputs: threads only add overhead
        cmd = [sys.executable, "-c", _BLOCK_NETBUILDER, str(out / "model.py"), p.class_name,
               str(out / "weights.safetensors"), str(Path(tmp) / "inputs.safetensors"),
               str(len(cases)), str(Path(tmp) / "outputs.safetensors")]
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=180)
        except subprocess.TimeoutExpired:
            raise ExportError("the generated model.py did not finish within 180 s") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ExportError("the generated model.py failed in a fresh process without "
                              "Netbuilder: " + " | ".join(tail))
        from safetensors.torch import load_file

        got = load_file(str(Path(tmp) / "outputs.safetensors"))
    for c, (name, xs) in enumerate(cases):
        ref = reference(p, xs)
        outs = tuple(got[f"{c}/{j}"] for j in range(len(ref)))
        d = compare(ref, outs, f"model.py at {name}")
        result.max_abs_diff = max(result.max_abs_diff, d)
        result.checks.append(f"model.py (fresh process, Netbuilder blocked) at {name}: "
                             f"max abs diff {d:.3g}")
    if loss_ref is not None:
        d = compare((loss_ref,), (got["loss"],), "model.py compute_losses")
        result.max_abs_diff = max(result.max_abs_diff, d)
        result.checks.append(f"model.py compute_losses (batch 4): loss diff {d:.3g}")
    result.verified = True


# ---- capabilities and the entry point -------------------------------------------------

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
           progress: Progress | None = None) -> ExportResult:
    """Write ``doc`` in ``fmt`` to ``out`` and verify it; ExportError with a plain message
    (never another exception) when it cannot be written or does not match."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    progress = progress or (lambda f, m: None)
    try:
        progress(0.05, "compiling the graph")
        p = prepare(doc, weights)
    except ExportError:
        raise
    except WeightsError as exc:
        raise ExportError(str(exc)) from None
    except Exception as exc:
        raise ExportError(f"cannot compile the graph: {type(exc).__name__}: {_first_line(exc)}") from None
    return export_prepared(p, fmt, out, progress)


def export_prepared(p: Prepared, fmt: str, out: str | Path,
                    progress: Progress | None = None) -> ExportResult:
    """Like :func:`export` for a graph already compiled by :func:`prepare` (one compile
    for several formats)."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    progress = progress or (lambda f, m: None)
    out = Path(out).expanduser().resolve()
    t0 = time.perf_counter()
    result = ExportResult(fmt, out)
    try:
        progress(0.3, f"writing {FORMAT_TITLES[fmt]}")
        EXPORTERS[fmt](p, out, result)
        _note_unused_inputs(p, fmt, result)
        progress(1.0, "verified")
    except ExportError:
        raise
    except WeightsError as exc:
        raise ExportError(str(exc)) from None
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    except Exception as exc:  # a bug of ours or a torch failure: still a plain message
        raise ExportError(f"{fmt} export failed: {type(exc).__name__}: {_first_line(exc)}") from None
    result.seconds = time.perf_counter() - t0
    return result


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__
