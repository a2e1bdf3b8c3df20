"""Drive the real main window: palette, wiring, inspector, undo, clipboard, files."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QGraphicsItem, QSpinBox

from graph_editor.items import EdgeItem, NodeItem
from runtime.graph import GraphDocument
from runtime.serialization import load_graph, save_graph
from tests.app.conftest import make_window  # noqa: F401  (importable from here, as before)
from tests.app.helpers import ScriptedPrompts  # noqa: F401  (importable from here, as before)
from tests.graph_editor.helpers import canonical

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def palette_drop(window, type_id: str, view_pos=QPoint(200, 200)) -> str:
    """Drag a layer from the palette onto the canvas: the real mime data and drop."""
    tree = window.palette.tree
    item = next(c for c, s in window.palette._items if s.type == type_id)
    mime = tree.mimeData([item])
    before = set(window.document.nodes)
    event = QDropEvent(QPointF(view_pos), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.view.dropEvent(event)
    (new,) = set(window.document.nodes) - before
    return new


def port_view_pos(window, node_id, port, output):
    item = window.editor.scene.node_items[node_id].port(port, output)
    return window.view.mapFromScene(item.scenePos())


def drag_wire(qtbot, window, src, sport, dst, dport):
    vp = window.view.viewport()
    a = port_view_pos(window, src, sport, True)
    b = port_view_pos(window, dst, dport, False)
    qtbot.mousePress(vp, Qt.LeftButton, Qt.NoModifier, a)
    qtbot.mouseMove(vp, b)
    qtbot.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, b)


def test_draw_a_small_network_with_palette_wires_and_inspector(make_window, qtbot):
    w = make_window()
    inp = palette_drop(w, "ImageInput", QPoint(100, 200))
    conv = palette_drop(w, "Conv2d", QPoint(400, 200))
    assert w.document.node(conv).type == "Conv2d"
    w.view.fit()
    qtbot.wait(10)
    drag_wire(qtbot, w, inp, "out", conv, "x")
    assert [(e.source, e.target) for e in w.document.edges] == [(inp, conv)]
    # live analysis puts the tensor shape on the edge
    w.editor.run_analysis()
    (edge_item,) = w.editor.scene.edge_items.values()
    assert edge_item.label == "1×28×28"
    assert edge_item.zValue() < w.editor.scene.node_items[conv].zValue()
    # edit a parameter in the inspector
    w.select_node(conv)
    spin = w.inspector.editors["filters"]
    assert isinstance(spin, QSpinBox)
    spin.setValue(6)
    assert w.document.node(conv).params["filters"] == 6
    w.editor.run_analysis()
    assert w.editor.analysis.nodes[conv].output_shapes["out"] == (6, 26, 26)
    assert "parameters" in w.totals_label.text()
    assert w.isWindowModified()
    # undo the parameter, the wire, then redo everything
    after = canonical(w.document)
    w.undo_stack.undo()
    assert w.document.node(conv).params["filters"] == 8
    assert spin.value() == 8
    w.undo_stack.undo()
    assert not w.document.edges
    w.undo_stack.redo()
    w.undo_stack.redo()
    assert canonical(w.document) == after


def test_incompatible_drop_is_refused_with_the_reason(make_window, qtbot):
    w = make_window()
    tgt = palette_drop(w, "Target", QPoint(100, 200))
    conv = palette_drop(w, "Conv2d", QPoint(400, 200))
    w.view.fit()
    qtbot.wait(10)
    drag_wire(qtbot, w, tgt, "out", conv, "x")
    assert not w.document.edges
    assert "index" in w.statusBar().currentMessage()


def test_quick_add_popup_adds_at_the_cursor(make_window, qtbot):
    w = make_window()
    w._quick_add_at(QPointF(50, 60))
    w.quick_add.edit.setText("relu")
    qtbot.keyClick(w.quick_add.edit, Qt.Key_Return)
    (node,) = w.document
    assert node.type == "ReLU" and node.position == (50.0, 60.0)


def test_copy_paste_duplicate_delete_and_select_all(make_window, qtbot):
    w = make_window()
    assert w.open_example(EXAMPLES / "mlp_spirals.json")
    n = len(w.document)
    w.editor.select_all()
    w.editor.copy()
    new = w.editor.paste()
    assert len(new) == n and len(w.document) == 2 * n
    assert len(w.document.edges) == 2 * len(load_graph(EXAMPLES / "mlp_spirals.json").edges)
    assert sorted(w.editor.selected_ids()) == sorted(new)
    w.editor.delete_selection()
    assert len(w.document) == n
    w.undo_stack.undo()
    assert len(w.document) == 2 * n
    w.undo_stack.undo()  # the paste
    w.editor.scene.select_nodes([next(iter(w.document.nodes))])
    w.editor.duplicate()
    assert len(w.document) == n + 1


def test_clipboard_is_plain_json_another_window_can_paste(make_window):
    a, b = make_window(), make_window()
    a.open_example(EXAMPLES / "lenet5.json")
    a.editor.scene.select_nodes(["C1", "tanh_C1"])
    a.editor.copy()
    far = b.editor.add_node("Dense", (5000, -3000))
    b.view.centerOn(b.editor.scene.node_items[far])  # b looks far from where they sat in a
    looking_at = b.view.mapToScene(b.view.viewport().rect().center())
    ids = b.editor.paste()
    assert b.view.mapToScene(b.view.viewport().rect().center()) == looking_at  # no jump
    assert sorted(b.document.node(i).type for i in ids) == ["Conv2d", "Tanh"]
    assert len([e for e in b.document.edges if e.source in ids]) == 1
    visible = b.view.mapToScene(b.view.viewport().rect()).boundingRect()
    for i in ids:  # pasted where the user is looking
        assert visible.intersects(b.editor.scene.node_items[i].sceneBoundingRect())


def test_save_and_reopen_gives_an_equal_document(make_window, tmp_path):
    w = make_window()
    w.open_example(EXAMPLES / "lenet5.json")
    w.editor.add_node("ReLU", (10, 10))
    w.prompts.save_as = tmp_path / "net.json"
    assert w.save()
    assert not w.isWindowModified() and w.windowTitle().startswith("net.json")
    assert load_graph(tmp_path / "net.json") == w.document
    w2 = make_window()
    assert w2.open_path(tmp_path / "net.json")
    assert w2.document == w.document
    assert w2.recent_files()[0] == (tmp_path / "net.json").resolve()


def test_open_broken_file_reports_and_keeps_the_document(make_window, tmp_path):
    w = make_window()
    w.open_example(EXAMPLES / "lenet5.json")
    before = w.document
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "netbuilder.graph", "version": 1, "nodes": [{"id": "a", '
                   '"type": "NoSuchLayer"}], "edges": []}')
    assert not w.open_path(bad)
    assert w.document is before
    (title, text, details), = w.prompts.errors
    assert "bad.json" in text and "NoSuchLayer" in details
    w.prompts.errors.clear()
    (tmp_path / "junk.json").write_text("{ not json")
    assert not w.open_path(tmp_path / "junk.json")
    assert "line 1" in w.prompts.errors[0][2]


def test_autosave_writes_beside_the_document_and_is_offered_back(make_window, tmp_path):
    path = tmp_path / "net.json"
    save_graph(load_graph(EXAMPLES / "mlp_spirals.json"), path)
    w = make_window()
    w.open_path(path)
    assert w.autosave_now() is None  # nothing unsaved
    w.editor.add_node("ReLU", (0, 300))
    rec = w.autosave_now()
    assert rec == tmp_path / ".net.json.autosave" and rec.exists()
    assert load_graph(path) != w.document  # the document itself is untouched
    edited = canonical(w.document)
    os.utime(rec, (time.time() + 5, time.time() + 5))
    w2 = make_window()
    assert w2.open_path(path)
    assert w2.prompts.asked == ["recover"]
    assert canonical(w2.document) == edited and w2.isWindowModified()
    assert w2.save()
    assert not rec.exists()


CRASHING_SESSION = """
import os, sys
from pathlib import Path
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from app.window import MainWindow
app = QApplication([])
rec_dir, doc = Path(sys.argv[1]), (sys.argv[2] or None)
w = MainWindow(settings=QSettings(str(rec_dir / "s.ini"), QSettings.IniFormat),
               recovery_dir=rec_dir, plugins=False)
