"""A graph with an input (or target) that feeds nothing still exports and trains.

Validation only warns about a stray input, so the graph is valid; the compiled module,
its signature, example_inputs, the data binding and every export must agree on the
inputs. A node that feeds no loss or output is left out of all of them (a dataset binds
to the inputs that are used, as without the stray node); an input that only the losses
need stays an input of the prediction too (ignored there), so every format takes the
inputs training takes.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runtime import GraphDocument, load_graph, save_graph
from runtime.cli import main as cli_main
from runtime.compiler import build_module, example_inputs, signature
from runtime.export import prepare
from runtime.export.core import ATOL, FORMATS, RTOL, make_inputs, reference
from tests.runtime.export_setup import one_thread  # noqa: F401  (autouse)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "examples"
SUFFIX = {"bundle": ".zip", "torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx", "python": ""}


def stray_doc() -> GraphDocument:
    """x -> fc -> CrossEntropy(t), plus an input, a token input and a target that feed
    nothing (left on the canvas)."""
    d = GraphDocument("stray input")
    d.add_node("VectorInput", {"features": 3}, node_id="stray")  # before x: order matters
    d.add_node("VectorInput", {"features": 4}, node_id="x")
    d.add_node("TokenInput", {"steps": 10, "vocab_size": 7}, node_id="stray_tokens")
    d.add_node("Dense", {"units": 2}, node_id="fc")
    d.add_node("Target", {"kind": "class", "shape": [], "num_classes": 2}, node_id="t")
    d.add_node("Target", {"kind": "value", "shape": [5]}, node_id="stray_target")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect("x", "out", "fc", "x")
    d.connect("fc", "out", "loss", "pred")
    d.connect("t", "out", "loss", "target")
    return d


def loss_only_doc() -> GraphDocument:
    """`aux` only feeds a second loss: the prediction (Output y) does not use it."""
    d = GraphDocument("aux loss")
    d.add_node("VectorInput", {"features": 4}, node_id="x")
    d.add_node("VectorInput", {"features": 3}, node_id="aux")
    d.add_node("Dense", {"units": 2}, node_id="fc")
    d.add_node("Dense", {"units": 2}, node_id="fc_aux")
    d.add_node("Output", node_id="y")
    d.add_node("Target", {"kind": "class", "shape": [], "num_classes": 2}, node_id="t")
    d.add_node("Target", {"kind": "class", "shape": [], "num_classes": 2}, node_id="t_aux")
    d.add_node("CrossEntropy", node_id="loss")
    d.add_node("CrossEntropy", node_id="loss_aux")
    d.connect("x", "out", "fc", "x")
    d.connect("fc", "out", "y", "x")
    d.connect("fc", "out", "loss", "pred")
    d.connect("t", "out", "loss", "target")
    d.connect("aux", "out", "fc_aux", "x")
    d.connect("fc_aux", "out", "loss_aux", "pred")
    d.connect("t_aux", "out", "loss_aux", "target")
    return d


def _cli(argv: list[str]) -> tuple[int, str, str]:
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = cli_main(argv)
    return rc, o.getvalue(), e.getvalue()


def _close(ref, got, what):
    got = got if isinstance(got, (tuple, list)) else (got,)
    assert len(ref) == len(got), what
    for r, g in zip(ref, got):
        g = torch.as_tensor(g)
        assert tuple(g.shape) == tuple(r.shape), what
        d = float((g.double() - r.double()).abs().max())
        assert d <= ATOL + RTOL * float(r.abs().max()), (what, d)


def _load_and_run(fmt: str, out: Path, p) -> None:
    """The written file takes the signature's inputs, in order, and agrees with the graph
    (torch / onnxruntime; model.py in a fresh process is the exporter's own check)."""
    xs = make_inputs(p, 3, seed=9)
    if fmt == "torchscript":
        run = torch.jit.load(str(out))
    elif fmt == "pt2":
        run = torch.export.load(str(out)).module()
    elif fmt == "onnx":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 4
        sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == list(p.sig.inputs)

        def run(*a):
            return tuple(torch.from_numpy(v) for v in
                         sess.run(None, {n: t.numpy() for n, t in zip(p.sig.inputs, a)}))
    else:
        return
    with torch.no_grad():
        _close(reference(p, xs), run(*xs), f"{fmt} at batch 3")


@pytest.mark.parametrize("make,inputs,targets", [
    (stray_doc, ("x",), ("t",)),
    (loss_only_doc, ("x", "aux"), ("t", "t_aux")),
], ids=["stray", "loss_only"])
@pytest.mark.slow
def test_export_every_format_with_an_unused_input(make, inputs, targets, tmp_path):
    doc = make()
    graph = tmp_path / "g.json"
    save_graph(doc, graph)
    rc, out, err = _cli(["validate", str(graph)])
    assert rc == 0  # a warning only: the graph is valid
    p = prepare(doc)
    for fmt in FORMATS:
        dest = tmp_path / (f"m{SUFFIX[fmt]}" if fmt != "python" else "py")
        rc, out, err = _cli(["export", str(graph), "--format", fmt, "--out", str(dest),
                             "--json"])
        assert rc == 0, (fmt, err[-2000:])
        assert "Traceback" not in err
        res = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
        assert res["ok"] and res["verified"] and res["max_abs_diff"] < 1e-4, res
        if fmt != "bundle":
            assert any("batch 4" in c for c in res["checks"]), res["checks"]
        if make is stray_doc:
            assert any("stray, stray_tokens, stray_target" in n and "left out" in n
                       for n in res["notes"]), res["notes"]
        elif fmt != "bundle":
            assert any("aux feeds only the losses" in n for n in res["notes"]), res["notes"]
        _load_and_run(fmt, dest, p)
    sig = signature(doc)
    assert sig.inputs == inputs and sig.targets == targets
    code = (tmp_path / "py" / "model.py").read_text()
    assert f"def forward(self, {', '.join(inputs)})" in code
    assert f"def compute_losses(self, {', '.join(inputs + targets)})" in code


def test_example_inputs_fit_the_compiled_modules():
    for doc in (stray_doc(), loss_only_doc()):
        with torch.no_grad():
            build_module(doc, mode="predict")(*example_inputs(doc, batch=2))
            out = build_module(doc, mode="train")(*example_inputs(doc, batch=2, mode="train"))
        assert torch.isfinite(out["loss"])


def test_a_stray_input_still_trains_on_the_graphs_dataset(tmp_path):
    """The spirals MLP with a stray input and a stray target left on the canvas trains one
    step on its own dataset (one input, one target per sample) through `netbuilder train`."""
    doc = load_graph(EXAMPLES_DIR / "mlp_spirals.json")
    doc.add_node("VectorInput", {"features": 5}, node_id="left_over")
    doc.add_node("Target", {"kind": "value", "shape": [1]}, node_id="left_over_target")
    doc.training = {**doc.training, "threads": 1}
    graph = tmp_path / "spirals_stray.json"
    save_graph(doc, graph)
    rc, out, err = _cli(["train", str(graph), "--max-steps", "1", "--epochs", "1", "--quiet",
                         "--out", str(tmp_path / "run")])
    assert rc == 0, (out[-2000:], err[-2000:])
    assert "Traceback" not in err


@pytest.mark.slow
def test_train_script_of_a_graph_with_a_stray_input_runs(tmp_path):
    graph = tmp_path / "g.json"
    save_graph(stray_doc(), graph)
    rc, out, err = _cli(["export", str(graph), "--format", "python", "--out",
                         str(tmp_path / "py")])
    assert rc == 0, err[-2000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "train.py", "--samples", "16", "--batch-size", "4",
                           "--max-steps", "1"], cwd=tmp_path / "py", env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert final["status"] == "completed" and final["steps"] == 1, final
