"""Canvas interaction details found by driving the window: palette search order, fit
margins in a short canvas."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.app.conftest import make_window  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def test_palette_search_ranks_name_matches_before_description_matches(qtbot):
    from graph_editor.palette import PaletteWidget, QuickAddPopup

    palette = PaletteWidget()
    qtbot.addWidget(palette)
    popup = QuickAddPopup()
    qtbot.addWidget(popup)
    for text, first in [("cross entropy", "CrossEntropy"), ("crossentropy", "CrossEntropy"),
                        ("softmax", "Softmax"), ("relu", "ReLU"), ("conv", None)]:
        palette.search.setText(text)
        popup.edit.setText(text)
        types = palette.visible_types()
        listed = [popup.list.item(i).data(Qt.UserRole + 1) for i in range(popup.list.count())]
        assert types and listed[0] == types[0], text
        if first is not None:
            assert types[0] == first, (text, types)
            assert palette.tree.currentItem().data(0, Qt.UserRole + 1) == first
        else:
            assert "conv" in types[0].lower(), types
    palette.search.setText("cross entropy")
    with qtbot.waitSignal(palette.add_requested) as sig:
        palette.search.returnPressed.emit()
    assert sig.args == ["CrossEntropy"]


def _chain(n: int):
    from runtime.graph import GraphDocument

    doc = GraphDocument("chain")
    prev = doc.add_node("VectorInput", {"size": 8}).id
    while len(doc) < n:
        nxt = doc.add_node("Dense" if len(doc) % 2 else "ReLU", {}).id
        doc.connect(prev, "out", nxt, "x")
        prev = nxt
    return doc


def _everything_drawn(scene):
    """Every visible top-level item and its visible descendants (ports, badges, chips)."""
    out, todo = [], [i for i in scene.items() if i.parentItem() is None and i.isVisible()]
    while todo:
        item = todo.pop()
        out.append(item)
        todo.extend(c for c in item.childItems() if c.isVisible())
    return out


@pytest.mark.parametrize("size", [(900, 480), (600, 300), (1400, 900), (400, 700)])
def test_fit_shows_the_whole_chain_with_a_margin_in_any_canvas(qtbot, size):
    from graph_editor.health_overlay import HealthBadge
    from graph_editor.layout import layered_positions
    from graph_editor.scene import GraphScene
    from graph_editor.view import GraphView

    doc = _chain(6)
    for nid, p in layered_positions(doc).items():
        doc.move_node(nid, p)
    view = GraphView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.setScene(GraphScene(doc))
    view.show()
    qtbot.waitExposed(view)
    for item in view.scene().node_items.values():  # a health chip above every node
        badge = HealthBadge(item, 160.0)
        badge.set_record({"grad_norm": 1.0, "dead_fraction": 0.0}, False, False)
    view.fit()
    vp = view.viewport().rect().adjusted(8, 8, -8, -8)  # a margin on every side
    for item in _everything_drawn(view.scene()):
        shown = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
        assert vp.contains(shown), (type(item).__name__, shown, vp)


def test_an_imported_13_node_chain_opens_wrapped_and_in_full_detail(make_window, qtbot, tmp_path):
    """An importer writes one long column; in a canvas about 900 x 460 px that column is
    only title blocks at fit, while wrapped into columns it is readable: it opens so."""
    from graph_editor.items import BLOCK_LOD
    from runtime.graph import GraphDocument
    from runtime.serialization import save_graph

    doc = GraphDocument("imported")
    prev = doc.add_node("VectorInput", {"features": 8}, position=(0.0, 0.0)).id
    while len(doc) < 13:
        nxt = doc.add_node("Dense" if len(doc) % 2 else "ReLU", {},
                           position=(0.0, 104.0 * len(doc))).id
        doc.connect(prev, "out", nxt, "x")
        prev = nxt
    path = tmp_path / "imported.json"
    save_graph(doc, path)
    w = make_window(size=(1500, 920))
    w.view.setMaximumHeight(480)
    qtbot.wait(20)
    assert w.open_path(path), w.statusBar().currentMessage()
    qtbot.wait(50)
    d = w.document
    assert len({d.node(n).position[0] for n in d.nodes}) >= 2  # wrapped into columns
    assert w.view.zoom() >= BLOCK_LOD  # full detail, not title blocks
    seen = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    for item in w.editor.scene.node_items.values():
        assert seen.contains(item.sceneBoundingRect()), item.node.id
    assert not w.isWindowModified() and w.undo_stack.count() == 0
