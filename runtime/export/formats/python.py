"""PyTorch code: a directory with model.py (standalone, readable), weights.safetensors,
train.py (graphs with losses) and data.npz (a named dataset); model.py is checked in a
fresh Python process that cannot import Netbuilder."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from ...pipeline import analyze, flatten
from ...compiler import signature
from ..prepare import Prepared, make_inputs
from ..result import ExportError, ExportResult
from ..staging import write_bytes, write_text
from ..verify import check_cases, compare, note_graph_fixed, reference
from ..weights import safetensors_bytes, save_safetensors


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
torch.set_num_threads(int(sys.argv[7]))
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
    from ..pycode import CodegenError, generate_model_code
    from ..trainscript import generate_train_script

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
    write_text(out / "model.py", code)
    write_bytes(out / "weights.safetensors", safetensors_bytes(p.state, {"format": "pt"}))
    files = [out / "model.py", out / "weights.safetensors"]
    if p.train is not None:
        from ..trainscript import dataset_arrays

        write_text(out / "train.py", generate_train_script(p))
        files.append(out / "train.py")
        arrays, why = dataset_arrays(p.doc)
        if arrays is not None:
            import numpy as np

            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            write_bytes(out / "data.npz", buf.getvalue())
            files.append(out / "data.npz")
        result.notes.append(why)
    result.files = files
    note_graph_fixed(p, result)
    cases = check_cases(p)
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
        # the child computes with this process's thread count, so that the difference is
        # the code's, not the kernels' (another count reorders float sums: ~1e-6)
        threads = torch.get_num_threads()
        env["OMP_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, "-c", _BLOCK_NETBUILDER, str(out / "model.py"), p.class_name,
               str(out / "weights.safetensors"), str(Path(tmp) / "inputs.safetensors"),
               str(len(cases)), str(Path(tmp) / "outputs.safetensors"), str(threads)]
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
