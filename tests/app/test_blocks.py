"""Blocks in the editor: group into one node, ungroup, open and edit in place, undo."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from runtime import analyze, validate
from runtime.serialization import graph_to_dict, load_graph
from tests.graph_editor.helpers import canonical

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


@pytest.fixture
def window(make_window):
    w = make_window()
    w.open_example(EXAMPLES / "lenet5.json")
    return w


def test_group_ungroup_with_undo_redo(window, tmp_path):
    w, ed = window, window.editor
    original = graph_to_dict(w.document)
    params = analyze(w.document).total_params
    ed.scene.select_nodes(["C1", "tanh_C1"])
    bid = ed.group_block()
    doc = w.document
    assert bid == "block1" and doc.node(bid).type == "Block" and "C1" not in doc
    assert ed.selected_ids() == [bid]
    assert w.undo_stack.count() == 1  # one undo step
    assert [d for d in validate(doc) if d.is_error] == []
    assert analyze(doc).total_params == params
    grouped = graph_to_dict(doc)
    assert w.save_to(tmp_path / "g.json")
    assert graph_to_dict(load_graph(tmp_path / "g.json")) == grouped

    w.undo_stack.undo()
    assert same(doc, original)  # node order included
    w.undo_stack.redo()
    assert same(doc, grouped)

    ed.scene.select_nodes([bid])
    assert ed.ungroup_block() == ["C1", "tanh_C1"]
    assert w.undo_stack.count() == 2
    assert same(doc, original)
    w.undo_stack.undo()
    assert same(doc, grouped)
    w.undo_stack.redo()
    assert same(doc, original)
    w.undo_stack.undo()
    w.undo_stack.undo()
    assert same(doc, original)


def same(doc, d: dict) -> bool:
    """Equal to ``d``: node table in the same order, same edges (edge order aside, as
    after any undo that puts edges back)."""
    return graph_to_dict(doc)["nodes"] == d["nodes"] and canonical(doc) == canonical_dict(d)


def canonical_dict(d: dict) -> dict:
    from runtime.serialization import graph_from_dict

    return canonical(graph_from_dict(d))


def test_open_block_edit_inside_close_updates_outer_analysis(window, qtbot):
    w, ed = window, window.editor
    outer = w.document
    ed.scene.select_nodes(["C1", "tanh_C1"])
    bid = ed.group_block()
    before = graph_to_dict(outer)
    assert ed.open_block(bid)
    assert ed.doc is not outer and "C1" in ed.doc and ed.breadcrumb().endswith(bid)
    assert w.inspector.doc is ed.doc  # the inspector edits the inner graph
    ed.run_analysis()
    assert ed.analysis.nodes["C1"].output_shape == (6, 28, 28)  # the inner graph alone
    ed.set_param("C1", "filters", 8)
    assert ed.close_block()
    assert ed.doc is outer and ed.block_path == []
    ed.run_analysis()
    assert ed.analysis.nodes[bid].output_shapes == {"out1": (8, 28, 28)}
    assert analyze(outer).nodes["S2"].output_shape == (8, 14, 14)
    # the whole visit is one undo step in the parent graph
    w.undo_stack.undo()
    assert same(outer, before)
    w.undo_stack.redo()
    assert analyze(outer).nodes[bid].output_shapes == {"out1": (8, 28, 28)}


def test_double_click_opens_a_block(window, qtbot):
    w, ed = window, window.editor
    ed.scene.select_nodes(["C1", "tanh_C1"])
    bid = ed.group_block()
    item = ed.scene.node_items[bid]
    pos = w.view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseDClick(w.view.viewport(), Qt.LeftButton, pos=pos)
    assert ed.block_path and ed.block_path[-1][1] == bid
    ed.close_block()
    assert ed.doc is w.document


def test_undo_and_redo_work_inside_an_open_block(window):
    w, ed = window, window.editor
    outer = w.document
    ed.scene.select_nodes(["C1", "tanh_C1"])
    bid = ed.group_block()
    grouped = graph_to_dict(outer)
    steps = w.undo_stack.index()
    assert ed.open_block(bid)
    inner = ed.doc
    ed.set_param("C1", "filters", 8)
    ed.set_param("C1", "kernel_size", 3)
    assert w.undo_stack.canUndo()
    w.undo_stack.undo()
    assert inner.node("C1").params["kernel_size"] == 5 and inner.node("C1").params["filters"] == 8
    w.undo_stack.undo()
    assert inner.node("C1").params["filters"] == 6
    w.undo_stack.undo()  # past the opening: refused, the parent graph is not touched
    assert w.undo_stack.index() == steps and same(outer, grouped) and ed.doc is inner
    w.undo_stack.redo()
    assert inner.node("C1").params["filters"] == 8
    assert ed.close_block()
    # one step in the parent replaces the inner ones; no stale inner redo entries remain
    assert w.undo_stack.index() == steps + 1 and not w.undo_stack.canRedo()
    assert analyze(outer).nodes[bid].output_shapes == {"out1": (8, 28, 28)}
    w.undo_stack.undo()
    assert same(outer, grouped)


def test_closing_an_unchanged_block_leaves_no_undo_step(window):
    w, ed = window, window.editor
    ed.scene.select_nodes(["C1", "tanh_C1"])
    bid = ed.group_block()
    steps = w.undo_stack.index()
    assert ed.open_block(bid)
    ed.set_param("C1", "filters", 8)
    ed.set_param("C1", "filters", 6)
    assert ed.close_block()
    assert w.undo_stack.index() == steps and w.undo_stack.count() == steps
