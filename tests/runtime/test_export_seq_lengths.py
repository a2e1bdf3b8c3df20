"""Each sequence input of an export keeps its own dynamic length.

seq2seq's `source` (20 steps) and `previous` (24 steps) are independent: the ONNX file
names one time axis per input (steps_source, steps_previous) and the .pt2 program has
one symbol per input, both checked here with onnxruntime / torch at length pairs the
exporter did not use, through `netbuilder export` itself (the CLI entry point). Inputs
the graph really ties together (added step by step) share one axis. When the dynamic
ONNX export has to fall back to fixed lengths, the note names each input's length.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch

from runtime import GraphDocument, load_graph, save_graph
from runtime.cli import main as cli_main
from runtime.export import prepare
from runtime.export.core import ATOL, RTOL, make_inputs, reference
from tests.runtime.export_setup import one_thread  # noqa: F401  (autouse)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "examples"


def _export(graph: Path, fmt: str, out: Path) -> dict:
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = cli_main(["export", str(graph), "--format", fmt, "--out", str(out), "--json"])
    assert rc == 0, e.getvalue()[-2000:]
    assert "Traceback" not in e.getvalue()
    res = json.loads([ln for ln in o.getvalue().splitlines() if ln.startswith("{")][-1])
    assert res["ok"] and res["verified"], res
    return res


def _close(ref, got, what):
    assert len(ref) == len(got), what
    for r, g in zip(ref, got):
        g = torch.as_tensor(g)
        assert tuple(g.shape) == tuple(r.shape), (what, tuple(g.shape), tuple(r.shape))
        d = float((g.double() - r.double()).abs().max())
        assert d <= ATOL + RTOL * float(r.abs().max()), (what, d)


def _ort(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _onnx_dims(path: Path) -> dict[str, list]:
    import onnx

    m = onnx.load(str(path))
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(m.graph.input) + list(m.graph.output)}


def _run_ort(sess, xs):
    names = [i.name for i in sess.get_inputs()]
    return tuple(torch.from_numpy(a) for a in
                 sess.run(None, {n: t.numpy() for n, t in zip(names, xs)}))


def _pt2_time_symbols(path: Path) -> dict[str, str]:
    ep = torch.export.load(str(path))
    vals = {n.name: n.meta["val"] for n in ep.graph.nodes if n.op == "placeholder"}
    return {name: str(vals[name].shape[1]) for name in ep.graph_signature.user_inputs
            if vals[name].dim() > 1}


# length pairs (source, previous) the exporter itself did not check: one shorter and one
# longer than the graph's 20/24, and the other way round
SEQ2SEQ_PAIRS = [(13, 30), (26, 9)]


@pytest.mark.slow
def test_seq2seq_onnx_keeps_each_sequence_length_dynamic(tmp_path):
    graph = EXAMPLES_DIR / "seq2seq.json"
    out = tmp_path / "s.onnx"
    res = _export(graph, "onnx", out)
    assert not [n for n in res["notes"] if "fixed" in n], res["notes"]
    checks = " | ".join(res["checks"])
    assert "source 17 steps, previous 27 steps" in checks, res["checks"]
    dims = _onnx_dims(out)
    assert dims["source"] == ["batch", "steps_source"]
    assert dims["previous"] == ["batch", "steps_previous"]
    assert dims["next_token"] == ["batch", "steps_previous", 120]  # follows `previous`
    p = prepare(load_graph(graph))
    sess = _ort(out)
    for batch, (ts, tp) in zip((2, 3), SEQ2SEQ_PAIRS):
        xs = make_inputs(p, batch, steps={0: ts, 1: tp}, seed=5)
        got = _run_ort(sess, xs)
        _close(reference(p, xs), got, f"onnxruntime at source {ts}, previous {tp}")
        assert got[0].shape[1] == tp


@pytest.mark.slow
def test_seq2seq_pt2_has_one_dim_per_sequence_input(tmp_path):
    graph = EXAMPLES_DIR / "seq2seq.json"
    out = tmp_path / "s.pt2"
    res = _export(graph, "pt2", out)
    assert not [n for n in res["notes"] if "fixed" in n], res["notes"]
    assert "source 17 steps, previous 27 steps" in " | ".join(res["checks"]), res["checks"]
    sym = _pt2_time_symbols(out)
    assert set(sym) == {"source", "previous"}
    assert sym["source"] != sym["previous"], sym  # two lengths, not one
    assert not any(s.isdigit() for s in sym.values()), sym  # neither specialised
    p = prepare(load_graph(graph))
    m = torch.export.load(str(out)).module()
    for batch, (ts, tp) in zip((2, 3), SEQ2SEQ_PAIRS):
        xs = make_inputs(p, batch, steps={0: ts, 1: tp}, seed=5)
        with torch.no_grad():
            _close(reference(p, xs), (m(*xs),), f".pt2 at source {ts}, previous {tp}")


def tied_doc() -> GraphDocument:
    """`a` and `b` are added step by step (their lengths are one), `c` is independent and
    has the same length in the graph (12)."""
    d = GraphDocument("tied lengths")
    for nid in ("a", "b", "c"):
        d.add_node("SequenceInput", {"steps": 12, "features": 3}, node_id=nid)
    d.add_node("Add", {"inputs": 2}, node_id="sum")
    d.add_node("Dense", {"units": 4}, node_id="per_step")
    d.add_node("Output", node_id="steps_out")
    d.add_node("Transpose", {"axis1": 0, "axis2": 1}, node_id="tr")
    d.add_node("GlobalAvgPool", node_id="pool")
    d.add_node("Output", node_id="pooled")
    d.connect("a", "out", "sum", "x1")
    d.connect("b", "out", "sum", "x2")
    d.connect("sum", "out", "per_step", "x")
    d.connect("per_step", "out", "steps_out", "x")
    d.connect("c", "out", "tr", "x")
    d.connect("tr", "out", "pool", "x")
    d.connect("pool", "out", "pooled", "x")
    return d


@pytest.mark.slow
def test_lengths_the_graph_ties_share_one_axis(tmp_path):
    graph = tmp_path / "tied.json"
    save_graph(tied_doc(), graph)
    p = prepare(tied_doc())
    res = _export(graph, "onnx", tmp_path / "t.onnx")
    assert not [n for n in res["notes"] if "fixed" in n], res["notes"]
    dims = _onnx_dims(tmp_path / "t.onnx")
    assert dims["a"][1] == dims["b"][1] == "steps_a_b"
    assert dims["c"][1] == "steps_c"
    assert dims["steps_out"][1] == "steps_a_b"
    sess = _ort(tmp_path / "t.onnx")
    for tab, tc in ((7, 15), (16, 5)):
        xs = make_inputs(p, 2, steps={0: tab, 1: tab, 2: tc}, seed=3)
        _close(reference(p, xs), _run_ort(sess, xs), f"onnxruntime at a=b={tab}, c={tc}")
    _export(graph, "pt2", tmp_path / "t.pt2")
    sym = _pt2_time_symbols(tmp_path / "t.pt2")
    assert sym["a"] == sym["b"] != sym["c"], sym
    m = torch.export.load(str(tmp_path / "t.pt2")).module()
    xs = make_inputs(p, 3, steps={0: 9, 1: 9, 2: 14}, seed=3)
    with torch.no_grad():
        _close(reference(p, xs), m(*xs), ".pt2 at a=b=9, c=14")
    assert [g for g, _ in p.seq_groups] == [(0, 1), (2,)]


def test_onnx_fallback_note_names_each_length(tmp_path, monkeypatch):
    """Where the dynamic ONNX export fails its check, the file is re-exported with fixed
    lengths and the note gives every input's own length (not the first input's)."""
    import runtime.export.formats.onnx as onnx_format

    real = onnx_format._export_onnx

    def no_dynamic(p, out, result, ort, seq):
        if seq:
            raise onnx_format.ExportError("onnxruntime failed (test)")
        return real(p, out, result, ort, seq)

    monkeypatch.setattr(onnx_format, "_export_onnx", no_dynamic)
    out = tmp_path / "s.onnx"
    res = _export(EXAMPLES_DIR / "seq2seq.json", "onnx", out)
    fixed = [n for n in res["notes"] if "fixed" in n]
    assert len(fixed) == 1, res["notes"]
    assert "source at 20 steps" in fixed[0] and "previous at 24 steps" in fixed[0], fixed
    dims = _onnx_dims(out)
    assert dims["source"] == ["batch", 20] and dims["previous"] == ["batch", 24]
