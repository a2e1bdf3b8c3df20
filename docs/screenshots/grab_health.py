"""Screenshots of node health in the real app (run under Xvfb):

    xvfb-run -s '-screen 0 1600x1000x24' python docs/screenshots/grab_health.py

- health-lenet5.png: LeNet-5 training on the digits, the read-outs on its nodes;
- health-deep-mlps.png: the deep sigmoid MLP (vanishing gradients) beside its ReLU +
  batch-norm twin after 150 steps: the canvas at the first layers, and every layer's
  gradient norm by depth;
- health-bptt.png: the hand-drawn GRU cell's gradient norm across time steps (Inside);
- health-tryit.png: Try it with a digit drawn with the mouse on the trained digits CNN.

Runs go to a temporary folder.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "resources" / "examples"


def main() -> int:
    from PySide6.QtCore import QPoint, QSettings, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    tmp = Path(tempfile.mkdtemp())
    os.environ["NETBUILDER_RUNS_DIR"] = str(tmp / "runs")
    app = QApplication(sys.argv[:1])
    from app.window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat), recovery_dir=tmp)
    w.resize(1600, 1000)
    w.show()
    ui = w.training_ui

    def spin(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait(cond, timeout: float = 120.0) -> None:
        end = time.perf_counter() + timeout
        while not cond() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.02)

    def open_and_train(stem: str, **training) -> None:
        w.open_example(EXAMPLES / f"{stem}.json")
        if training:
            w.document.set_training({**w.document.training, **training})
        spin(1.5)
        w.view.fit()
        ui.start()

    def show_tab(name: str) -> None:
        tabs = ui.ensure_plots().tabs
        tabs.setCurrentIndex([tabs.tabText(i) for i in range(tabs.count())].index(name))

    def save(widget, name: str) -> QImage:
        img = widget.grab().toImage()
        img.save(str(OUT / name))
        print("saved", OUT / name)
        return img

    spin(2.0)
    ui.ensure_built()
    ov = ui.health.overlay

    # 1. LeNet-5 training, read-outs on the nodes
    open_and_train("lenet5", visualize_every=20, epochs=3)
    wait(lambda: ov.step is not None and ov.step >= 60)
    w.resizeDocks([ui.plots_dock], [345], Qt.Vertical)  # the canvas is the subject here
    spin(0.5)
    r = w.editor.scene.itemsBoundingRect()
    w.view.fit(r.adjusted(0, 0, 0, r.height() * 0.1))  # room for the legend below
    spin(1.0)
    save(w, "health-lenet5.png")
    ui.controller.stop()
    wait(lambda: not ui.controller.active)
    w.resizeDocks([ui.plots_dock], [420], Qt.Vertical)

    # 2. the deep MLP twins, side by side: the canvas at its first layers, and every
    #    layer's gradient norm by depth (from the same node statistics)
    from graph_editor.health_overlay import grad_colour

    panels = []
    for stem in ("deep_sigmoid_mlp", "deep_relu_bn_mlp"):
        open_and_train(stem, visualize_every=10, instrument_every=10, epochs=20)
        wait(lambda: ov.step is not None and ov.step >= 150)
        ui.controller.stop()
        wait(lambda: not ui.controller.active)
        stats = {n: dict(r) for n, r in ov.stats.items()}
        w.view.resetTransform()
        vw = w.view.viewport().width()
        at = w.editor.scene.node_items["dense2"].sceneBoundingRect().center()
        vh = w.view.viewport().height()
        w.view.centerOn(at.x() - (vw - 780) / 2, at.y() - (vh - 360) / 2 + 60)
        spin(1.0)
        canvas = w.view.viewport().grab().toImage()
        layers = [n.id for n in w.document if n.type == "Dense"]
        panels.append((stem, canvas, [(n, stats.get(n, {}).get("grad_norm")) for n in layers],
                       ov.step))
    pw, ch, bh = 780, 360, 330
    both = QImage(2 * pw + 20, 40 + ch + bh, QImage.Format_RGB32)
    both.fill(QColor("white"))
    p = QPainter(both)
    p.setRenderHint(QPainter.Antialiasing)
    for k, (stem, canvas, grads, step) in enumerate(panels):
        x0 = k * (pw + 20)
        f = QFont(p.font())
        f.setPointSize(12)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("#1f2328"))
        p.drawText(x0 + 6, 26, "deep_sigmoid_mlp: sigmoid, default initialisation"
                   if "sigmoid" in stem else "deep_relu_bn_mlp: Dense -> BatchNorm -> ReLU, He")
        crop = canvas.copy(canvas.width() - pw, canvas.height() - ch, pw, ch)  # with the legend
        p.drawImage(x0, 40, crop)
        p.setPen(QColor("#9aa0a6"))
        p.drawRect(x0, 40, pw - 1, ch - 1)
        # bar chart: log10 gradient norm per layer, input side on the left
        top, left, h = 40 + ch + 40, x0 + 60, bh - 90
        f.setPointSize(10)
        f.setBold(False)
        p.setFont(f)
        p.setPen(QColor("#1f2328"))
        p.drawText(x0 + 6, top - 14, f"gradient norm per layer at step {step} (log scale)")
        lo, hi = -8, 1  # the axis
        for e in range(lo, hi + 1):
            y = top + h - h * (e - lo) / (hi - lo)
            p.setPen(QColor("#e2e4e8"))
            p.drawLine(left, int(y), x0 + pw - 10, int(y))
            p.setPen(QColor("#57606a"))
            p.drawText(x0 + 4, int(y) + 4, f"1e{e}")
        bw = (pw - 80) / len(grads)
        for i, (nid, g) in enumerate(grads):
            if g:
                import math
                y = top + h - h * (min(max(math.log10(g), lo), hi) - lo) / (hi - lo)
                p.fillRect(int(left + i * bw + 4), int(y), int(bw - 8), int(top + h - y),
                           grad_colour(g))
            p.setPen(QColor("#1f2328"))
            p.drawText(int(left + i * bw), top + h + 18, nid)
    p.end()
    both.save(str(OUT / "health-deep-mlps.png"))
    print("saved", OUT / "health-deep-mlps.png")

    # 3. a hand-drawn GRU cell: the gradient of the loss w.r.t. h_t over the time steps
    open_and_train("gru_cell", epochs=2)
    wait(lambda: ui.controller.state in ("finished", "failed", "stopped"), 300)
    show_tab("Inside")
    w.select_node("h")
    spin(2.0)
    save(w, "health-bptt.png")

    # 4. Try it: a digit drawn with the mouse on the trained digits CNN
    open_and_train("digits_cnn", epochs=4)
    wait(lambda: ui.controller.state in ("finished", "failed", "stopped"), 300)
    show_tab("Try it")
    spin(1.0)
    pad = ui.health.tryit.pad
    s = pad.scale
    stroke = [(1.5, 1.2), (3.0, 0.8), (4.8, 0.9), (5.9, 1.8), (5.2, 3.0), (4.0, 3.6),
              (5.3, 4.2), (6.0, 5.3), (5.3, 6.4), (3.6, 6.9), (1.8, 6.5)]  # a "3"
    QTest.mousePress(pad, Qt.LeftButton, Qt.NoModifier, QPoint(int(stroke[0][0] * s),
                                                               int(stroke[0][1] * s)))
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        for t in range(6):
            QTest.mouseMove(pad, QPoint(int((x0 + (x1 - x0) * t / 6) * s),
                                        int((y0 + (y1 - y0) * t / 6) * s)))
            app.processEvents()
    QTest.mouseRelease(pad, Qt.LeftButton, Qt.NoModifier, QPoint(int(stroke[-1][0] * s),
                                                                 int(stroke[-1][1] * s)))
    spin(1.5)
    save(w, "health-tryit.png")
    w.undo_stack.setClean()
    w._forced_modified = False
    ui._on_quit()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
