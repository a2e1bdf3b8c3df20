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

from ..analysis import Analysis, analyze
from ..compiler import (CompileError, Signature, _class_name, build_module, random_source,
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
    seq_variable: bool  # the eager module accepts another sequence length

    @property
    def owner(self) -> torch.nn.Module:
        return self.train if self.train is not None else self.predict


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
    p = Prepared(doc, analysis, sig, predict, train, state, _class_name(doc), seq_inputs, False)
    if seq_inputs:
        try:
            with torch.no_grad():
                predict(*make_inputs(p, 2, steps=_other_steps(p)))
            p.seq_variable = True
        except Exception:
            p.seq_variable = False
    return p


def _steps(p: Prepared) -> int:
    node = p.doc.nodes[p.sig.inputs[p.seq_inputs[0]]]
    return int(node.params["steps"])


def _other_steps(p: Prepared) -> int:
    t = _steps(p)
    return t + 3 if t < 8 else t - 3


def make_inputs(p: Prepared, batch: int, *, steps: int | None = None, seed: int = 1,
                targets: bool = False) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed + 1000 * batch + (steps or 0))
    ids = p.sig.inputs + (p.sig.targets if targets else ())
    out = []
    for i, nid in enumerate(ids):
        node = p.doc.nodes[nid]
        shape = [batch] + list(node.spec.source_shape(node.params))
        if steps is not None and i in p.seq_inputs:
            shape[1] = steps
        out.append(random_source(node, shape, gen))
    return tuple(out)


def _cases(p: Prepared, seq: bool = True) -> list[tuple[str, tuple[torch.Tensor, ...]]]:
    """The input sets every export is checked on: two batch sizes (and sequence lengths)."""
    cases = [("batch 1", make_inputs(p, 1)), ("batch 4", make_inputs(p, 4))]
    if seq and p.seq_inputs and p.seq_variable:
        t = _other_steps(p)
        cases.append((f"batch 3, {t} steps", make_inputs(p, 3, steps=t)))
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
            result.notes.append(f"the sequence length is fixed at {_steps(p)} in the traced "
                                "TorchScript module (the trace unrolled the time loop)")
    with _quiet():
        _check(p, lambda x: loaded(*x), result, "TorchScript", cases)


# ---- torch.export --------------------------------------------------------------------


def _dynamic_shapes(p: Prepared, seq: bool):
    from torch.export import Dim

    batch = Dim("batch", min=1, max=1 << 20)
    shapes = []
    for i, _ in enumerate(p.sig.inputs):
        d: dict[int, Any] = {0: batch}
        if seq and i in p.seq_inputs:
            d[1] = Dim.AUTO
        shapes.append(d)
    return tuple(shapes)


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
    result.checks.append("written with torch.export.export (batch dimension dynamic); "
                         "reloaded with torch.export.load")
    cases = _cases(p, seq=False)
    if want_seq:
        t = _other_steps(p)
        seq_case = (f"batch 3, {t} steps", make_inputs(p, 3, steps=t))
        try:
            with torch.no_grad(), _quiet():
                loaded(*seq_case[1])
            cases.append(seq_case)
        except Exception:
            result.notes.append(f"the sequence length is fixed at {_steps(p)} in the .pt2 "
                                "program (torch.export could not keep it dynamic for this "
                                "graph); the batch size is dynamic")
    elif p.seq_inputs:
        result.notes.append(f"the sequence length is fixed at {_steps(p)}: the graph itself "
                            "needs that length (e.g. a Flatten or Dense over time)")
    with _quiet():
        _check(p, lambda x: loaded(*x), result, ".pt2", cases)


# ---- ONNX ----------------------------------------------------------------------------


def export_onnx(p: Prepared, out: Path, result: ExportResult) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("ONNX export needs the onnxruntime package to verify the file") from None
    seq = bool(p.seq_inputs and p.seq_variable)
    if seq:
        try:
            return _export_onnx(p, out, result, ort, True)
        except ExportError:
            result.checks.clear()
            result.max_abs_diff = 0.0
            result.notes.append(f"the sequence length is fixed at {_steps(p)} in the ONNX file "
                                "(the exporter traced the time loop for one length)")
    _export_onnx(p, out, result, ort, False)


def _export_onnx(p: Prepared, out: Path, result: ExportResult, ort, seq: bool) -> None:
    names_in = list(p.sig.inputs)
    names_out = [f"{o}" if o not in names_in else f"{o}_out" for o in p.sig.outputs]
    example = make_inputs(p, 2)
    with torch.no_grad():
        ref = reference(p, example)
    axes: dict[str, dict[int, str]] = {}
    for i, n in enumerate(names_in):
        axes[n] = {0: "batch"}
        if seq and i in p.seq_inputs:
            axes[n][1] = "steps"
    t = _steps(p) if p.seq_inputs else None
    for n, r in zip(names_out, ref):
        axes[n] = {0: "batch"} if r.dim() else {}
        if seq and r.dim() >= 2 and r.shape[1] == t:
            axes[n][1] = "steps"
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
    result.checks.append(f"written with the TorchScript-based exporter (opset {ONNX_OPSET}, "
                         "dynamic batch" + (", dynamic steps" if seq else "")
                         + "); checked with onnx.checker and onnxruntime "
                         f"{ort.__version__}")

    def run(x):
        feeds = {n: t.numpy() for n, t in zip(names_in, x)}
        return tuple(torch.from_numpy(a) for a in sess.run(names_out, feeds))
    _check(p, run, result, "onnxruntime", _cases(p, seq=seq))
    if p.seq_inputs and not p.seq_variable:
        result.notes.append(f"the sequence length is fixed at {t}: the graph itself needs it")


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
    from ..blocks import expand, has_blocks

    doc, analysis, sig = p.doc, p.analysis, p.sig
    if has_blocks(doc):  # code has one attribute per layer: blocks are inlined (C1 -> block1__C1)
        doc = expand(doc)
        analysis, sig = analyze(doc), signature(doc)
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
    from ..validation import validate

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
    try:
        from ..recurrent import find_regions, has_recurrent_nodes
    except ImportError:
        return []
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__
