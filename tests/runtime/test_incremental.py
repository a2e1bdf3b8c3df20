"""Incremental validation and analysis give exactly the from-scratch answers.

``validate(doc)`` and ``analyze(doc)`` keep per-document state (doc.derived) and re-check
only what an edit can have touched. After every one of many random edits (parameter
values valid and invalid, labels, node removal and undo, edge removal and new edges,
in-place parameter edits that bypass set_param, clearing the memo) the incremental
results must equal ``validate_structure`` + ``analyze_full`` on the same document.
"""
from __future__ import annotations

import glob
import os
import random

import pytest

from runtime import CATALOG, GraphDocument, load_graph
from runtime.analysis import analyze, analyze_full, clear_cache
from runtime.diagnostics import has_errors
from runtime.graph import Edge, GraphError
from runtime.pipeline import validate
from runtime.validation import validate_structure

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reference(doc):
    diags = validate_structure(doc)
    full = analyze_full(doc)
    if not has_errors(diags):
        diags = diags + full.diagnostics
    return diags, full


def assert_same(doc, where=""):
    diags, full = reference(doc)
    inc = analyze(doc)
    assert inc.order == full.order, where
    assert inc.nodes == full.nodes, where
    assert inc.diagnostics == full.diagnostics, where
    assert validate(doc) == diags, where


def residual_mlp(seed: int) -> GraphDocument:
    rng = random.Random(seed)
    d = GraphDocument("res")
    d.add_node("VectorInput", {"features": 8}, node_id="x")
    prev, width = "x", 8
    for i in range(6):
        kind = rng.choice(["dense", "res", "cat"])
        if kind == "dense":
            width = rng.choice([8, 12, 16])
            d.add_node("Dense", {"units": width}, node_id=f"d{i}")
            d.add_node("BatchNorm", {}, node_id=f"b{i}")
            d.add_node("ReLU", {}, node_id=f"r{i}")
            d.connect(prev, "out", f"d{i}", "x")
            d.connect(f"d{i}", "out", f"b{i}", "x")
            d.connect(f"b{i}", "out", f"r{i}", "x")
            prev = f"r{i}"
        elif kind == "res":
            d.add_node("Dense", {"units": rng.choice([4, 8])}, node_id=f"h{i}")
            d.add_node("Tanh", {}, node_id=f"t{i}")
            d.add_node("Dense", {"units": width}, node_id=f"o{i}")
            d.add_node("Add", {}, node_id=f"a{i}")
            d.connect(prev, "out", f"h{i}", "x")
            d.connect(f"h{i}", "out", f"t{i}", "x")
            d.connect(f"t{i}", "out", f"o{i}", "x")
            d.connect(f"o{i}", "out", f"a{i}", "x1")
            d.connect(prev, "out", f"a{i}", "x2")
            prev = f"a{i}"
        else:
            d.add_node("Dense", {"units": 4}, node_id=f"p{i}")
            d.add_node("Dense", {"units": 6}, node_id=f"q{i}")
            d.add_node("Concat", {}, node_id=f"c{i}")
            d.connect(prev, "out", f"p{i}", "x")
            d.connect(prev, "out", f"q{i}", "x")
            d.connect(f"p{i}", "out", f"c{i}", "x1")
            d.connect(f"q{i}", "out", f"c{i}", "x2")
            prev, width = f"c{i}", 10
    d.add_node("Dense", {"units": 3}, node_id="logits")
    d.add_node("Target", {"kind": "class", "num_classes": 3}, node_id="y")
    d.add_node("CrossEntropy", {}, node_id="loss")
    d.connect(prev, "out", "logits", "x")
    d.connect("logits", "out", "loss", "pred")
    d.connect("y", "out", "loss", "target")
    return d


