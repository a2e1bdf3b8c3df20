"""The tutorial's screenshots, made by driving the real app as a user would (run under Xvfb):

    xvfb-run -a -s '-screen 0 1920x1080x24' python docs/screenshots/grab_tutorial.py

Every step goes through the widgets a user touches: the palette's search box and Enter,
the inspector's fields, mouse drags from port to port on the canvas, the Train menu's
Start, the Inside tab. Writes docs/screenshots/tutorial-*.png. Runs go to a temporary
folder; nothing is saved over the examples.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "resources" / "examples"

from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def wait(ms: int) -> None:
    QTest.qWait(ms)


def save(w, name: str, widget=None) -> None:
    QTest.mouseMove(w.view.viewport(), QPoint(2, 2))  # no port left highlighted by hover
    wait(400)
    (widget or w).grab().save(str(OUT / name))
    print("saved", OUT / name, flush=True)


def add_from_palette(w, search: str) -> str:
    """Type in the palette's search box and press Enter: the first match is added, wired
    after the selected layer, and becomes the selection."""
    set_field(w.palette.search, search)
    w.editor.run_analysis()
    return w.editor.scene.selected_node_ids()[0]


def set_param(w, name: str, value) -> None:
    """Type a value into the inspector's field and press Enter."""
    set_field(w.inspector.editors[name], value)


def set_label(w, text: str) -> None:
    set_field(w.inspector.label_edit, text)


def set_field(editor, value) -> None:
    """Select the field's text, type the value over it, press Enter."""
    editor.setFocus()
    if hasattr(editor, "selectAll"):
        editor.selectAll()
    elif hasattr(editor, "lineEdit"):
        editor.lineEdit().selectAll()
    QTest.keyClicks(editor, str(value))
    QTest.keyClick(editor, Qt.Key_Return)
    wait(200)


def view_point(w, scene_point) -> QPoint:
    return w.view.mapFromScene(scene_point)


def drag_wire(w, src: str, src_port: str, dst: str, dst_port: str) -> None:
    """Press on an output port, move over the canvas, release on an input port."""
    items = w.editor.scene.node_items
    a = view_point(w, items[src].port(src_port, True).scene_anchor())
    b = view_point(w, items[dst].port(dst_port, False).scene_anchor())
    vp = w.view.viewport()
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, a)
    for i in range(1, 11):
        QTest.mouseMove(vp, a + (b - a) * (i / 10.0))
        wait(15)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, b)
    wait(200)


def press(widget, key, modifier=Qt.NoModifier) -> None:
    widget.setFocus()
    QTest.keyClick(widget, key, modifier)
    wait(300)


def menu_action(w, menu: str, text: str):
    for action in w.menu(menu).actions():
        if action.text().replace("&", "") == text:
            return action
    raise LookupError(f"{menu} > {text}")


def tab(plots, title: str) -> None:
    titles = [plots.tabs.tabText(i) for i in range(plots.tabs.count())]
    plots.tabs.setCurrentIndex(titles.index(title))
    wait(300)


def wait_for(condition, timeout_s: float) -> bool:
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        wait(200)
    return False


def click_node(w, node_id: str) -> None:
    item = w.editor.scene.node_items[node_id]
    p = view_point(w, item.mapToScene(item.boundingRect().center()))
    QTest.mouseClick(w.view.viewport(), Qt.LeftButton, Qt.NoModifier, p)
    wait(200)


def draw_spirals_mlp(w) -> None:
    w.new_document()
    wait(300)
    save(w, "tutorial-new.png")
    point = add_from_palette(w, "vector input")
    set_param(w, "features", 2)
    set_label(w, "(x, y) point")
    add_from_palette(w, "dense")
    set_param(w, "units", 32)
    add_from_palette(w, "tanh")
    add_from_palette(w, "dense")
    set_param(w, "units", 32)
    add_from_palette(w, "relu")
    logits = add_from_palette(w, "dense")
    set_param(w, "units", 2)
    set_label(w, "class scores")
    press(w.view, Qt.Key_F)  # View > Fit to View
    save(w, "tutorial-palette.png")
    loss = add_from_palette(w, "crossentropy")
    click_node(w, point)  # a Target placed away from the chain: nothing selected to wire to
    w.editor.scene.clearSelection()
    target = add_from_palette(w, "target")
    set_param(w, "num_classes", 2)
    w.editor.auto_layout(False)
    press(w.view, Qt.Key_F)  # View > Fit to View
    drag_wire(w, target, "out", loss, "target")
    w.view.setFocus()
    QTest.keyClick(w.view, Qt.Key_L, Qt.ControlModifier)  # Edit > Auto-layout
    press(w.view, Qt.Key_F)
    w.editor.run_analysis()
    click_node(w, logits)
    save(w, "tutorial-drawn.png")
    print("nodes:", [(n.id, n.type, n.params) for n in w.document], flush=True)
    print("edges:", [(e.source, e.target, e.target_port) for e in w.document.edges], flush=True)