if doc:
    assert w.open_path(doc, ask_save=False)
w.editor.add_node("Dense", (0, 400))
assert w.autosave_now() is not None
print(len(w.document), flush=True)
os._exit(9)  # a crash: no close, no clean-up
"""


def _crash_a_session(tmp_path, document="") -> int:
    """Run a real window in a child process that autosaves an edit and then dies."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(root))
    r = subprocess.run([sys.executable, "-c", CRASHING_SESSION, str(tmp_path / "recovery"),
                        str(document)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 9, r.stderr[-2000:]
    return int(r.stdout.split()[-1])


@pytest.mark.slow
def test_untitled_work_of_a_crashed_session_is_offered_at_start(make_window, tmp_path):
    nodes = _crash_a_session(tmp_path)
    (rec,) = (tmp_path / "recovery").glob("untitled-*.autosave")
    w = make_window()
    assert w.offer_recovery()
    assert w.prompts.asked == ["recover"]
    assert len(w.document) == nodes and w.isWindowModified() and w.file_path is None
    assert not rec.exists()  # now autosaved under this session's own name
    assert w.recovery_path().exists()


@pytest.mark.slow
def test_titled_work_of_a_crashed_session_is_offered_at_a_plain_start(make_window, tmp_path):
    path = tmp_path / "net.json"
    save_graph(load_graph(EXAMPLES / "mlp_spirals.json"), path)
    saved = path.read_text()
    time.sleep(0.05)  # the autosave must be newer than the document
    nodes = _crash_a_session(tmp_path, path)
    assert path.read_text() == saved  # autosave never writes over the document
    w = make_window()
    assert w.offer_recovery()
    assert w.file_path == path.resolve() and len(w.document) == nodes
    assert w.isWindowModified()
    assert w.save() and len(load_graph(path)) == nodes
    assert not (tmp_path / ".net.json.autosave").exists()
    assert not w.offer_recovery()  # nothing left over
    assert not list((tmp_path / "recovery").glob("session-*.ref"))


@pytest.mark.slow
def test_declined_recovery_is_removed(make_window, tmp_path):
    _crash_a_session(tmp_path)
    w = make_window()
    w.prompts.recover_answer = False
    assert not w.offer_recovery()
    assert not list((tmp_path / "recovery").glob("untitled-*.autosave"))
    assert not w.offer_recovery()


def test_work_of_a_running_window_is_never_offered(make_window, tmp_path):
    w = make_window()
    w.editor.add_node("Dense", (0, 0))
    rec = w.autosave_now()
    assert rec is not None and rec.parent == tmp_path / "recovery"
    w2 = make_window()
    assert not w2.offer_recovery()
    assert w2.prompts.asked == [] and rec.exists()


def test_edits_inside_an_open_block_are_autosaved(make_window, tmp_path):
    path = tmp_path / "net.json"
    save_graph(load_graph(EXAMPLES / "lenet5.json"), path)
    w = make_window()
    w.open_path(path)
    w.editor.scene.select_nodes(["C1", "tanh_C1"])
    block = w.editor.group_block()
    assert w.editor.open_block(block)
    w.editor.run_analysis()
    where, totals = w.totals_label.text().split(": ", 1)
    inner_n = len(w.editor.doc)  # the two grouped layers and the block's ports
    assert where.endswith(block) and totals.startswith(f"{inner_n} nodes")  # the block's graph
    w.editor.add_node("ReLU", (0, 300))
    w.editor.add_node("ReLU", (0, 400))
    rec = w.autosave_now()
    assert rec is not None
    inner = load_graph(rec).node(block).params["graph"]["nodes"]
    assert len(inner) == inner_n + 2
    assert w.editor.block_path  # still open: autosave did not close it
    w.editor.add_node("Tanh", (0, 500))
    assert w.autosave_now() is not None  # an edit inside the block is a change to save
    assert len(load_graph(rec).node(block).params["graph"]["nodes"]) == inner_n + 3
    assert w.autosave_now() is None  # and nothing new: nothing written


def test_saving_keeps_the_file_permissions(make_window, tmp_path):
    path = tmp_path / "net.json"
    save_graph(load_graph(EXAMPLES / "mlp_spirals.json"), path)
    os.chmod(path, 0o644)
    w = make_window()
    w.open_path(path)
    w.editor.add_node("ReLU", (0, 300))
    assert w.save()
    assert (path.stat().st_mode & 0o777) == 0o644


def test_closing_with_unsaved_changes_asks(make_window):
    w = make_window()
    w.editor.add_node("Dense", (0, 0))
    w.prompts.unsaved_answer = "cancel"
    assert not w.close()
    assert w.prompts.asked == ["unsaved"]
    w.prompts.unsaved_answer = "discard"
    assert w.close()


def test_diagnostic_click_selects_the_node(make_window, qtbot):
    w = make_window()
    d = w.editor.add_node("Dense", (0, 0))
    w.editor.scene.clearSelection()
    w.editor.run_analysis()
    items = [w.diagnostics.item(i) for i in range(w.diagnostics.count())]
    item = next(i for i in items if i.text().startswith(d))
    w.diagnostics.itemClicked.emit(item)
    assert w.editor.selected_ids() == [d]
    assert w.editor.scene.node_items[d].error  # the unconnected input is pinned to it


def test_agreed_interface(make_window, qtbot):
    from PySide6.QtWidgets import QLabel

    w = make_window()
    seen = []
    w.document_replaced.connect(seen.append)
    w.new_document()
    assert seen == [w.document]
    dock = w.add_dock("Extra", QLabel("x"), object_name="ExtraDock")
    assert dock.objectName() == "ExtraDock"
    assert w.menu("&Train") is w.menu("Train")
    assert w.menu("&Edit").title() == "&Edit"
    w.show_message("hello")
    assert w.statusBar().currentMessage() == "hello"


def test_auto_layout_is_one_undo_step(make_window):
    w = make_window()
    w.open_example(EXAMPLES / "mlp_spirals.json")
    for i, node in enumerate(list(w.document)):  # scattered (the example is laid out)
        w.document.move_node(node.id, (i * 37 % 300, i * 91 % 500))
    before = canonical(w.document)
    w.editor.auto_layout()
    assert w.undo_stack.count() == 1 and canonical(w.document) != before
    w.undo_stack.undo()
    assert canonical(w.document) == before


def test_a_new_user_draws_lenet5_from_an_empty_canvas(make_window, qtbot):
    """One palette activation per layer: each new layer lands after (below) the selected one
    and is wired to it; then the label input is wired by dragging. Shapes everywhere."""
    w = make_window()
    tree = w.palette.tree

    def add(type_id, **params):
        item = next(c for c, s in w.palette._items if s.type == type_id)
        tree.itemActivated.emit(item, 0)  # double-click / Enter in the palette
        (nid,) = w.editor.selected_ids()
        for name, value in params.items():
            editor = w.inspector.editors[name]
            if isinstance(editor, QSpinBox):
                editor.setValue(value)
            else:
                editor.setText(str(value))
                editor.editingFinished.emit()
        return nid

    add("ImageInput", height=32, width=32)
    add("Conv2d", filters=6, kernel_size=5)
    add("Tanh")
    add("AvgPool")
    add("Conv2d", filters=16, kernel_size=5)
    add("Tanh")
    add("AvgPool")
    add("Flatten")
    add("Dense", units=120)
    add("Tanh")
    add("Dense", units=84)
    add("Tanh")
    add("Dense", units=10)
    loss = add("CrossEntropy")
    w.editor.scene.clearSelection()
    target = add("Target")
    w.editor.fit_nodes([target, loss])  # close enough to see the ports (zoomed out, a
    qtbot.wait(10)  # node is a block without ports)
    drag_wire(qtbot, w, target, "out", loss, "target")
    w.editor.run_analysis()
    assert len(w.document) == 15 and len(w.document.edges) == 14
    assert not [d for d in w.editor.diagnostics if d.is_error], w.editor.diagnostics
    assert all(item.label for item in w.editor.scene.edge_items.values())
    assert w.editor.analysis.total_params == 61_706  # LeNet-5 with dense layers
    # positions never pile up: every node has its own place
    assert len({n.position for n in w.document}) == 15


def test_group_move_ungroup_with_undo_and_save(make_window, qtbot, tmp_path):
    from graph_editor.groups import GroupItem, groups_of

    w = make_window()
    w.open_example(EXAMPLES / "lenet5.json")
    w.editor.scene.select_nodes(["C1", "tanh_C1", "S2"])
    gid = w.editor.group_selection("Feature block")
    (group,) = groups_of(w.document.metadata)
    assert group == {"id": gid, "title": "Feature block", "nodes": ["C1", "tanh_C1", "S2"]}
    (frame,) = [i for i in w.editor.scene.items() if isinstance(i, GroupItem)]
    assert frame.zValue() < w.editor.scene.node_items["C1"].zValue()
    # dragging the frame's title moves its nodes, as one undo step
    w.view.resetTransform()
    w.view.centerOn(frame)
    qtbot.wait(10)
    title = w.view.mapFromScene(frame.boundingRect().topLeft()) + QPoint(30, 8)
    before = {n: w.document.node(n).position for n in group["nodes"]}
    vp = w.view.viewport()
    qtbot.mousePress(vp, Qt.LeftButton, Qt.NoModifier, title)
    qtbot.mouseMove(vp, title + QPoint(40, 30))
    qtbot.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, title + QPoint(40, 30))
    after = {n: w.document.node(n).position for n in group["nodes"]}
    assert all(after[n] != before[n] for n in after)
    w.undo_stack.undo()
    assert {n: w.document.node(n).position for n in group["nodes"]} == before
    # groups are saved with the document
    w.prompts.save_as = tmp_path / "g.json"
    assert w.save()
    assert groups_of(load_graph(tmp_path / "g.json").metadata) == [group]
    w.editor.scene.select_nodes(["tanh_C1"])
    w.editor.ungroup_selection()
    assert not groups_of(w.document.metadata)
    assert not [i for i in w.editor.scene.items() if isinstance(i, GroupItem)]
    w.undo_stack.undo()
    assert groups_of(w.document.metadata) == [group]


def test_click_shift_click_and_rubber_band_selection(make_window, qtbot):
    w = make_window()
    w.open_example(EXAMPLES / "mlp_spirals.json")
    w.view.resetTransform()
    scene = w.editor.scene
    a, b = scene.node_items["hidden1"], scene.node_items["tanh1"]
    w.view.centerOn(a)
    qtbot.wait(10)
    vp = w.view.viewport()

    def centre(item):
        return w.view.mapFromScene(item.sceneBoundingRect().center())

    qtbot.mouseClick(vp, Qt.LeftButton, Qt.NoModifier, centre(a))
    assert w.editor.selected_ids() == ["hidden1"]
    qtbot.mouseClick(vp, Qt.LeftButton, Qt.ShiftModifier, centre(b))
    assert sorted(w.editor.selected_ids()) == ["hidden1", "tanh1"]
    qtbot.mouseClick(vp, Qt.LeftButton, Qt.ShiftModifier, centre(a))
    assert w.editor.selected_ids() == ["tanh1"]
    # rubber band around both nodes, starting on empty canvas
    band = a.sceneBoundingRect().united(b.sceneBoundingRect()).adjusted(-30, -60, 30, 60)
    start = w.view.mapFromScene(band.topLeft())
    end = w.view.mapFromScene(band.bottomRight())
    qtbot.mousePress(vp, Qt.LeftButton, Qt.NoModifier, start)
    qtbot.mouseMove(vp, (start + end) / 2)
    qtbot.mouseMove(vp, end)
    qtbot.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, end)
    assert {"hidden1", "tanh1"} <= set(w.editor.selected_ids())


