"""The app side of node health: the canvas overlay, View > Show Training State, the Inside
and Try it tabs, and the debugging habits in the Train menu.

TrainingUI hooks it in with a few lines: ``HealthUI(training_ui)``, then ``attach_plots``,
``on_events``, ``on_selection`` and ``set_document`` from its own handlers.
"""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from graph_editor.health_overlay import HealthOverlay

from .inside import InsidePanel, ProbeSource, TryItPanel


def shape_key(doc) -> str:
    """What makes the recorded training state stale: nodes, their types and parameters,
    and the wires (not positions, labels or the training settings)."""
    if doc is None:
        return ""
    nodes = sorted((n.id, n.type, json.dumps(n.params, sort_keys=True, default=str)) for n in doc)
    edges = sorted((e.source, e.source_port, e.target, e.target_port) for e in doc.edges)
    return json.dumps([nodes, edges])


class _Job(QThread):
    """Runs one debugging habit off the UI thread."""

    done = Signal(object)

    def __init__(self, fn, parent=None):
        super().__init__(parent)
        self.fn = fn

    def run(self) -> None:  # noqa: D401 - Qt override
        try:
            self.done.emit(self.fn())
        except Exception as exc:  # noqa: BLE001 - reported in a message box
            self.done.emit(exc)


class HealthUI(QObject):
    def __init__(self, training_ui: Any):
        super().__init__(training_ui)
        self.tui = training_ui
        w = self.window = training_ui.window
        self.overlay = HealthOverlay(w.view, self)
        self.source = ProbeSource()
        self.inside: InsidePanel | None = None
        self.tryit: TryItPanel | None = None
        self._shape = shape_key(w.document)
        self._jobs: list[_Job] = []
        self.last_result: Any = None
        self.show_action = QAction("Show &Training State", w)
        self.show_action.setCheckable(True)
        self.show_action.setChecked(True)
        self.show_action.toggled.connect(self.overlay.set_enabled)
        w.menu("&View").addAction(self.show_action)
        menu = w.menu("&Train")
        menu.addSeparator()
        self.habit_actions = {}
        for key, text in (("overfit", "Overfit a &Tiny Subset (32 samples)"),
                          ("gradcheck", "Check &Gradients"),
                          ("correlated", "&Correlated Units of the Selected Node")):
            a = menu.addAction(text)
            a.triggered.connect(lambda _=False, k=key: self.run_habit(k))
            self.habit_actions[key] = a
        a = menu.addAction("Show Training State of a Run &Folder…")
        a.triggered.connect(self.replay_dialog)
        self.habit_actions["replay"] = a
        w.editor.analysis_updated.connect(self._on_analysis)
        self.source.set_document(w.document, training_ui.base_dir())

    # ---- hooks called by TrainingUI ---------------------------------------------------
    def attach_plots(self, plots) -> None:
        if self.inside is not None:
            return
        self.inside = InsidePanel(self.source)
        self.tryit = TryItPanel(self.source)
        self.tryit.set_document(self.window.document)
        i = plots.tabs.indexOf(plots.inside_view)  # the trainer's live maps keep a tab
        plots.tabs.setTabText(i, "Live maps")
        plots.tabs.insertTab(i, self.inside, "Inside")
        plots.tabs.addTab(self.tryit, "Try it")
        plots.tabs.currentChanged.connect(self._on_tab)

    def on_events(self, events: list[dict]) -> None:
        for ev in events:
            kind = ev.get("event")
            if kind == "node_stats":
                self.overlay.update_stats(ev.get("step"), ev.get("stats") or {})
            elif kind == "warning" and ev.get("kind"):
                self.overlay.mark_warning(ev.get("node"))
            elif kind == "started":
                self.overlay.clear()
                self._shape = shape_key(self.window.document)
            elif kind == "checkpoint" and ev.get("path"):
                self._new_weights(str(ev["path"]).replace(".pt", ".safetensors"))
            elif kind == "finished":
                weights = (ev.get("metrics") or {}).get("weights")
                if weights:
                    self._new_weights(weights)

    def on_selection(self, node: str) -> None:
        if self.inside is not None:
            self.inside.set_node(node)

    def set_document(self, doc) -> None:
        self.overlay.clear()
        self._shape = shape_key(doc)
        self.source.set_document(doc, self.tui.base_dir())
        self.source.weights = None
        if self.tryit is not None:
            self.tryit.set_document(doc)
        if self.inside is not None:
            self.inside.set_node(None)

    def replay_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.window, "Run folder (with node_stats.jsonl)",
                                                  str(self.tui.run_dir or ""))
        if folder:
            self.replay(folder)

    def replay(self, folder) -> int | None:
        """Put a finished run's last node statistics (OUT/node_stats.jsonl) on the canvas;
        returns their step (None, with a message, when the folder has none)."""
        from runtime.training.health import read_node_stats

        try:
            rows = read_node_stats(folder)
        except (OSError, ValueError) as exc:
            self.window.show_message(f"No training state in {folder}: {exc}", 8000)
            return None
        if not rows:
            self.window.show_message(f"No training state in {folder}", 8000)
            return None
        step = max(r.get("step", 0) for r in rows)
        stats = {r["node"]: {k: v for k, v in r.items() if k not in ("step", "node")}
                 for r in rows if r.get("step") == step and "node" in r}
        self.overlay.clear()
        self._shape = shape_key(self.window.document)
        self.overlay.update_stats(step, stats)
        if not self.show_action.isChecked():
            self.show_action.setChecked(True)
        self.window.show_message(f"Training state of step {step} from {folder}", 8000)
        return step

    # ---- internals ---------------------------------------------------------------------
    def _on_analysis(self, *_a) -> None:
        doc = self.window.document
        key = shape_key(doc)
        if key != self._shape:  # the graph changed shape: the recorded state is stale
            self._shape = key
            self.overlay.clear()
            self.source.set_document(doc, self.tui.base_dir())
            self.source.weights = None
            if self.tryit is not None:
                self.tryit.set_document(doc)

    def _new_weights(self, path: str) -> None:
        self.source.set_weights(path)
        tabs = self.tui.plots.tabs if self.tui.plots is not None else None
        if tabs is not None and tabs.currentWidget() is self.inside:
            self.inside.refresh()

    def _on_tab(self, _i: int) -> None:
        tabs = self.tui.plots.tabs
        if tabs.currentWidget() is self.inside:
            self.inside.refresh()
        elif tabs.currentWidget() is self.tryit:
            self.tryit.schedule()

    def run_habit(self, key: str, wait: bool = False):
        """Start a debugging habit in a thread; the verdict arrives in a message box (and
        in ``last_result``). ``wait`` blocks until it is done (tests)."""
        from runtime.training import debugging as dbg

        doc = self.window.document
        base = self.tui.base_dir()
        if key == "overfit":
            fn = lambda: dbg.overfit_tiny(doc, base_dir=base)  # noqa: E731
        elif key == "gradcheck":
            fn = lambda: dbg.check_gradients(doc)  # noqa: E731
        else:
            ids = self.window.editor.scene.selected_node_ids() if self.window.editor.scene else []
            if len(ids) != 1:
                QMessageBox.information(self.window, "Correlated units",
                                        "Select one layer node on the canvas first.")
                return None
            node, source = ids[0], self.source

            def fn():
                if not source.ensure():
                    raise RuntimeError(source.error)
                return dbg.correlated_units(source.module, node, source.data.inputs)
        self.window.show_message("Running the check…", 3000)
        job = _Job(fn, self)
        job.done.connect(self._habit_done)
        self._jobs.append(job)
        job.finished.connect(lambda j=job: self._jobs.remove(j) if j in self._jobs else None)
        job.start()
        if wait:
            job.wait()
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.processEvents()
        return job

    def _habit_done(self, result) -> None:
        self.last_result = result
        if isinstance(result, Exception):
            text, ok = f"The check could not run: {result}", False
        else:
            text = result.message
            ok = getattr(result, "passed", getattr(result, "reached", True))
            if hasattr(result, "per_node") and result.per_node:
                worst = sorted(result.per_node.items(), key=lambda kv: -kv[1])[:6]
                text += "\n\n" + "\n".join(f"{n}: {e:.2e}" for n, e in worst)
        self.window.show_message(text.splitlines()[0], 10000)
        if getattr(self, "quiet", False):
            return
        if getattr(result, "matrix", None) is not None:
            self._show_matrix(result)
            return
        box = QMessageBox.information if ok else QMessageBox.warning
        box(self.window, "Debugging check", text)

    def _show_matrix(self, result) -> None:
        """The correlation matrix of a layer's units as an image, with the verdict."""
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout

        from .inside import pixmap, to_qimage

        dlg = QDialog(self.window)
        dlg.setWindowTitle(f"Correlated units: {result.node}")
        lay = QVBoxLayout(dlg)
        text = QLabel(result.message + "\n(correlation from -1, dark, to +1, bright; "
                      "unit i against unit j)")
        text.setWordWrap(True)
        img = QLabel()
        img.setPixmap(pixmap(to_qimage(result.matrix, -1.0, 1.0), 420, 420))
        img.setAlignment(Qt.AlignCenter)
        lay.addWidget(text)
        lay.addWidget(img)
        dlg.resize(460, 520)
        dlg.show()
        self._matrix_dialog = dlg
