"""Keys and mouse that behave: undo/redo keys, the wheel over forms, paste at the
cursor, the error marker's tooltip, Save As naming an untitled document."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence, QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QScrollArea, QSpinBox, QVBoxLayout, QWidget

import runtime.analysis  # noqa: F401  (torch loaded before the window: no warm-up thread at exit)
from app.menus import unique_keys
from runtime.graph import GraphDocument

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def redo_action(w):
    return next(a for a in w.menu("&Edit").actions() if a.text().replace("&", "").startswith("Redo"))


def test_redo_has_ctrl_y_and_ctrl_shift_z_each_once(window):
    keys = [k.toString() for k in redo_action(window).shortcuts()]
    assert "Ctrl+Y" in keys and "Ctrl+Shift+Z" in keys
    assert len(keys) == len(set(keys))
    every = [k.toString() for a in window.findChildren(type(redo_action(window)))
             for k in a.shortcuts()]
    assert every.count("Ctrl+Shift+Z") == 1 and every.count("Ctrl+Y") == 1
    assert every.count("Ctrl+Z") == 1


def test_unique_keys_drops_repeats():
    keys = unique_keys(QKeySequence.Redo, "Ctrl+Y", "Ctrl+Shift+Z", "Ctrl+Y")
    texts = [k.toString() for k in keys]
    assert len(texts) == len(set(texts)) and {"Ctrl+Y", "Ctrl+Shift+Z"} <= set(texts)


def test_undo_redo_keys_on_the_canvas(window, qtbot):
    window.editor.add_node("Dense", (0, 0))
    assert len(window.document) == 1
    window.view.setFocus()
    for redo in ("Ctrl+Y", "Ctrl+Shift+Z"):
        qtbot.keyClick(window.view, Qt.Key_Z, Qt.ControlModifier)
        assert len(window.document) == 0
        seq = QKeySequence(redo)
        combo = seq[0]
        qtbot.keyClick(window.view, combo.key(), combo.keyboardModifiers())
        assert len(window.document) == 1, redo


def wheel(widget, dy=-120):
    pos = QPointF(widget.rect().center())
    ev = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                     QPoint(0, dy), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_the_wheel_scrolls_the_panel_not_an_unfocused_combo_or_spin_box(window, qtbot):
    panel = QWidget()
    layout = QVBoxLayout(panel)
    combo, spin = QComboBox(), QSpinBox()
    combo.addItems(["spirals", "moons", "circles"])
    spin.setRange(0, 100)
    spin.setValue(50)
    layout.addWidget(combo)
    layout.addWidget(spin)
    for _ in range(30):
        layout.addWidget(QSpinBox())
    area = QScrollArea()
    area.setWidget(panel)
    area.resize(300, 200)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    area.setFocus()
    for _ in range(3):
        wheel(combo)
        wheel(spin)
    assert combo.currentIndex() == 0 and spin.value() == 50
    assert area.verticalScrollBar().value() > 0  # the panel scrolled instead
    spin.setFocus()  # clicked into: the wheel edits it
    qtbot.waitUntil(spin.hasFocus, timeout=1000)
    wheel(spin, 120)
    assert spin.value() == 51


def test_paste_lands_at_the_given_point(window):
    window.open_example(EXAMPLES / "mlp_spirals.json")
    ids = list(window.document.nodes)[:3]
    window.editor.scene.select_nodes(ids)
    window.editor.copy()
    new = window.editor.paste(at=QPointF(2000, 3000))
    xs = [window.document.node(n).position[0] for n in new]
    ys = [window.document.node(n).position[1] for n in new]
    assert (min(xs), min(ys)) == (2000, 3000)


def test_the_error_marker_has_its_own_tooltip(window, qtbot):
    doc = GraphDocument("t")
    doc.add_node("Dense", {"units": 4}, node_id="d")  # no input: an error
    window.set_document(doc, None)
    window.editor.run_analysis()
    item = window.editor.scene.node_items["d"]
    assert item.error
    assert item.marker.isVisible()
    assert item.error.split()[0] in item.marker.toolTip() and "Error" in item.marker.toolTip()


def test_save_as_names_an_untitled_document_after_the_file(window, tmp_path):
    window.editor.add_node("Dense", (0, 0))
    window.prompts.save_as = tmp_path / "my_classifier.json"
    assert window.save_as()
    assert window.document.metadata["name"] == "my_classifier"
    named = GraphDocument("LeNet")
    window.set_document(named, None)
    window.prompts.save_as = tmp_path / "other.json"
    assert window.save_as()
    assert window.document.metadata["name"] == "LeNet"  # a chosen name stays
