"""TrainingUI: wires the panel, the controller and the plots into a MainWindow.

Uses only the window's agreed API: ``add_dock``, ``menu``, ``document``,
``document_replaced``, ``selection_changed``, ``undo_stack``, ``show_message``.
The plots (pyqtgraph) are built after the window is shown, on the first event-loop turn.
"""
from __future__ import annotations

import copy
import gc
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QVBoxLayout, QWidget

from .controller import FAILED, FINISHED, STOPPED, TrainingController
from .panel import TrainingPanel


class _SetTrainingCommand(QUndoCommand):
    """Undoable change of ``document.training`` (used while graph_editor has no such
    command): it calls only the document's ``set_training``."""

    def __init__(self, doc: Any, config: dict):
        super().__init__("Change training settings")
        self.doc = doc
        self.old = copy.deepcopy(doc.training)
        self.new = copy.deepcopy(config)

    def redo(self) -> None:
        self.doc.set_training(self.new)

    def undo(self) -> None:
        self.doc.set_training(self.old)


def _apply_config_through_undo(window: Any):
    """A function (doc, cfg) -> None that records the change on the window's undo stack."""
    try:
        from graph_editor.commands import SetTraining  # type: ignore[attr-defined]
    except ImportError:
        SetTraining = _SetTrainingCommand

    def apply(doc: Any, cfg: dict) -> None:
        stack = getattr(window, "undo_stack", None)
        if stack is not None:
            stack.push(SetTraining(doc, cfg))
        else:
            doc.set_training(cfg)

    return apply


def _dataset_samples(doc: Any, cfg: dict, base_dir: Any = None) -> tuple[Any, Any]:
    """The dataset's first input array as the trainer loads it (misclassified examples are
    reported by their index in the whole dataset), and its class names; (None, None) if
    unavailable."""
    try:
        from runtime.data.spec import load_dataset
        from runtime.training import TrainConfig

        c = TrainConfig.from_dict(cfg)
        ds = load_dataset(c.dataset, doc, base_dir, seed=c.seed)
        return (ds.inputs[0] if ds.inputs else None), ds.class_names
    except Exception:  # noqa: BLE001 - thumbnails are optional; training reports data errors
        return None, None


def _holder(name: str, text: str) -> QWidget:
    w = QWidget()
    w.setObjectName(name)
    lay = QVBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    label = QLabel(text, w)
    label.setAlignment(Qt.AlignCenter)
    label.setWordWrap(True)
    lay.addWidget(label)
    return w