def test_drag_an_edge_end_off_its_input_disconnects_it(make_window, qtbot):
    w = make_window()
    w.open_example(EXAMPLES / "mlp_spirals.json")
    w.view.resetTransform()
    w.view.centerOn(w.editor.scene.node_items["tanh1"])
    qtbot.wait(10)
    (edge,) = [e for e in w.document.edges if e.target == "tanh1"]
    vp = w.view.viewport()
    a = port_view_pos(w, "tanh1", edge.target_port, False)
    empty = a + QPoint(0, 160)
    qtbot.mousePress(vp, Qt.LeftButton, Qt.NoModifier, a)
    qtbot.mouseMove(vp, empty)
    qtbot.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, empty)
    assert edge not in w.document.edges
    w.undo_stack.undo()
    assert edge in w.document.edges


def test_drag_a_wire_by_its_output_end_to_another_output(make_window, qtbot):
    """Output ports fan out (a drag from one starts a new wire), so a wire's source end is
    picked up just beside the port, on the wire itself."""
    w = make_window()
    w.open_example(EXAMPLES / "mlp_spirals.json")
    w.view.resetTransform()
    w.view.centerOn(w.editor.scene.node_items["hidden1"])
    qtbot.wait(10)
    old = next(e for e in w.document.edges if (e.source, e.target) == ("hidden1", "tanh1"))
    vp = w.view.viewport()
    out_dir = QPoint(0, 12) if w.editor.scene.direction == "TB" else QPoint(12, 0)
    beside = port_view_pos(w, "hidden1", old.source_port, True) + out_dir
    other = port_view_pos(w, "point", "out", True)
    qtbot.mousePress(vp, Qt.LeftButton, Qt.NoModifier, beside)
    qtbot.mouseMove(vp, other)
    qtbot.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, other)
    into_tanh = [e for e in w.document.edges if e.target == "tanh1"]
    assert [(e.source, e.target_port) for e in into_tanh] == [("point", old.target_port)]
    assert ("hidden1", "hidden2") not in [(e.source, e.target) for e in w.document.edges]
    w.undo_stack.undo()  # one step
    assert old in w.document.edges and len([e for e in w.document.edges if e.target == "tanh1"]) == 1
    # a press on a node near its port still moves the node, never grabs a wire
    inside = port_view_pos(w, "hidden1", old.source_port, True) - out_dir
    assert w.editor.scene._wire_end_at(w.view.mapToScene(inside)) is None


