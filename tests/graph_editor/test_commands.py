"""Undo commands: each edit undoes and redoes exactly (property-based with hypothesis)."""
from __future__ import annotations

import os

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtGui import QUndoStack

from graph_editor import commands as C
from graph_editor.clipboard import selection_to_dict
from graph_editor.layout import layered_positions
from runtime.graph import Edge, GraphDocument
from runtime.serialization import load_graph

from .helpers import canonical

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "mlp_spirals.json"
TYPES = ["Dense", "ReLU", "Tanh", "Add", "Concat", "Dropout", "VectorInput", "Target",
         "CrossEntropy", "Conv2d", "BatchNorm"]


def start_doc() -> GraphDocument:
    if EXAMPLE.exists():
        return load_graph(EXAMPLE)
    doc = GraphDocument("t")
    doc.add_node("VectorInput", node_id="x")
    doc.add_node("Dense", {"units": 4}, node_id="d")
    doc.connect("x", "out", "d", "x")
    return doc


def random_command(doc: GraphDocument, data):
    """One random, legal edit command for the current document (or None)."""
    kind = data.draw(st.sampled_from(["add", "remove", "connect", "disconnect", "param",
                                      "label", "move", "paste", "layout", "group",
                                      "ungroup"]))
    ids = sorted(doc.nodes)
    if kind == "add" or not ids:
        t = data.draw(st.sampled_from(TYPES))
        return C.AddNode(doc, t, (data.draw(st.integers(-500, 500)), 0.0))
    if kind == "remove":
        chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
        return C.RemoveNodes(doc, chosen)
    if kind == "connect":
        src = doc.node(data.draw(st.sampled_from(ids)))
        dst = doc.node(data.draw(st.sampled_from(ids)))
        outs, ins = src.output_ports(), dst.input_ports()
        if not outs or not ins:
            return None
        edge = Edge(src.id, data.draw(st.sampled_from(outs)).name, dst.id,
                    data.draw(st.sampled_from(ins)).name)
        return None if edge in doc.edges else C.Connect(doc, edge)
    if kind == "disconnect":
        if not doc.edges:
            return None
        return C.Disconnect(doc, data.draw(st.lists(st.sampled_from(list(doc.edges)),
                                                    min_size=1, max_size=2, unique=True)))
    if kind == "param":
        node = doc.node(data.draw(st.sampled_from(ids)))
        ints = [p for p in node.spec.params if p.type == "int"]
        if not ints:
            return C.SetLabel(doc, node.id, "renamed")
        p = data.draw(st.sampled_from(ints))
        lo = int(p.min) if p.min is not None else 0
        hi = int(p.max) if p.max is not None else lo + 64
        return C.SetParam(doc, node.id, p.name, data.draw(st.integers(lo, min(hi, lo + 64))))
    if kind == "label":
        return C.SetLabel(doc, data.draw(st.sampled_from(ids)),
                          data.draw(st.text("abc XYZ", max_size=6)))
    if kind == "move":
        chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
        moves = {n: (doc.node(n).position, (data.draw(st.integers(-900, 900)), 5.0))
                 for n in chosen}
        return C.MoveNodes(doc, moves)
    if kind == "paste":
        chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True))
        return C.Paste(doc, selection_to_dict(doc, chosen), (40, 40))
    if kind in ("group", "ungroup"):
        chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True))
        return C.Group(doc, chosen) if kind == "group" else C.Ungroup(doc, chosen)
    return C.Layout(doc, layered_positions(doc))


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("NETBUILDER_PROPERTY_EXAMPLES", 25)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_edits_undo_to_original_and_redo_to_final(qapp, data):
    doc = start_doc()
    original = canonical(doc)
    stack = QUndoStack()
    for _ in range(data.draw(st.integers(1, 14))):
        cmd = random_command(doc, data)
        if cmd is not None:
            stack.push(cmd)
    final = canonical(doc)
    while stack.canUndo():
        stack.undo()
    assert canonical(doc) == original
    while stack.canRedo():
        stack.redo()
    assert canonical(doc) == final