def small_cnn() -> GraphDocument:
    d = GraphDocument("cnn")
    d.add_node("ImageInput", {"channels": 1, "height": 12, "width": 12}, node_id="img")
    d.add_node("Conv2d", {"filters": 4, "kernel_size": 3, "padding": 1}, node_id="c1")
    d.add_node("BatchNorm", {}, node_id="bn")
    d.add_node("ReLU", {}, node_id="r")
    d.add_node("MaxPool", {}, node_id="mp")
    d.add_node("Conv2d", {"filters": 6, "kernel_size": 3}, node_id="c2")
    d.add_node("Flatten", {}, node_id="f")
    d.add_node("Dense", {"units": 5}, node_id="fc")
    d.add_node("Target", {"kind": "class", "num_classes": 5}, node_id="y")
    d.add_node("CrossEntropy", {}, node_id="loss")
    for a, b in [("img", "c1"), ("c1", "bn"), ("bn", "r"), ("r", "mp"), ("mp", "c2"),
                 ("c2", "f"), ("f", "fc")]:
        d.connect(a, "out", b, "x")
    d.connect("fc", "out", "loss", "pred")
    d.connect("y", "out", "loss", "target")
    return d


def elman() -> GraphDocument:
    """h_t = tanh(W x_t + U h_{t-1}), a cycle through a Delay inside a recurrent region."""
    d = GraphDocument("elman")
    d.add_node("SequenceInput", {"steps": 5, "features": 3}, node_id="seq")
    d.add_node("SequenceStep", {}, node_id="step")
    d.add_node("Dense", {"units": 4}, node_id="wx")
    d.add_node("Delay", {"shape": [4]}, node_id="h_prev")
    d.add_node("Dense", {"units": 4, "bias": False}, node_id="uh")
    d.add_node("Add", {}, node_id="sum")
    d.add_node("Tanh", {}, node_id="h")
    d.add_node("Last", {}, node_id="last")
    d.add_node("Dense", {"units": 2}, node_id="out")
    d.add_node("Target", {"kind": "class", "num_classes": 2}, node_id="y")
    d.add_node("CrossEntropy", {}, node_id="loss")
    d.connect("seq", "out", "step", "seq")
    d.connect("step", "out", "wx", "x")
    d.connect("h_prev", "out", "uh", "x")
    d.connect("wx", "out", "sum", "x1")
    d.connect("uh", "out", "sum", "x2")
    d.connect("sum", "out", "h", "x")
    d.connect("h", "out", "h_prev", "x")
    d.connect("h", "out", "last", "x")
    d.connect("last", "out", "out", "x")
    d.connect("out", "out", "loss", "pred")
    d.connect("y", "out", "loss", "target")
    return d


def random_value(rng: random.Random, param, current):
    t = param.type
    if rng.random() < 0.1:  # an invalid value now and then
        return {"int": -3, "float": float("nan"), "bool": 2, "choice": "nope",
                "size": [], "ints": "x", "table": 5, "str": 7}.get(t, None)
    if t == "int":
        lo = int(param.min) if param.min is not None else 0
        hi = int(param.max) if param.max is not None else max(lo + 4, 16)
        return rng.randint(lo, min(hi, lo + 16))
    if t == "float":
        lo = param.min if param.min is not None else -1.0
        hi = param.max if param.max is not None else lo + 2.0
        return round(rng.uniform(lo, min(hi, lo + 2.0)), 3)
    if t == "bool":
        return not current
    if t == "choice":
        return rng.choice(param.choices)
    if t == "size":
        return rng.choice([1, 2, 3, [1, 2]])
    if t == "ints":
        return [rng.randint(1, 6) for _ in range(rng.randint(1, 2))]
    return current


def random_edit(rng: random.Random, doc: GraphDocument, undo: list) -> str:
    ids = list(doc.nodes)
    r = rng.random()
    if undo and r < 0.1:
        kind, payload = undo.pop()
        if kind == "node":
            doc.insert_node(*payload)
        else:
            doc.add_edge(payload)
        return f"undo {kind}"
    nid = rng.choice(ids)
    node = doc.nodes[nid]
    if r < 0.55:
        params = node.spec.params
        if not params:
            return "none"
        p = rng.choice(params)
        value = random_value(rng, p, node.params.get(p.name))
        doc.set_param(nid, p.name, value)
        return f"set {nid}.{p.name}={value!r}"
    if r < 0.62:
        doc.set_label(nid, rng.choice(["", "first", "second"]))
        return f"label {nid}"
    if r < 0.68:
        params = [p for p in node.spec.params if p.type in ("int", "bool")]
        if not params:
            return "none"
        p = rng.choice(params)
        node.params[p.name] = random_value(rng, p, node.params.get(p.name))  # bypasses set_param
        return f"in-place {nid}.{p.name}"
    if r < 0.76:
        undo.append(("node", doc.remove_node(nid)))
        return f"remove {nid}"
    if r < 0.84 and doc.edges:
        e = rng.choice(doc.edges)
        doc.remove_edge(e)
        undo.append(("edge", e))
        return f"remove edge {e}"
    if r < 0.94:
        src, dst = doc.nodes[rng.choice(ids)], doc.nodes[rng.choice(ids)]
        outs, ins = src.output_ports(), dst.input_ports()
        if not outs or not ins:
            return "none"
        e = Edge(src.id, rng.choice(outs).name, dst.id, rng.choice(ins).name)
        try:
            doc.add_edge(e)
        except GraphError:
            return "none"
        return f"add edge {e}"
    if r < 0.97:
        doc.move_node(nid, (rng.random(), rng.random()))
        return f"move {nid}"
    clear_cache()
    return "clear cache"