def set_training(w, key: str, value) -> None:
    """Type into a field of the Training panel's form."""
    field = w.training_ui.ensure_built()._editors[key]
    set_field(field, value)


def train_spirals(w) -> None:
    ui = w.training_ui
    set_training(w, "lr", 0.01)
    set_training(w, "epochs", 40)
    menu_action(w, "&Train", "Start training").trigger()
    wait_for(lambda: not ui.controller.active, 180)
    wait(1500)
    save(w, "tutorial-trained.png")
    plots = ui.ensure_plots()
    tab(plots, "Evaluation")
    save(w, "tutorial-evaluation.png")
    tab(plots, "Curves")


def forget_changes(w) -> None:
    """The tutorial's drawing is not saved: no "save changes?" question on the next open."""
    w.undo_stack.setClean()
    w._forced_modified = False


def inside_cnn(w) -> None:
    ui = w.training_ui
    forget_changes(w)
    w.open_example(EXAMPLES / "digits_cnn.json")
    press(w.view, Qt.Key_F)
    conv = next(n.id for n in w.document if n.type == "Conv2d")
    click_node(w, conv)
    menu_action(w, "&Train", "Start training").trigger()
    tab(ui.ensure_plots(), "Inside")
    wait_for(lambda: ui.controller.state == "running", 120)
    wait(10000)
    save(w, "tutorial-inside.png")
    ui.controller.stop()
    wait(2000)


def export_dialog(w, tmp: Path) -> None:
    menu_action(w, "&File", "Export...").trigger()
    wait(1500)
    dlg = w.export_dialog
    dlg.select_format("onnx")
    dlg.path_edit.setText(str(tmp / "digits_cnn.onnx"))
    dlg.start_export()
    wait_for(lambda: not dlg.is_running(), 120)
    wait(500)
    save(w, "tutorial-export.png", dlg)
    dlg.close()
    wait(300)


def import_pytorch(w) -> None:
    from app.export_ui import open_import

    forget_changes(w)
    tab(w.training_ui.ensure_plots(), "Curves")
    job = open_import(w, str(ROOT / "resources" / "pytorch" / "small_cnn.py"), "SmallCNN",
                      ["1,28,28"])
    wait_for(lambda: any(n.id == "bn1" for n in w.document), 180)
    wait(1000)
    press(w.view, Qt.Key_F)
    for _ in range(3):  # View > Zoom In, to where shapes and counts show
        menu_action(w, "&View", "Zoom In").trigger()
    w.select_node("fc1")  # selected and centred, as clicking it in Diagnostics does
    wait(500)
    save(w, "tutorial-imported.png")
    del job


def main() -> int:
    tmp = Path(tempfile.gettempdir()) / "netbuilder-tutorial"  # the path the dialog shows
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    os.environ["NETBUILDER_RUNS_DIR"] = str(tmp / "runs")
    app = QApplication(sys.argv[:1])
    from app.window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat), recovery_dir=tmp)
    w.resize(1920, 1080)
    w.show()
    wait(1500)
    only = sys.argv[1:]
    steps = [("draw", lambda: draw_spirals_mlp(w)), ("train", lambda: train_spirals(w)),
             ("inside", lambda: inside_cnn(w)), ("export", lambda: export_dialog(w, tmp)),
             ("import", lambda: import_pytorch(w))]
    for name, step in steps:
        if not only or name in only or (name == "train" and "draw" in only):
            step()
    forget_changes(w)
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