def test_moves_of_one_drag_merge_into_one_step(qapp):
    doc = start_doc()
    nid = next(iter(doc.nodes))
    p0 = doc.node(nid).position
    stack = QUndoStack()
    drag = C.new_drag_id()
    for x in (10, 20, 30):
        stack.push(C.MoveNodes(doc, {nid: (doc.node(nid).position, (x, 7))}, drag_id=drag))
    assert stack.count() == 1 and doc.node(nid).position == (30.0, 7.0)
    stack.undo()
    assert doc.node(nid).position == p0


def test_consecutive_edits_of_one_parameter_merge(qapp):
    doc = GraphDocument()
    doc.add_node("Dense", {"units": 4}, node_id="d")
    stack = QUndoStack()
    for v in (5, 6, 7):
        stack.push(C.SetParam(doc, "d", "units", v))
    assert stack.count() == 1
    stack.undo()
    assert doc.node("d").params["units"] == 4


def test_edits_of_one_parameter_far_apart_are_separate_steps(qapp, monkeypatch):
    clock = iter([0.0, 0.2, 0.3, 2.0, 5.0])  # a burst (three edits), then two separate ones
    monkeypatch.setattr(C.time, "monotonic", lambda: next(clock))
    doc = GraphDocument()
    doc.add_node("Dense", {"units": 4}, node_id="d")
    stack = QUndoStack()
    for v in (5, 6, 12, 20, 32):
        stack.push(C.SetParam(doc, "d", "units", v))
    assert stack.count() == 3
    for expected in (20, 12, 4):
        stack.undo()
        assert doc.node("d").params["units"] == expected


def test_a_burst_that_returns_to_the_start_leaves_no_step(qapp):
    doc = GraphDocument()
    doc.add_node("Dense", {"units": 4}, node_id="d")
    stack = QUndoStack()
    for v in (5, 4):
        stack.push(C.SetParam(doc, "d", "units", v))
    assert stack.count() == 0 and doc.node("d").params["units"] == 4


def test_paste_renames_taken_ids_and_keeps_inner_edges(qapp):
    doc = start_doc()
    ids = sorted(doc.nodes)[:3]
    inner = [e for e in doc.edges if e.source in ids and e.target in ids]
    before = len(doc)
    cmd = C.Paste(doc, selection_to_dict(doc, ids), (40, 40))
    QUndoStack().push(cmd)
    assert len(doc) == before + 3
    assert not set(cmd.new_ids) & set(ids)
    pasted_edges = [e for e in doc.edges if e.source in cmd.new_ids]
    assert len(pasted_edges) == len(inner)


def test_layout_puts_every_edge_along_the_flow(qapp):
    """Top to bottom: every wire goes down, or (a wrapped long drawing) on to the next
    column on the right; left to right likewise with rows."""
    for direction, (along, across) in (("TB", (1, 0)), ("LR", (0, 1))):
        doc = start_doc()
        for n, pos in layered_positions(doc, direction=direction).items():
            doc.move_node(n, pos)
        for e in doc.edges:
            a, b = doc.node(e.source).position, doc.node(e.target).position
            assert b[along] > a[along] or b[across] > a[across] + 100, (direction, e)


def test_paste_skips_edges_to_ports_that_do_not_exist(qapp):
    doc = GraphDocument()
    data = {"format": "netbuilder-clipboard",
            "nodes": [{"id": "a", "type": "VectorInput", "params": {}, "position": [0, 0]},
                      {"id": "b", "type": "Dense", "params": {}, "position": [200, 0]}],
            "edges": [{"source": "a", "source_port": "out", "target": "b", "target_port": "x"},
                      {"source": "a", "source_port": "out", "target": "b", "target_port": "nope"}]}
    stack = QUndoStack()
    stack.push(C.Paste(doc, data))
    assert sorted(doc.nodes) == ["a", "b"] and len(doc.edges) == 1
    stack.undo()
    assert len(doc) == 0
    stack.redo()
    assert len(doc.edges) == 1
