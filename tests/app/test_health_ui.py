"""The app side of node health: read-outs on the canvas, the Inside tab, Try it, and the
debugging habits of the Train menu."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from runtime import load_graph

from .test_training_panel import StandInWindow, _real_window

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
pytestmark = pytest.mark.timeout(120)


def _window(qtbot, tmp_path, stem):
    doc = load_graph(EXAMPLES / f"{stem}.json")
    win = _real_window(doc, tmp_path) or StandInWindow(doc)
    win.training_ui.ensure_built()
    win.training_ui.runs_root = tmp_path / "runs"
    win.training_ui.health.quiet = True  # no modal boxes
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    return win


STATS = {"hidden1": {"grad_norm": 1e-7, "weight_norm": 3.0, "update_ratio": 1e-5,
                     "act_mean": 0.0, "act_std": 1.0},
         "relu2": {"act_mean": 0.3, "act_std": 0.5, "dead_fraction": 0.25},
         "tanh1": {"act_mean": 0.0, "act_std": 0.8, "saturated_fraction": 0.6}}


def test_node_stats_are_painted_on_the_canvas_toggled_and_cleared_on_shape_change(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "mlp_spirals")
    ui = win.training_ui
    ov = ui.health.overlay
    ui._on_events([{"event": "node_stats", "step": 40, "stats": STATS},
                   {"event": "warning", "node": "hidden1", "kind": "vanishing",
                    "message": "hidden1: relative gradient 1e-8: try ReLU"}])
    qtbot.waitUntil(lambda: set(ov.badges) == set(STATS), timeout=3000)
    assert "∇ 1.0e-7" in ov.badges["hidden1"].text and "Δ 1.0e-5" in ov.badges["hidden1"].text
    assert "dead 25%" in ov.badges["relu2"].text and "sat 60%" in ov.badges["tanh1"].text
    assert ov.badges["hidden1"].warn and ov.legend.isVisible() and ov.legend.step == 40
    item = win.editor.scene.node_items["hidden1"]
    assert ov.badges["hidden1"].parentItem() is item  # moves with its node
    # View > Show Training State
    ui.health.show_action.setChecked(False)
    assert not ov.badges["hidden1"].isVisible() and not ov.legend.isVisible()
    ui.health.show_action.setChecked(True)
    assert ov.badges["hidden1"].isVisible()
    # newer figures within a few frames; a burst of events costs one apply
    before = ov.apply_count
    for s in range(50):
        ui._on_events([{"event": "node_stats", "step": 50 + s,
                        "stats": {"hidden1": {"grad_norm": 0.01 * (s + 1)}}}])
    qtbot.waitUntil(lambda: "∇ 5.0e-1" in ov.badges["hidden1"].text, timeout=3000)
    assert ov.apply_count - before <= 3
    # moving a node keeps the state; changing the graph's shape clears it
    win.document.set_param("hidden2", "units", 16)
    ui.health._on_analysis()
    assert ov.badges == {} and not ov.legend.isVisible()


@pytest.mark.slow
def test_a_real_run_leaves_its_last_state_on_the_nodes(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "mlp_spirals")
    win.document.set_training({**win.document.training, "epochs": 2, "visualize_every": 5})
    ui = win.training_ui
    ui.start()
    qtbot.waitUntil(lambda: ui.controller.state in ("finished", "failed"), timeout=90_000)
    assert ui.controller.state == "finished"
    ov = ui.health.overlay
    qtbot.waitUntil(lambda: {"hidden1", "hidden2", "logits"} <= set(ov.badges), timeout=3000)
    assert ov.badges["hidden1"].text.startswith("∇ ")
    assert "dead" in ov.badges["relu2"].text
    assert (Path(ui.run_dir) / "node_stats.jsonl").exists()


@pytest.mark.slow
def test_probe_tab_shows_any_node_with_its_input_channels_and_colour_bar(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "digits_cnn")
    ui = win.training_ui
    inside = ui.health.inside
    assert ui.plots.tabs.indexOf(inside) >= 0
    ui.plots.tabs.setCurrentWidget(inside)
    win.select_node("conv2")
    qtbot.waitUntil(lambda: inside.node == "conv2", timeout=3000)
    assert "conv2: output (32, 4, 4)" in inside.title.text() and "label" in inside.title.text()
    assert inside.maps_grid.count() == 32  # one tile per channel, each with its number
    assert inside.input_label.pixmap() is not None and not inside.input_label.pixmap().isNull()
    assert inside.bar.hi > inside.bar.lo
    assert inside.filters.isVisible() and inside.whist.counts is not None
    inside.set_index(5)
    assert "sample 5" in inside.title.text() and inside.spin.value() == 5
    inside.set_node("pool1")  # any convolution or pooling, not only the first
    assert inside.maps_grid.count() == 16
    inside.set_node("fc1")  # dense: a heat map over units
    assert "(64,)" in inside.title.text() and inside.maps_grid.count() == 2


def test_probe_tab_plots_the_gradient_through_time_of_a_recurrent_node(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "gru_cell")
    inside = win.training_ui.health.inside
    win.training_ui.plots.tabs.setCurrentWidget(inside)
    win.select_node("cand")  # a node of the hand-drawn cell: its loop is shown
    qtbot.waitUntil(lambda: inside.node == "step_loop", timeout=3000)
    assert inside.time.isVisible() and len(inside.time.values) == 32
    assert inside.time.values[0] < inside.time.values[-1]


def test_try_it_follows_a_digit_drawn_with_the_mouse(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "digits_cnn")
    tryit = win.training_ui.health.tryit
    win.training_ui.plots.tabs.setCurrentWidget(tryit)
    pad = tryit.pad
    assert (pad.h, pad.w) == (8, 8)
    s = pad.scale
    QTest.mousePress(pad, Qt.LeftButton, Qt.NoModifier, QPoint(2 * s, s))
    for y in range(1, 8):
        QTest.mouseMove(pad, QPoint(int(4 * s), int(y * s)))
    QTest.mouseRelease(pad, Qt.LeftButton, Qt.NoModifier, QPoint(4 * s, 7 * s))
    assert pad.values.sum() > 3
    qtbot.waitUntil(lambda: tryit.update_count > 0, timeout=3000)
    assert "Top 5" in tryit.result.text()
    top = tryit.last.top_k(5)
    assert len(top) == 5 and abs(sum(p for _, p in tryit.last.top_k(10)) - 1) < 1e-4
    assert tryit.acts_grid.count() >= 2 * 10  # every layer node's activation
    n = tryit.update_count
    tryit.use_sample(3)
    qtbot.waitUntil(lambda: tryit.update_count > n, timeout=3000)


def test_train_menu_checks_gradients_off_the_ui_thread(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "mlp_spirals")
    health = win.training_ui.health
    assert {"overfit", "gradcheck", "correlated"} <= set(health.habit_actions)
    health.run_habit("gradcheck", wait=True)
    qtbot.waitUntil(lambda: health.last_result is not None, timeout=30_000)
    assert health.last_result.passed and "gradient check passed" in health.last_result.message


def test_try_it_takes_typed_text_for_a_character_model(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "char_lstm")
    tryit = win.training_ui.health.tryit
    tryit.text.setText("the ")
    qtbot.waitUntil(lambda: tryit.update_count > 0, timeout=5000)
    assert "Next character" in tryit.result.text() and "Generated" in tryit.result.text()
    assert len(tryit.generate(10)) == 10


def test_try_it_opens_an_image_file_at_the_inputs_size(qtbot, tmp_path):
    from PySide6.QtGui import QColor, QImage, QPainter, QPen

    img = QImage(64, 64, QImage.Format_RGB32)
    img.fill(QColor("white"))  # dark ink on white paper, as a photo of a digit would be
    p = QPainter(img)
    p.setPen(QPen(QColor("black"), 8))
    p.drawLine(32, 6, 32, 58)  # a "1"
    p.end()
    path = tmp_path / "one.png"
    assert img.save(str(path))
    win = _window(qtbot, tmp_path, "digits_cnn")
    tryit = win.training_ui.health.tryit
    tryit.load_image(path)
    v = tryit.pad.values
    assert v.shape == (8, 8) and v[:, 3:5].mean() > 0.5 > v[:, :2].mean()  # ink is bright
    qtbot.waitUntil(lambda: tryit.update_count > 0, timeout=3000)
    tryit.load_image(tmp_path / "missing.png")
    assert "cannot read" in tryit.result.text()


def test_correlated_units_of_the_selected_node_from_the_train_menu(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, "mlp_spirals")
    health = win.training_ui.health
    win.editor.scene.select_nodes(["hidden1"])
    health.run_habit("correlated", wait=True)
    qtbot.waitUntil(lambda: health.last_result is not None, timeout=30_000)
    res = health.last_result
    assert res.node == "hidden1" and res.matrix.shape == (32, 32) and 0 <= res.share_above <= 1


def test_a_finished_runs_node_stats_are_replayed_on_the_canvas(qtbot, tmp_path):
    import json

    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "node": "hidden1", "grad_norm": 0.1 * (s + 1), "update_ratio": 1e-3}
            for s in (0, 50)] + [{"step": 50, "node": "relu2", "dead_fraction": 0.5}]
    (run / "node_stats.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    win = _window(qtbot, tmp_path, "mlp_spirals")
    health = win.training_ui.health
    assert health.replay(run) == 50
    qtbot.waitUntil(lambda: {"hidden1", "relu2"} <= set(health.overlay.badges), timeout=3000)
    assert "∇ 5.1e0" in health.overlay.badges["hidden1"].text
    assert "dead 50%" in health.overlay.badges["relu2"].text
    assert health.replay(tmp_path / "empty") is None  # no node_stats.jsonl: a message
