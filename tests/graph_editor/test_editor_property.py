"""Random edit sequences through the real GraphEditor (scene, view, undo stack): the
compound gestures (re-plug, cut, add-and-wire, duplicate, blocks opened, edited and
closed) and parameter edits of every kind. Undoing everything gives back the original
document; redoing everything gives the final one."""
from __future__ import annotations

import pytest

import os

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtGui import QUndoStack

from graph_editor.editor import GraphEditor
from graph_editor.view import GraphView
from runtime.graph import Edge
from runtime.serialization import load_graph

from .helpers import canonical

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TYPES = ["Dense", "ReLU", "Tanh", "Add", "Dropout", "Conv2d", "BatchNorm", "MaxPool"]
GESTURES = ["add", "add_after", "delete", "cut", "paste", "duplicate", "reconnect",
            "unplug", "param", "label", "layout", "group_block", "ungroup_block",
            "open_block", "close_block"] + ["ungroup_block", "open_block", "param"]


def param_value(p, data):
    """A legal value for any parameter kind of the catalog schema."""
    if p.type == "int":
        lo = int(p.min) if p.min is not None else 0
        hi = int(p.max) if p.max is not None else lo + 64
        return data.draw(st.integers(lo, min(hi, lo + 64)))
    if p.type == "float":
        lo = float(p.min) if p.min is not None else -4.0
        hi = float(p.max) if p.max is not None else lo + 8.0
        return data.draw(st.floats(lo, min(hi, lo + 8.0), allow_nan=False))
    if p.type == "bool":
        return data.draw(st.booleans())
    if p.type == "choice" and p.choices:
        return data.draw(st.sampled_from(list(p.choices)))
    return None


def gesture(ed: GraphEditor, data) -> None:
    doc = ed.doc
    kind = data.draw(st.sampled_from(GESTURES))
    ids = sorted(doc.nodes)
    pick = lambda n=3: data.draw(st.lists(st.sampled_from(ids), min_size=1,  # noqa: E731
                                          max_size=n, unique=True))
    if kind in ("add", "add_after") or not ids:
        if kind == "add_after" and ids:
            ed.scene.select_nodes([data.draw(st.sampled_from(ids))])
            ed.add_node_after(data.draw(st.sampled_from(TYPES)))
        else:
            ed.add_node(data.draw(st.sampled_from(TYPES)), (data.draw(st.integers(-400, 400)), 0.0))
    elif kind in ("delete", "cut", "duplicate"):
        ed.scene.select_nodes(pick())
        {"delete": ed.delete_selection, "cut": ed.cut, "duplicate": ed.duplicate}[kind]()
    elif kind == "paste":
        ed.scene.select_nodes(pick(4))
        if ed.copy():
            ed.paste()
    elif kind in ("reconnect", "unplug"):
        edges = sorted(doc.edges, key=str)
        if not edges:
            return
        old = data.draw(st.sampled_from(edges))
        if kind == "unplug":
            ed.reconnect(old, None)
            return
        src = doc.node(data.draw(st.sampled_from(ids)))
        outs = src.output_ports()
        new = Edge(src.id, outs[0].name, old.target, old.target_port) if outs else None
        if new is not None and new not in doc.edges and src.id != old.target:
            from graph_editor.scene import connection_problem

            if connection_problem(doc, new.source, new.source_port, new.target,
                                  new.target_port) is None:
                ed.reconnect(old, new)
    elif kind == "param":
        node = doc.node(data.draw(st.sampled_from(ids)))
        params = [p for p in node.spec.params if p.type in ("int", "float", "bool", "choice")]
        if params:
            p = data.draw(st.sampled_from(params))
            value = param_value(p, data)
            if value is not None:
                ed.set_param(node.id, p.name, value)
    elif kind == "label":
        ed.set_label(data.draw(st.sampled_from(ids)), data.draw(st.text("abc XY", max_size=5)))
    elif kind == "layout":
        ed.scene.select_nodes(pick())
        ed.auto_layout(selection_only=data.draw(st.booleans()))
    elif kind == "group_block":
        ed.scene.select_nodes(pick())
        ed.group_block()
    elif kind == "ungroup_block":
        blocks = [n for n in ids if doc.node(n).type == "Block"]
        if blocks:
            ed.ungroup_block(data.draw(st.sampled_from(blocks)))
    elif kind == "open_block":
        blocks = [n for n in ids if doc.node(n).type == "Block"]
        if blocks:
            ed.open_block(data.draw(st.sampled_from(blocks)))
    elif kind == "close_block":
        ed.close_block()


START = {  # example, and the nodes already grouped into a block before the edits begin
    "mlp": ("mlp_spirals.json", None),
    "mlp with a block": ("mlp_spirals.json", ["hidden1", "tanh1", "hidden2"]),
    "resnet": ("resnet_small.json", None),
}


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("NETBUILDER_PROPERTY_EXAMPLES", 40)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(sorted(START)))
def test_random_gestures_undo_to_original_and_redo_to_final(qapp, data, start):
    view = GraphView()
    stack = QUndoStack()
    ed = GraphEditor(view, stack)
    ed.analysis_enabled = False  # shapes are not what this test is about; keep it fast
    example, grouped = START[start]
    root = load_graph(EXAMPLES / example)
    if grouped:
        from runtime import blocks

        blocks.group(root, grouped)
    ed.set_document(root)
    original = canonical(root)
    for _ in range(data.draw(st.integers(1, 12))):
        gesture(ed, data)
    ed.close_all_blocks()  # closing writes each open block back: one parent step
    assert ed.doc is root
    final = canonical(root)
    while stack.canUndo():
        stack.undo()
    assert canonical(root) == original
    while stack.canRedo():
        stack.redo()
    assert canonical(root) == final
    view.deleteLater()
