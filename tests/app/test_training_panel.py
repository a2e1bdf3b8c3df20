"""GUI tests of the training panel: real training (spawned process) seen through the plots.

Uses the real MainWindow when app.window is importable, otherwise a minimal stand-in that
implements the agreed window API (docs/interfaces.md). Everything trains for real on CPU.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest


from PySide6.QtCore import Qt, Signal  # noqa: E402
from PySide6.QtGui import QUndoStack  # noqa: E402
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow  # noqa: E402

from app.training.buffers import MetricStore, SeriesBuffer  # noqa: E402
from runtime import load_graph  # noqa: E402
from runtime.serialization import dumps  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPIRALS = ROOT / "resources" / "examples" / "mlp_spirals.json"

pytestmark = pytest.mark.timeout(120)


class StandInWindow(QMainWindow):
    """The agreed MainWindow API, nothing more (used only while app.window is missing)."""

    document_replaced = Signal(object)
    selection_changed = Signal(list)

    def __init__(self, doc):
        super().__init__()
        self._doc = doc
        self.undo_stack = QUndoStack(self)
        self.file_path = None
        self.messages: list[str] = []
        self._menus: dict = {}
        self.setCentralWidget(QLabel("canvas"))
        from app.training import install

        install(self)

    @property
    def document(self):
        return self._doc

    def add_dock(self, title, widget, area=Qt.RightDockWidgetArea, object_name=None):
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name or title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def menu(self, title):
        if title not in self._menus:
            self._menus[title] = self.menuBar().addMenu(title)
        return self._menus[title]

    def show_message(self, text, timeout_ms=5000):
        self.messages.append(text)
        self.statusBar().showMessage(text, timeout_ms)

    def select_node(self, node_id):
        self.selection_changed.emit([node_id])


def _real_window(doc, tmp_path):
    try:
        from app.window import MainWindow
        from app.prompts import Prompts
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("app."):
            return None
        raise
    from PySide6.QtCore import QSettings

    class ScriptedPrompts(Prompts):  # no modal dialogs in tests
        def __init__(self):
            super().__init__(None)
            self.errors: list[str] = []

        def error(self, title, text, details=""):
            self.errors.append(f"{title}: {text}")

        def unsaved(self, name):
            return "discard"

        def recover(self, name, when):
            return False

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    return MainWindow(doc, settings=settings, recovery_dir=tmp_path / "recovery",
                      prompts=ScriptedPrompts())


@pytest.fixture
def window(qtbot, tmp_path):
    doc = load_graph(SPIRALS)
    win = _real_window(doc, tmp_path) or StandInWindow(doc)
    assert win.document is doc and hasattr(win, "training_ui")
    win.training_ui.ensure_built()  # (otherwise built 300 ms after the window shows)
    win.training_ui.runs_root = tmp_path / "runs"  # untitled graphs: not the user data folder
    qtbot.addWidget(win)
    messages = getattr(win, "messages", None)
    if messages is None:  # real window: record status-bar messages too
        win.messages = messages = []
        win.statusBar().messageChanged.connect(lambda t: t and messages.append(t))
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.training_ui.controller.shutdown()


def _configure(win, **cfg):
    base = {"dataset": "spirals", "optimizer": "adam", "lr": 0.01, "batch_size": 32,
            "seed": 0, "log_every": 1, "instrument_every": 5, "visualize_every": 20}
    base.update(cfg)
    win.document.set_training(base)


def _start(qtbot, win):
    ui = win.training_ui
    qtbot.mouseClick(ui.panel.buttons["start"], Qt.LeftButton)
    qtbot.waitUntil(lambda: ui.controller.state != "idle", timeout=5000)
    return ui


@pytest.mark.slow
def test_short_run_fills_the_plots(qtbot, window):
    _configure(window, epochs=12)  # 800 training samples / 32 = 25 steps x 12 = 300 steps
    ui = _start(qtbot, window)
    ctrl, plots = ui.controller, ui.plots
    qtbot.waitUntil(lambda: ctrl.state in ("finished", "failed"), timeout=60000)
    assert ctrl.state == "finished", ctrl.error
    store = plots.store
    loss = store.series["loss"]
    assert loss.n >= 250  # every step arrived (log_every=1)
    x, y = plots.curves["loss"].getData()
    assert x is not None and len(x) == loss.n  # the curve shows the buffer
    assert np.all(np.isfinite(y))
    assert y[-20:].mean() < y[:20].mean()  # it learned
    grads = [k for k in store.series if k.startswith("grad/")]
    assert {"grad/hidden1", "grad/hidden2", "grad/logits"} <= set(grads)
    gx, _ = plots.curves["grad/hidden1"].getData()  # (y is log10 on this log-scale plot)
    assert len(gx) > 10 and np.all(store.series["grad/hidden1"].data()[1] > 0)
    assert len(store.epochs) == 12
    vx, vy = plots.curves["epoch/val_accuracy"].getData()
    assert len(vx) == 12 and 0.0 <= vy.min() and vy.max() <= 1.0
    # progress shows the end, and the redraw timer ran
    assert ui.panel.progress.value() == ui.panel.progress.maximum() > 0
    assert plots.redraw_count > 0
    assert not plots.timer.isActive()  # redraws stop with the run


@pytest.mark.slow
def test_pause_step_resume_stop_and_probe(qtbot, window):
    _configure(window, epochs=400)  # 10,000 steps: far longer than the test
    ui = _start(qtbot, window)
    ctrl, store = ui.controller, ui.plots.store
    qtbot.waitUntil(lambda: "loss" in store.series and store.series["loss"].n > 20, timeout=60000)

    qtbot.mouseClick(ui.panel.buttons["pause"], Qt.LeftButton)
    assert ctrl.state == "paused"
    assert ui.panel.buttons["resume"].isEnabled() and ui.panel.buttons["step"].isEnabled()
    qtbot.wait(600)  # in-flight events arrive
    n0 = store.series["loss"].n
    last0 = store.series["loss"].x[n0 - 1]
    qtbot.wait(600)
    assert store.series["loss"].n == n0  # paused: no steps

    qtbot.mouseClick(ui.panel.buttons["step"], Qt.LeftButton)
    qtbot.waitUntil(lambda: store.series["loss"].n == n0 + 1, timeout=10000)
    assert store.series["loss"].x[n0] == last0 + 1  # exactly one step

    # selecting a node on the canvas makes it the probe node
    window.selection_changed.emit(["hidden2"])
    assert ctrl._control.probe()[1] == "hidden2"
    assert ui.plots.probe_node == "hidden2"

    qtbot.mouseClick(ui.panel.buttons["resume"], Qt.LeftButton)
    assert ctrl.state == "running"
    qtbot.waitUntil(lambda: store.series["loss"].n > n0 + 30, timeout=20000)
    qtbot.waitUntil(lambda: "hidden2" in ui.plots._hists, timeout=20000)

    qtbot.mouseClick(ui.panel.buttons["stop"], Qt.LeftButton)
    qtbot.waitUntil(lambda: ctrl.state == "stopped", timeout=15000)
    assert ui.panel.buttons["start"].isEnabled()
    assert window.isVisible()


@pytest.mark.slow
def test_nan_loss_reports_an_error_and_the_window_survives(qtbot, window):
    _configure(window, epochs=5, lr=1e30, optimizer="sgd")
    before = dumps(window.document)
    ui = _start(qtbot, window)
    qtbot.waitUntil(lambda: ui.controller.state in ("failed", "finished"), timeout=60000)
    assert ui.controller.state == "failed"
    text = ui.panel.status_label.text()
    assert "Training failed" in text and ("nan" in text.lower() or "finite" in text.lower())
    assert any("Training failed" in m for m in window.messages)
    assert window.isVisible() and dumps(window.document) == before
    # the editor can start again after a failure
    assert ui.panel.buttons["start"].isEnabled()


@pytest.mark.slow
def test_a_killed_training_process_is_reported(qtbot, window):
    _configure(window, epochs=400)
    ui = _start(qtbot, window)
    ctrl = ui.controller
    qtbot.waitUntil(lambda: ctrl.state == "running", timeout=60000)
    ctrl._process.kill()  # what the out-of-memory killer does
    qtbot.waitUntil(lambda: ctrl.state == "failed", timeout=10000)
    assert "killed by signal 9" in ui.panel.status_label.text()
    assert window.isVisible()


def test_bad_setting_is_a_message_not_a_traceback(qtbot, window):
    _configure(window, batch_size=0)
    ui = _start(qtbot, window) if False else window.training_ui
    qtbot.mouseClick(ui.panel.buttons["start"], Qt.LeftButton)
    assert ui.controller.state == "idle"
    assert "batch_size" in ui.panel.status_label.text()


def test_form_edits_the_document_through_undo(qtbot, window):
    panel = window.training_ui.panel
    lr = panel._editors["lr"]
    before = dict(window.document.training)
    lr.setText("0.05")
    lr.editingFinished.emit()
    assert window.document.training["lr"] == 0.05
    window.undo_stack.undo()  # the edit is one undoable command
    assert window.document.training == before
    assert float(lr.text()) == before.get("lr", panel.config()["lr"])  # the form follows
    window.undo_stack.redo()
    assert window.document.training["lr"] == 0.05 and lr.text() == "0.05"
    epochs = panel._editors["epochs"]
    epochs.setValue(7)
    assert window.document.training["epochs"] == 7
    window.document.set_training({**window.document.training, "optimizer": "sgd"})
    assert panel._editors["optimizer"].currentText() == "sgd"


@pytest.mark.slow
def test_thread_mode_trains_too(qtbot, window):
    _configure(window, epochs=4)
    ui = window.training_ui
    ui.controller.mode = "thread"
    ui.start()
    qtbot.waitUntil(lambda: ui.controller.state in ("finished", "failed"), timeout=60000)
    assert ui.controller.state == "finished", ui.controller.error
    assert ui.plots.store.series["loss"].n >= 90 and len(ui.plots.store.epochs) == 4


@pytest.mark.slow
def test_install_imports_nothing_heavy():
    """The window must show fast: installing the training UI imports neither torch nor
    pyqtgraph (they load when the panel is built, after the first paint)."""
    import subprocess
    import sys

    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from PySide6.QtWidgets import QApplication; app = QApplication([])\n"
            "from app.window import MainWindow; w = MainWindow()\n"
            "assert hasattr(w, 'training_ui'), 'training UI not installed'\n"
            "print(sorted(m for m in ('torch', 'pyqtgraph') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_buffers_stay_bounded_and_export(tmp_path, qtbot, window):
    buf = SeriesBuffer(256)
    for i in range(100_000):
        buf.append(i, math.sin(i / 1000))
    assert len(buf) <= 256 and buf.nbytes == 2 * 256 * 8
    x, _ = buf.data()
    assert x[0] < 300 and x[-1] > 99_000  # still spans the whole run
    store = MetricStore(128)
    plots = window.training_ui.ensure_plots()
    plots.reset()
    events = [{"event": "step", "step": s, "epoch": 0, "batch": s, "loss": 1 / (s + 1),
               "lr": 0.1, "grad_norm": 1.0, "samples_per_s": 1.0} for s in range(50_000)]
    events += [{"event": "grad_norms", "step": 10, "norms": {"hidden1": 1e-9, "logits": 2e3}}]
    events += [{"event": "warning", "node": "hidden1", "kind": "vanishing", "step": 10,
                "message": "hidden1: relative gradient 1e-9 (vanishing gradient): try ReLU"},
               {"event": "warning", "node": "logits", "kind": "exploding", "step": 10,
                "message": "logits: update ratio 0.5 (exploding gradient): lower the rate"}]
    plots.ingest(events)
    plots.redraw()
    assert plots.store.nbytes <= 6 * 2 * 4096 * 8
    assert "vanishing" in plots.warning_label.text() and "exploding" in plots.warning_label.text()
    paths = plots.export_png(tmp_path / "png")
    assert all(p.stat().st_size > 1000 for p in paths) and len(paths) >= 8
    csv = plots.export_csv(tmp_path / "m.csv").read_text()
    assert csv.startswith("series,step,value") and "\nloss," in csv
    assert store.nbytes == 0


@pytest.mark.slow
def test_a_run_saves_into_a_folder_beside_the_graph_and_export_offers_its_weights(
        qtbot, window, tmp_path):
    """A saved graph trains from a CSV given relative to its own folder; the run writes
    checkpoints and final weights into runs/<stem>/<timestamp>/, the panel shows that
    folder, and File > Export offers (and by default uses) those weights."""
    from safetensors.torch import load_file

    from app import export_ui
    from runtime.data import load_dataset
    from runtime.export import load_bundle
    from runtime.serialization import save_graph

    ui = window.training_ui
    ui.runs_root = None  # the default for a saved graph
    folder = tmp_path / "project"
    folder.mkdir()
    moons = load_dataset("moons?n=200")
    rows = "".join(f"{a:.5f},{b:.5f},{int(c)}\n" for (a, b), c in zip(moons.inputs[0],
                                                                         moons.targets[0]))
    (folder / "data.csv").write_text("a,b,y\n" + rows)
    _configure(window, epochs=2, dataset="csv:data.csv")  # relative to the graph's folder
    save_graph(window.document, folder / "net.json")
    window.file_path = folder / "net.json"
    _start(qtbot, window)
    qtbot.waitUntil(lambda: ui.controller.state in ("finished", "failed"), timeout=60000)
    assert ui.controller.state == "finished", ui.controller.error
    (run,) = (folder / "runs" / "net").iterdir()  # a fresh timestamped folder
    assert ui.run_dir == run
    assert (run / "checkpoints" / "epoch0002.pt").exists()
    assert ui.last_weights == run / "weights.safetensors" and ui.last_weights.exists()
    label = ui.panel.run_label
    assert label.isVisible() and str(run) in label.text() and "weights.safetensors" in label.text()
    # a second run never mixes with the first
    _start(qtbot, window)
    qtbot.waitUntil(lambda: ui.controller.state in ("finished", "failed"), timeout=60000)
    assert len(list((folder / "runs" / "net").iterdir())) == 2 and ui.run_dir != run

    dlg = export_ui.open_export_dialog(window)
    assert dlg.weights_combo.currentData() == dlg.WEIGHTS_RUN  # the default after a run
    assert str(ui.run_dir.name) in dlg.weights_combo.currentText()
    dlg.select_format("bundle")
    dlg.path_edit.setText(str(tmp_path / "net.zip"))
    dlg.start_export()
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=90_000)
    assert dlg.result["ok"], dlg.result
    _, exported = load_bundle(tmp_path / "net.zip")
    trained = load_file(str(ui.last_weights))
    assert set(exported) == set(trained)
    assert all((exported[k] == trained[k]).all() for k in trained)
    dlg.close()


@pytest.mark.slow
def test_a_failed_run_names_its_checkpoint_in_the_run_folder(qtbot, window):
    """NaN after the first epoch: the message names the last good checkpoint (there is
    one now: every GUI run has a folder)."""
    ui = window.training_ui
    _configure(window, epochs=6, optimizer="sgd", lr=1e-3, schedule="step", step_size=1,
               gamma=1e12)
    _start(qtbot, window)
    qtbot.waitUntil(lambda: ui.controller.state in ("failed", "finished"), timeout=60000)
    assert ui.controller.state == "failed"
    text = ui.panel.status_label.text()
    assert "Last good checkpoint: none" not in text
    assert str(ui.run_dir / "checkpoints" / "epoch0001.pt") in text
    assert ui.panel.run_label.isVisible() and "no final weights" in ui.panel.run_label.text()
    assert ui.last_weights is None