def examples():
    return sorted(glob.glob(os.path.join(ROOT, "resources", "examples", "*.json")))


def documents():
    docs = [("residual_mlp_0", lambda: residual_mlp(0), 30),
            ("residual_mlp_1", lambda: residual_mlp(1), 30), ("small_cnn", small_cnn, 30)]
    if "Delay" in CATALOG:  # the recurrent node types
        docs.append(("elman", elman, 30))
    docs += [(os.path.basename(p)[:-5], (lambda p=p: load_graph(p)), 8) for p in examples()]
    return docs


SLOW_DOCUMENTS = {"seq2seq", "bigru_tagger", "char_lstm"}  # more than a second each


@pytest.mark.parametrize("name,make,edits", [
    pytest.param(n, m, e, id=n, marks=[pytest.mark.slow] if n in SLOW_DOCUMENTS else [])
    for n, m, e in documents()])
def test_incremental_equals_full_after_random_edits(name, make, edits):
    doc = make()
    assert_same(doc, "initial")
    rng = random.Random(sum(map(ord, name)))
    undo: list = []
    log = []
    for i in range(edits):
        log.append(random_edit(rng, doc, undo))
        assert_same(doc, f"after edit {i}: " + " | ".join(log[-5:]))


def test_edit_recomputes_only_what_changed():
    doc = residual_mlp(2)
    first = analyze(doc)
    dense = next(n for n in doc.nodes if doc.nodes[n].type == "Dense")
    doc.set_param(dense, "bias", not doc.nodes[dense].params["bias"])
    second = analyze(doc)
    assert second.nodes[dense].params != first.nodes[dense].params
    # shapes did not change: every other node keeps its previous result object
    same = [n for n in doc.nodes if second.nodes[n] is first.nodes[n]]
    assert set(doc.nodes) - set(same) == {dense}
    assert second.nodes == analyze_full(doc).nodes


def test_results_are_fresh_containers():
    doc = small_cnn()
    a, b = analyze(doc), analyze(doc)
    assert a.nodes == b.nodes and a.order == b.order
    assert a.nodes is not b.nodes and a.order is not b.order and a.diagnostics is not b.diagnostics


def test_edge_indexes_match_a_scan():
    rng = random.Random(5)
    doc = residual_mlp(3)
    undo: list = []
    for _ in range(60):
        random_edit(rng, doc, undo)
        edges = doc.edges
        assert len(set(edges)) == len(edges)
        for nid in doc.nodes:
            assert doc.in_edges(nid) == [e for e in edges if e.target == nid]
            assert doc.out_edges(nid) == [e for e in edges if e.source == nid]
    nid = next(n for n in doc.nodes if doc.in_edges(n) and doc.out_edges(n))
    before = doc.edges
    node, removed = doc.remove_node(nid)
    assert removed == [e for e in before if nid in (e.source, e.target)]
    doc.insert_node(node, removed)
    assert sorted(map(str, doc.edges)) == sorted(map(str, before))


def test_deep_copied_document_is_analysed_itself():
    import copy

    doc = small_cnn()
    analyze(doc)
    validate(doc)
    twin = copy.deepcopy(doc)
    twin.set_param("c1", "filters", 3)
    assert analyze(twin).nodes["c1"].output_shape == (3, 12, 12)
    assert analyze(doc).nodes["c1"].output_shape == (4, 12, 12)
    assert validate(twin) == reference(twin)[0]
