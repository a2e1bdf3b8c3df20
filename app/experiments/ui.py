"""RunsUI: the Runs dock and the Sweep dialog wired into a MainWindow (its public API:
``add_dock``, ``menu``, ``document``, ``document_replaced``, ``undo_stack``,
``show_message``; and the training UI's controller, when installed, to refresh the list
when a run ends)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QLabel, QVBoxLayout, QWidget


class RunsUI(QObject):
    def __init__(self, window: Any):
        super().__init__(window)
        self.window = window
        self.panel = None
        self.sweep_dialog = None
        self._holder = QWidget()
        self._holder.setObjectName("runs_panel")
        lay = QVBoxLayout(self._holder)
        lay.setContentsMargins(0, 0, 0, 0)
        label = QLabel("The runs of this graph appear here.", self._holder)
        label.setAlignment(Qt.AlignCenter)
        lay.addWidget(label)
        self.dock = window.add_dock("Runs", self._holder, Qt.BottomDockWidgetArea,
                                    object_name="dock_runs")
        self._tabify()
        menu = window.menu("&Train")
        menu.addSeparator()
        runs = QAction("&Runs", window)
        runs.triggered.connect(self.show_runs)
        sweep = QAction("S&weep…", window)
        sweep.triggered.connect(self.open_sweep)
        menu.addAction(runs)
        menu.addAction(sweep)
        self.actions = {"runs": runs, "sweep": sweep}
        window.document_replaced.connect(lambda _doc: self.refresh())
        training = getattr(window, "training_ui", None)
        if training is not None:
            training.controller.state_changed.connect(self._on_training_state)
        QTimer.singleShot(700, self.ensure_built)

    def _tabify(self) -> None:
        w = self.window
        plots = next((d for d in w.findChildren(QDockWidget)
                      if d.objectName() == "dock_training_plots"), None)
        if plots is not None:
            w.tabifyDockWidget(plots, self.dock)
            plots.raise_()

    def ensure_built(self):
        if self.panel is None:
            from .runs_panel import RunsPanel

            self.panel = RunsPanel(self._holder)
            self._holder.layout().itemAt(0).widget().hide()
            self._holder.layout().addWidget(self.panel)
            self.panel.message.connect(lambda text: self.window.show_message(text, 8000))
            self.panel.use_weights_requested.connect(self.use_weights)
            self.refresh()
        return self.panel

    def root(self) -> Path:
        from runtime.training.runs import runs_root

        training = getattr(self.window, "training_ui", None)
        override = getattr(training, "runs_root", None)
        if override:
            return Path(override)
        doc = self.window.document
        return runs_root(getattr(self.window, "file_path", None),
                         (doc.metadata or {}).get("name"))

    def refresh(self) -> None:
        if self.panel is not None:
            self.panel.root = self.root()
            self.panel.refresh()

    def _on_training_state(self, state: str) -> None:
        if state in ("finished", "stopped", "failed"):
            self.refresh()

    def show_runs(self) -> None:
        self.dock.show()
        self.dock.raise_()
        self.ensure_built()
        self.refresh()

    def open_sweep(self):
        from .sweep_dialog import SweepDialog

        if self.sweep_dialog is None:
            self.sweep_dialog = SweepDialog(self.window)
        self.sweep_dialog.show()
        self.sweep_dialog.raise_()
        return self.sweep_dialog

    def use_weights(self, run) -> None:
        """The run's weights: the next run's initial weights (one undo step) and File >
        Export's trained weights."""
        doc = self.window.document
        cfg = {**(doc.training or {}), "init_weights": str(run.weights)}
        try:
            from graph_editor.commands import SetTraining  # type: ignore[attr-defined]
        except ImportError:
            from app.training.ui import _SetTrainingCommand as SetTraining
        self.window.undo_stack.push(SetTraining(doc, cfg))
        training = getattr(self.window, "training_ui", None)
        if training is not None:
            training.last_weights = Path(run.weights)
        self.window.show_message(f"The next run starts from {run.name}'s weights "
                                 f"({run.weights.name}); File > Export offers them too", 8000)