class TrainingUI(QObject):
    """Everything the Train menu and the Training / Plots docks do."""

    def __init__(self, window: Any, mode: str = "process"):
        super().__init__(window)
        self.window = window
        self.controller = TrainingController(self, mode=mode)
        # The panel's form needs TrainConfig (torch) and the plots need pyqtgraph: both are
        # built by ensure_built() once the window has painted, into these holders.
        self.panel: TrainingPanel | None = None
        self.plots = None  # TrainingPlotsWidget once built
        # Every run writes into a fresh folder under runs_root (None: runs/<stem>/ beside a
        # saved graph, the user data folder for an untitled one; see runtime/training/runs.py)
        self.runs_root: Path | None = None
        self.run_dir: Path | None = None  # the current or last run's folder
        self.last_weights: Path | None = None  # final weights of the last run (for export)
        self._panel_holder = _holder("training_panel", "Loading the training panel…")
        self._plots_holder = _holder("training_plots",
                                     "Live plots appear here when training runs.")
        self.panel_dock = window.add_dock("Training", self._panel_holder,
                                          Qt.RightDockWidgetArea, object_name="dock_training")
        self.plots_dock = window.add_dock("Training plots", self._plots_holder,
                                          Qt.BottomDockWidgetArea,
                                          object_name="dock_training_plots")
        self._plots_holder.setMinimumHeight(340)
        self._tabify_panel()
        self._build_menu()
        from .health_ui import HealthUI

        self.health = HealthUI(self)  # canvas overlay, Probe / Try it tabs, habits

        c = self.controller
        c.events_received.connect(self._on_events)
        c.state_changed.connect(self._on_state)
        c.failed.connect(self._on_failed)
        window.document_replaced.connect(self._on_document_replaced)
        window.selection_changed.connect(self._on_selection)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._on_quit)
        window.destroyed.connect(lambda *_: self.controller.shutdown())
        QTimer.singleShot(300, self.ensure_built)  # after the first paint

    def ensure_built(self) -> TrainingPanel:
        """Build the panel and the plots (imports torch and pyqtgraph) if not done yet."""
        if self.panel is None:
            panel = TrainingPanel(apply_config=_apply_config_through_undo(self.window),
                                  base_dir=self.base_dir)
            c = self.controller
            panel.start_requested.connect(self.start)
            panel.pause_requested.connect(c.pause)
            panel.resume_requested.connect(c.resume)
            panel.step_requested.connect(c.step)
            panel.stop_requested.connect(c.stop)
            self._panel_holder.layout().itemAt(0).widget().hide()
            self._panel_holder.layout().addWidget(panel)
            self.panel = panel
            panel.set_document(self.window.document)
            panel.set_state(c.state)
            self.ensure_plots()
            # torch and pyqtgraph just created ~10^6 long-lived objects; without this, the
            # first full garbage collection stalls the UI for ~200 ms during the first run.
            gc.collect()
            gc.freeze()
        self.ensure_plots()
        return self.panel

    def _on_quit(self) -> None:
        """Stop training, and delete the plots while Qt is whole: pyqtgraph items left to
        interpreter teardown crashed the process at exit (segfault after the last window
        closed) once the image and evaluation plots had been drawn."""
        self.controller.shutdown()
        if self.plots is not None:
            import shiboken6

            self.plots.timer.stop()
            shiboken6.delete(self.plots)
            self.plots = None

    # ---- menu ------------------------------------------------------------------------
    def _build_menu(self) -> None:
        menu = self.window.menu("&Train")
        self.actions: dict[str, QAction] = {}

        def add(key, text, slot, shortcut=None):
            a = QAction(text, self.window)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot)
            menu.addAction(a)
            self.actions[key] = a
            return a

        add("start", "&Start training", self.start, "F5")
        add("pause", "&Pause", self.controller.pause)
        add("resume", "&Resume", self.controller.resume)
        add("step", "S&tep (while paused)", self.controller.step, "F10")
        add("stop", "St&op", self.controller.stop, "Shift+F5")
        menu.addSeparator()
        add("export_png", "Export plots as &PNG…", self.export_png_dialog)
        add("export_csv", "Export metrics as &CSV…", self.export_csv_dialog)
        menu.addSeparator()
        menu.addAction(self.panel_dock.toggleViewAction())
        menu.addAction(self.plots_dock.toggleViewAction())
        self._on_state("idle")

    def _tabify_panel(self) -> None:
        """Share the right dock area with the window's last dock there (as a tab), so the
        form is not squeezed; the Training tab is raised."""
        from PySide6.QtWidgets import QDockWidget

        w = self.window
        try:
            others = [d for d in w.findChildren(QDockWidget)
                      if d is not self.panel_dock and d is not self.plots_dock
                      and w.dockWidgetArea(d) == Qt.RightDockWidgetArea]
            if others:
                w.tabifyDockWidget(others[-1], self.panel_dock)
                self.panel_dock.raise_()
        except Exception:  # noqa: BLE001 - layout is cosmetic
            pass

    def _size_plots_dock(self, share: float = 0.28) -> None:
        """Modest while the user draws (the canvas matters most); ``start`` grows it to
        0.42 of the window for the first run. Never shrinks what the user made bigger."""
        try:
            if self.plots_dock.isFloating():
                return
            height = max(260, int(self.window.height() * share))
            if self.plots_dock.height() < height or share < 0.4:
                self.window.resizeDocks([self.plots_dock], [height], Qt.Vertical)
        except Exception:  # noqa: BLE001 - sizing is cosmetic
            pass

    # ---- plots -----------------------------------------------------------------------
    def ensure_plots(self):
        if self.plots is None:
            self._size_plots_dock()
            from .plots import TrainingPlotsWidget

            self.plots = TrainingPlotsWidget(self._plots_holder)
            self._plots_holder.layout().itemAt(0).widget().hide()
            self._plots_holder.layout().addWidget(self.plots)
            self.plots.node_link.connect(self.window.select_node)
            self.health.attach_plots(self.plots)
            self.plots.set_theme(self.window.editor.theme.name)  # and follow it:
            self.window.theme_changed.connect(self.plots.set_theme)
        return self.plots

    # ---- commands --------------------------------------------------------------------
    def base_dir(self) -> Path | None:
        """The saved graph's folder: relative dataset and init_weights paths resolve there."""
        path = getattr(self.window, "file_path", None)
        return Path(path).resolve().parent if path else None

    def _new_run_dir(self, doc: Any) -> Path:
        from runtime.training.runs import new_run_dir, runs_root

        root = self.runs_root or runs_root(getattr(self.window, "file_path", None),
                                           (doc.metadata or {}).get("name"))
        return new_run_dir(root)

    def start(self) -> None:
        if self.controller.active:
            return
        self.ensure_built()
        doc = self.window.document
        cfg = dict(doc.training or {})
        try:
            from runtime.training import TrainConfig

            TrainConfig.from_dict(cfg)
        except ValueError as exc:  # ConfigError: names the setting
            self._on_failed(str(exc))
            return
        try:
            run_dir = self._new_run_dir(doc)
        except OSError as exc:
            self._on_failed(f"cannot create a run folder: {exc}")
            return
        base = self.base_dir()
        self.run_dir, self.last_weights = run_dir, None
        self.panel.set_run_folder(None)
        plots = self.ensure_plots()
        if not getattr(self, "_plots_grown", False):  # the first run: room for the plots
            self._plots_grown = True
            self._size_plots_dock(0.42)
        plots.reset()
        plots.samples, plots.class_names = _dataset_samples(doc, cfg, base)
        plots.set_probe(cfg.get("probe_node"))
        plots.start_live()
        self.controller.start(doc, cfg, out_dir=str(run_dir),
                              base_dir=str(base) if base else None)

    def _on_events(self, events: list) -> None:
        if self.plots is not None:
            self.plots.ingest(events)
        self.health.on_events(events)
        self.panel.on_events(events)
        for ev in events:
            if ev.get("event") == "warning" and ev.get("message"):
                self.window.show_message(f"Training: {ev['message']}", 8000)
            elif ev.get("event") == "finished":
                weights = (ev.get("metrics") or {}).get("weights")
                if weights and Path(weights).exists():
                    self.last_weights = Path(weights)

    def _on_state(self, state: str) -> None:
        if self.panel is not None:
            self.panel.set_state(state)
        active = self.controller.active
        a = self.actions
        a["start"].setEnabled(not active)
        a["pause"].setEnabled(state in ("starting", "running"))
        a["resume"].setEnabled(state == "paused")
        a["step"].setEnabled(state == "paused")
        a["stop"].setEnabled(active)
        if state in (FINISHED, STOPPED, FAILED) and self.plots is not None:
            self.plots.stop_live()
        if state in (FINISHED, STOPPED, FAILED) and self.panel is not None and self.run_dir:
            self.panel.set_run_folder(self.run_dir, self.last_weights)
        if state == FINISHED:
            self.window.show_message("Training finished", 5000)
        elif state == STOPPED:
            self.panel.show_status("stopped")
            self.window.show_message("Training stopped", 5000)

    def _on_failed(self, message: str) -> None:
        if getattr(self, "run_dir", None) is not None and not self.controller.active:
            from runtime.training.runs import discard_if_unused

            if discard_if_unused(self.run_dir):  # failed while starting: leave no empty folder
                self.run_dir = None
        self.ensure_built().show_status(f"Training failed: {message}", error=True)
        self.window.show_message(f"Training failed: {message}", 15000)

    def _on_document_replaced(self, doc: Any) -> None:
        if self.controller.active:
            self.controller.stop()
        self.last_weights = None  # they belong to the previous document
        # nothing of the previous document's run stays on screen: plots, progress, folder
        if self.plots is not None:
            self.plots.reset()
            self.plots.clear_images()
        if self.panel is not None:
            self.panel.reset_progress()
        self.health.set_document(doc)
        if self.panel is not None:
            self.panel.set_document(doc)

    def _on_selection(self, node_ids: list) -> None:
        if len(node_ids) != 1:
            return
        node = node_ids[0]
        self.health.on_selection(node)
        self.controller.set_probe(node)
        if self.plots is not None:
            self.plots.set_probe(node)

    # ---- export ----------------------------------------------------------------------
    def export_png_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Export plots into folder")
        if folder:
            paths = self.ensure_plots().export_png(folder)
            self.window.show_message(f"Exported {len(paths)} plots to {folder}")

    def export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Export metrics", "metrics.csv",
                                              "CSV (*.csv)")
        if path:
            self.ensure_plots().export_csv(Path(path))
            self.window.show_message(f"Exported metrics to {path}")