def test_unrolled_view_is_read_only_and_toggles_back(make_window):
    w = make_window()
    w.open_example(EXAMPLES / "lenet5.json")
    w.unrolled_action.setChecked(True)  # a feed-forward graph: refused with a reason
    assert not w.unrolled_action.isChecked()
    assert "no recurrent part" in w.statusBar().currentMessage()
    cell = EXAMPLES / "gru_cell.json"
    w.open_example(cell)
    delays = [e for e in w.editor.scene.edge_items.values() if e.delay]
    assert delays  # recurrent connections are drawn dashed
    w.unrolled_action.setChecked(True)
    assert w.stack.currentWidget() is w.unrolled_view
    scene = w.unrolled_scene
    assert scene.read_only and len(scene.node_items) > len(w.document)
    assert all(not (i.flags() & QGraphicsItem.ItemIsMovable) for i in scene.node_items.values())
    assert any(e.label for e in scene.edge_items.values())
    w.unrolled_action.setChecked(False)
    assert w.stack.currentWidget() is w.view


def test_keyboard_tab_quick_add_and_delete_on_the_canvas(make_window, qtbot):
    w = make_window()
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key_Tab)
    assert w.quick_add.isVisible()
    qtbot.keyClicks(w.quick_add.edit, "dense")
    qtbot.keyClick(w.quick_add.edit, Qt.Key_Return)
    (node,) = w.document
    assert node.type == "Dense" and w.editor.selected_ids() == [node.id]
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key_Delete)
    assert len(w.document) == 0
    qtbot.keyClick(w.view, Qt.Key_Z, Qt.ControlModifier)
    assert len(w.document) == 1


