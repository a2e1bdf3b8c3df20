"""The canvas reads like a diagram: layout, fit on open, legibility at fit, the unrolled
view and `netbuilder render`, checked from the scene's item geometry in a 1600x1000
window."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QRectF

from graph_editor.items import EdgeItem, NodeItem, PortItem, node_size
from graph_editor.layout import TB, edge_crossings, layered_positions
from runtime.graph import GraphDocument
from runtime.serialization import load_graph

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
ALL = sorted(p.stem for p in EXAMPLES.glob("*.json"))
MIN_TITLE_PX = 10.0


def visible_rect(view) -> QRectF:
    return view.mapToScene(view.viewport().rect()).boundingRect()


def check_legible_at_fit(w, qtbot, view=None) -> None:
    """Every node in view, titles >= MIN_TITLE_PX on screen (graphs up to 40 nodes), and
    no shape label that is drawn overlaps another label, a port or a node."""
    view = view or w.view
    qtbot.wait(20)  # the pending fit after the window settles
    scene = view.scene()
    seen = visible_rect(view)
    z = view.zoom()
    assert z <= 1.0 + 1e-9  # a small graph is not blown up
    nodes = [i for i in scene.items() if isinstance(i, NodeItem)]
    for node in nodes:
        assert seen.contains(node.sceneBoundingRect()), node.node.id
        if len(nodes) <= 40:
            assert node.title_screen_px(z) >= MIN_TITLE_PX, (node.node.id, z)
    labels = [e.label_item() for e in scene.items() if isinstance(e, EdgeItem)]
    labels = [lb for lb in labels if lb is not None and lb.isVisible()]
    if not labels or not labels[0].readable_at(z):
        return  # hidden at this zoom: nothing can overlap
    rects = [lb.sceneBoundingRect() for lb in labels]
    bodies = [n.body_rect() for n in nodes]
    ports = [p.sceneBoundingRect() for p in scene.items() if isinstance(p, PortItem)]
    for i, r in enumerate(rects):
        assert not any(r.intersects(o) for o in rects[i + 1:]), "two labels overlap"
        assert not any(r.intersects(b) for b in bodies), "a label covers a node"
        assert not any(r.intersects(p) for p in ports), "a label covers a port"


def test_nodes_never_overlap_and_crossings_are_few():
    for stem in ALL:
        doc = load_graph(EXAMPLES / f"{stem}.json")
        pos = layered_positions(doc, direction=TB)
        rects = [QRectF(*pos[n], *node_size(doc.node(n), TB)) for n in doc.nodes]
        for i, r in enumerate(rects):
            assert not any(r.intersects(o) for o in rects[i + 1:]), stem
        assert edge_crossings(doc, pos, TB) <= len(doc.edges) // 2, stem


def test_an_inception_module_reads_as_four_columns():
    doc = load_graph(EXAMPLES / "inception_small.json")
    pos = layered_positions(doc, direction=TB)
    concat = next(n for n in doc if n.type == "Concat")
    ends = [e.source for e in doc.in_edges(concat.id)]
    assert len(ends) == 4
    split = min((n for n in doc.nodes if len(doc.out_edges(n)) == 4), key=lambda n: pos[n][1])
    starts = [e.target for e in doc.out_edges(split)]
    assert len({round(pos[b][1]) for b in starts}) == 1  # the four branches start side by side
    xs = sorted(pos[b][0] for b in starts)
    assert all(b - a >= 150 for a, b in zip(xs, xs[1:]))
    ends_x = sorted(pos[b][0] for b in ends)
    assert all(b - a >= 150 for a, b in zip(ends_x, ends_x[1:]))  # and stay in columns
    assert pos[split][1] < min(pos[b][1] for b in starts) < pos[concat.id][1]


def test_a_100_node_chain_wraps_and_is_readable_at_fit(qtbot):
    from graph_editor.scene import GraphScene
    from graph_editor.view import GraphView

    doc = GraphDocument("chain")
    prev = doc.add_node("VectorInput", {"size": 8}).id
    while len(doc) < 100:
        nxt = doc.add_node("Dense" if len(doc) % 2 else "ReLU", {}).id
        doc.connect(prev, "out", nxt, "x")
        prev = nxt
    for nid, p in layered_positions(doc, aspect=964 / 940).items():  # as Ctrl+L in that view
        doc.move_node(nid, p)
    view = GraphView()
    qtbot.addWidget(view)
    view.resize(964, 940)  # the canvas between the docks of a 1600x1000 window
    view.setScene(GraphScene(doc))
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    xs = {doc.node(n).position[0] for n in doc.nodes}
    assert len(xs) >= 4  # wrapped into columns, not one long strip
    for item in view.scene().node_items.values():
        assert item.title_screen_px(view.zoom()) >= MIN_TITLE_PX
        assert visible_rect(view).contains(item.sceneBoundingRect())


def test_layout_is_fast_enough_for_500_nodes():
    """Not a timing assertion on a loaded machine: a generous bound that catches an
    accidentally quadratic step (the benchmark has the real numbers)."""
    import runtime
    from benchmarks.graphgen import make_graph

    doc = make_graph(runtime, 500)
    t0 = time.perf_counter()
    pos = layered_positions(doc)
    assert time.perf_counter() - t0 < 5.0
    assert len(pos) == 500


def test_opening_lenet5_fits_it_legibly(window, qtbot):
    assert window.open_path(EXAMPLES / "lenet5.json")
    check_legible_at_fit(window, qtbot)


def test_ctrl_l_lays_out_and_fits_and_is_one_step(window, qtbot):
    window.open_example(EXAMPLES / "mlp_spirals.json")
    for i, node in enumerate(list(window.document)):
        window.document.move_node(node.id, (i * 900.0, (i % 3) * 700.0))
    window.view.resetTransform()
    window.editor.auto_layout()
    assert window.undo_stack.count() == 1
    check_legible_at_fit(window, qtbot)


def test_layout_direction_is_kept_in_the_document(window, qtbot):
    window.open_example(EXAMPLES / "mlp_spirals.json")
    window.editor.set_layout_direction("LR")
    assert window.document.metadata["layout_direction"] == "LR"
    assert window.editor.scene.direction == "LR"
    assert window.undo_stack.count() == 1
    for e in window.document.edges:
        a, b = window.document.node(e.source).position, window.document.node(e.target).position
        assert a[0] < b[0] or a[1] + 100 < b[1]
    item = next(iter(window.editor.scene.node_items.values()))
    port = next(iter(item.out_ports.values()))
    assert port.pos().x() == item.boundingRect().width() - 24  # outputs on the right
    window.undo_stack.undo()
    assert window.editor.scene.direction == "TB"


@pytest.mark.slow
@pytest.mark.parametrize("stem", ALL)
def test_every_example_opens_fitted_and_legible(window, qtbot, stem):
    assert window.open_path(EXAMPLES / f"{stem}.json")
    check_legible_at_fit(window, qtbot)


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["char_lstm_cell", "gru_cell", "rnn_adding_problem"])
def test_unrolled_view_is_readable_at_fit(window, qtbot, stem):
    window.open_example(EXAMPLES / f"{stem}.json")
    window.unrolled_action.setChecked(True)
    assert window.current_view() is window.unrolled_view
    scene = window.unrolled_scene
    doc = scene.doc
    steps = doc.metadata.get("unrolled_steps")
    check_legible_at_fit(window, qtbot, window.unrolled_view)
    if doc.metadata.get("unrolled_columns"):
        from graph_editor.unrolled import step_of

        # the cell is laid out identically in every column
        by_rolled: dict[str, list] = {}
        for nid, node in doc.nodes.items():
            t = step_of(doc, nid)
            if t is not None:
                by_rolled.setdefault(doc.metadata["unrolled_from"][nid], []).append(
                    (t, node.position))
        for copies in by_rolled.values():
            copies.sort()
            dxs = {round(b[1][0] - a[1][0]) for a, b in zip(copies, copies[1:])}
            dys = {round(b[1][1] - a[1][1]) for a, b in zip(copies, copies[1:])}
            assert len(dxs) <= 1 and dys <= {0}
        assert any(e.delay for e in scene.edge_items.values())  # recurrent wires marked
    # fit works in the unrolled view too (View > Fit to View)
    window.unrolled_view.resetTransform()
    window.current_view().fit()
    assert visible_rect(window.unrolled_view).contains(
        window.unrolled_view.content_rect().adjusted(5, 5, -5, -5))
    assert steps >= 1


def test_render_writes_png_and_svg(tmp_path):
    from runtime.cli import main

    png, svg = tmp_path / "g.png", tmp_path / "g.svg"
    assert main(["render", str(EXAMPLES / "lenet5.json"), "--out", str(png)]) == 0
    assert main(["render", str(EXAMPLES / "lenet5.json"), "--out", str(svg),
                 "--theme", "dark"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text and "C1" in text  # the node names are text in the SVG
    assert main(["render", str(EXAMPLES / "lenet5.json"), "--out", str(tmp_path / "g.jpg")]) == 1
    assert main(["render", str(EXAMPLES / "lenet5.json"), "--unrolled", "3",
                 "--out", str(png)]) == 1  # nothing recurrent: a message, not a traceback


@pytest.mark.slow
@pytest.mark.parametrize("stem", ALL)
def test_render_every_example(tmp_path, stem):
    from PySide6.QtGui import QImage

    from runtime.cli import main

    for suffix in ("png", "svg"):
        out = tmp_path / f"{stem}.{suffix}"
        assert main(["render", str(EXAMPLES / f"{stem}.json"), "--out", str(out)]) == 0
        assert out.stat().st_size > 1000
    image = QImage(str(tmp_path / f"{stem}.png"))
    assert image.width() > 200 and image.height() > 150


def test_minimap_shows_the_graph_and_a_click_moves_the_canvas(window, qtbot):
    from PySide6.QtCore import QPoint, Qt

    window.open_example(EXAMPLES / "inception_small.json")
    window.minimap_action.setChecked(True)
    mm = window.view.minimap
    assert mm.isVisible() and mm.scene() is window.editor.scene
    window.view.resetTransform()  # zoomed in: most of the graph off screen
    target = window.editor.scene.node_items["loss"].sceneBoundingRect().center()
    qtbot.mouseClick(mm.viewport(), Qt.LeftButton, Qt.NoModifier,
                     mm.mapFromScene(target))
    assert visible_rect(window.view).contains(target)
    window.minimap_action.setChecked(False)
    assert not mm.isVisible()
    window.open_example(EXAMPLES / "lenet5.json")  # follows the document
    assert mm.scene() is window.editor.scene


def test_export_diagram_writes_the_picture(window, tmp_path):
    from PySide6.QtGui import QImage

    window.open_example(EXAMPLES / "lenet5.json")
    out = window.export_diagram(tmp_path / "lenet.png")
    image = QImage(str(out))
    assert out.exists() and image.width() > 300
    assert window.export_diagram(tmp_path / "lenet.svg").read_text().count("<svg") == 1