def test_context_menus_on_node_edge_and_canvas(make_window):
    from PySide6.QtWidgets import QMenu

    w = make_window()
    w.open_example(EXAMPLES / "mlp_spirals.json")
    scene = w.editor.scene
    node = scene.node_items["hidden1"]
    edge = next(iter(scene.edge_items.values()))
    for item in (node.in_ports["x"], edge, None):  # a port counts as its node
        w._context_menu(item, QPointF(100, 100))
        menus = [m for m in w.findChildren(QMenu) if m.isVisible()]
        assert menus and menus[-1].actions()
        texts = [a.text() for a in menus[-1].actions()]
        menus[-1].close()
        if item is edge:
            assert "Disconnect" in texts
        elif item is None:
            assert "Paste" in texts
        else:
            assert "Group" in texts and w.editor.selected_ids() == ["hidden1"]


def test_dragging_a_node_is_one_undo_step_and_snaps_to_the_grid(make_window, qtbot):
    w = make_window()
    w.open_example(EXAMPLES / "mlp_spirals.json")
    w.snap_action.setChecked(True)
    w.view.resetTransform()
    item = w.editor.scene.node_items["tanh1"]
    w.view.centerOn(item)
    qtbot.wait(10)
    vp = w.view.viewport()
    start = w.view.mapFromScene(item.sceneBoundingRect().center() + QPointF(0, 12))
    before = w.document.node("tanh1").position
    count = w.undo_stack.count()
    qtbot.mousePress(vp, Qt.LeftButton, Qt.NoModifier, start)
    for dx in (10, 25, 47):
        qtbot.mouseMove(vp, start + QPoint(dx, dx // 2))
    qtbot.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, start + QPoint(47, 23))
    x, y = w.document.node("tanh1").position
    assert (x, y) != before and x % 20 == 0 and y % 20 == 0
    assert w.undo_stack.count() == count + 1
    w.undo_stack.undo()
    assert w.document.node("tanh1").position == before
    assert (item.pos().x(), item.pos().y()) == before


def test_fit_shows_nodes_added_far_away(make_window, qtbot):
    w = make_window()
    a = w.editor.add_node("Dense", (0, 0))
    b = w.editor.add_node("ReLU", (6000, 2500))
    w.view.fit()
    visible = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    for nid in (a, b):
        assert visible.contains(w.editor.scene.node_items[nid].sceneBoundingRect())
