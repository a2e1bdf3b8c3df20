"""The Sweep dialog: choose parameters and ranges, trials and jobs; watch the trials live
(a table, objective against each parameter, parallel coordinates); apply the best trial's
values to the graph as one undo step.

The sweep itself is :class:`runtime.experiments.sweep.Sweep`: its loop runs on a Python
thread of this process (it only hands out trials and reads their run folders); the trials
train in worker processes. Each trial update arrives here through a queued Qt signal.
"""
from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QPushButton, QSpinBox,
                               QSplitter, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)

from runtime.training.config import TrainConfig

from .runs_panel import log_ticks

STATE_COLOURS = {"complete": "#2ca02c", "pruned": "#ff7f0e", "failed": "#d62728",
                 "running": "#1f77b4", "stopped": "#7f7f7f", "waiting": "#7f7f7f"}
SETTING_TYPES = {"lr": "log", "weight_decay": "log", "l1": "log", "momentum": "float",
                 "batch_size": "int", "epochs": "int", "optimizer": "choice",
                 "schedule": "choice", "clip_norm": "float", "warmup_steps": "int",
                 "gamma": "float", "final_lr": "float"}


def candidates(doc) -> dict[str, str]:
    """Every parameter a sweep may vary -> a suggested range or list of values."""
    from runtime.training.config import OPTIMIZERS, SCHEDULES

    cfg = TrainConfig.from_dict(doc.training).to_dict() if doc.training else TrainConfig().to_dict()
    out: dict[str, str] = {}
    for name, kind in SETTING_TYPES.items():
        v = cfg[name]
        if kind == "log":
            base = v if v > 0 else 1e-4
            out[name] = f"{base / 10:.0e}..{base * 10:.0e}:log"
        elif kind == "int":
            out[name] = f"{max(1, v // 2)}..{max(2, v * 2)}"
        elif kind == "float":
            out[name] = f"{v / 2:g}..{max(v * 2, v / 2 + 0.5):g}" if v else "0..1"
        else:
            out[name] = ",".join(OPTIMIZERS[-3:] if name == "optimizer" else SCHEDULES[:3])
    for nid in sorted(doc.nodes):
        node = doc.nodes[nid]
        for p in node.spec.params:
            v = node.params.get(p.name, p.default)
            if p.type == "int" and isinstance(v, int):
                lo = max(int(p.min) if p.min is not None else 1, v // 2)
                hi = max(lo + 1, v * 2)
                if p.max is not None:
                    hi = min(hi, int(p.max))
                if hi > lo:
                    out[f"{nid}.{p.name}"] = f"{lo}..{hi}:int"
            elif p.type == "float" and isinstance(v, (int, float)):
                lo = p.min if p.min is not None else 0.0
                hi = p.max if p.max is not None else max(1.0, 2 * v)
                if p.max is not None and p.max >= 1 and p.min is not None and p.min >= 0:
                    hi = min(hi, 0.9)  # e.g. dropout's p: 1.0 drops everything
                if hi > lo:
                    out[f"{nid}.{p.name}"] = f"{lo:g}..{hi:g}"
            elif p.type == "choice" and p.choices:
                out[f"{nid}.{p.name}"] = ",".join(p.choices)
            elif p.type == "bool":
                out[f"{nid}.{p.name}"] = "true,false"
    return out


class SweepDialog(QDialog):
    trial_updated = Signal(object)  # a TrialInfo copy (from the sweep's thread)
    sweep_ended = Signal(str)  # "" or an error message

    def __init__(self, window: Any, parent: QWidget | None = None):
        super().__init__(parent or window)
        self.window = window
        self.setWindowTitle("Sweep")
        self.setObjectName("SweepDialog")
        self.sweep = None
        self.thread: threading.Thread | None = None
        self.trials: dict[int, Any] = {}
        self.names: list[str] = []
        self.best = None
        self.doc = window.document
        self.options = candidates(self.doc)

        self.params = QTableWidget(0, 2, self)
        self.params.setHorizontalHeaderLabels(("Parameter", "Values (LOW..HIGH[:log][:int] or A,B,C)"))
        self.params.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.params.horizontalHeader().setStretchLastSection(True)
        self.params.verticalHeader().hide()
        self.params.setMinimumHeight(110)
        self.params.setMaximumHeight(190)
        add, remove = QPushButton("Add parameter", self), QPushButton("Remove", self)
        add.clicked.connect(lambda: self.add_param())
        remove.clicked.connect(self._remove_param)
        self.trials_spin = QSpinBox(self)
        self.trials_spin.setRange(1, 10000)
        self.trials_spin.setValue(20)
        self.jobs_spin = QSpinBox(self)
        self.jobs_spin.setRange(1, 64)
        self.epochs_spin = QSpinBox(self)
        self.epochs_spin.setRange(1, 100000)
        self.epochs_spin.setValue(int((self.doc.training or {}).get("epochs", 10)))
        self.objective = QComboBox(self)
        for key in ("val_loss", "val_accuracy", "train_loss", "train_accuracy"):
            self.objective.addItem(key, key)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("a timestamp; the same name again resumes a sweep")
        self.start_button = QPushButton("Start", self)
        self.stop_button = QPushButton("Stop", self)
        self.apply_button = QPushButton("Apply best to the graph", self)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.apply_button.clicked.connect(self.apply_best)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Trials", self.trials_spin)
        form.addRow("Trials at once", self.jobs_spin)
        form.addRow("Epochs per trial", self.epochs_spin)
        form.addRow("Objective", self.objective)
        form.addRow("Name", self.name_edit)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.params)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        ll.addLayout(row)
        ll.addLayout(form)
        row = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.apply_button):
            row.addWidget(b)
        ll.addLayout(row)
        ll.addWidget(self.status)
        ll.addStretch(1)

        self.table = QTableWidget(0, 0, self)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.scatter = pg.GraphicsLayoutWidget(self)
        self.parallel = pg.PlotWidget(self, enableMenu=False)
        self.parallel.hideAxis("left")
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.table, "Trials")
        self.tabs.addTab(self.scatter, "Objective vs parameters")
        self.tabs.addTab(self.parallel, "Parallel coordinates")
        split = QSplitter(Qt.Horizontal, self)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([470, 900])
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self.resize(1250, 620)

        self.trial_updated.connect(self._on_trial)
        self.sweep_ended.connect(self._on_ended)
        self.add_param("lr", self.options.get("lr"))
        self._set_running(False)

    # ---- parameters ------------------------------------------------------------------
    def add_param(self, name: str | None = None, values: str | None = None) -> None:
        row = self.params.rowCount()
        self.params.insertRow(row)
        combo = QComboBox(self.params)
        combo.setEditable(True)
        combo.addItems(list(self.options))
        edit = QLineEdit(self.params)
        if name is None:
            used = set(self.param_texts_names())
            name = next((n for n in self.options if n not in used), "lr")
        combo.setCurrentText(name)
        edit.setText(values if values is not None else self.options.get(name, ""))
        combo.currentTextChanged.connect(lambda n, e=edit: e.setText(self.options.get(n, e.text())))
        self.params.setCellWidget(row, 0, combo)
        self.params.setCellWidget(row, 1, edit)

    def _remove_param(self) -> None:
        row = self.params.currentRow()
        if row < 0:
            row = self.params.rowCount() - 1
        if row >= 0:
            self.params.removeRow(row)

    def param_texts_names(self) -> list[str]:
        return [self.params.cellWidget(r, 0).currentText().strip()
                for r in range(self.params.rowCount())]

    def param_texts(self) -> list[str]:
        out = []
        for r in range(self.params.rowCount()):
            name = self.params.cellWidget(r, 0).currentText().strip()
            values = self.params.cellWidget(r, 1).text().strip()
            if name or values:
                out.append(f"{name}={values}")
        return out

    # ---- running ---------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.params.setEnabled(not running)
        self.apply_button.setEnabled(self.best is not None and not running)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> bool:
        if self.running:
            return False
        from runtime.experiments.sweep import Sweep, SweepError
        from runtime.serialization import dumps, loads

        w = self.window
        doc = w.editor.composed_document() if hasattr(w.editor, "composed_document") else w.document
        self.doc = w.document
        snapshot = loads(dumps(doc), source="<sweep>")
        file = getattr(w, "file_path", None) or (str(doc.metadata.get("name") or "untitled") + ".json")
        try:
            self.sweep = Sweep(file, self.param_texts(), trials=self.trials_spin.value(),
                               jobs=self.jobs_spin.value(), epochs=self.epochs_spin.value(),
                               objective=self.objective.currentData(),
                               name=self.name_edit.text().strip() or None, doc=snapshot,
                               folder=getattr(self, "folder", None))
        except SweepError as exc:
            self.status.setText(f"<span style='color:#c0392b'>{exc}</span>")
            return False
        self.trials = {t.number: t for t in self.sweep.trial_infos()
                       if t.state in ("complete", "pruned", "failed")}
        self.names = [s.name for s in self.sweep.specs]
        self.best = None
        self._redraw()
        sweep = self.sweep

        def work():
            try:
                sweep.run(lambda info: self.trial_updated.emit(
                    dataclasses.replace(info, values=dict(info.values))))
                self.sweep_ended.emit("")
            except Exception as exc:  # noqa: BLE001 - shown in the dialog, never a crash
                self.sweep_ended.emit(f"{type(exc).__name__}: {exc}")

        self.thread = threading.Thread(target=work, daemon=True, name="sweep")
        self._set_running(True)
        self.status.setText(f"Sweep {sweep.name} running in {sweep.folder}")
        self.thread.start()
        return True

    def stop(self) -> None:
        if self.sweep is not None and self.running:
            self.sweep.stop()
            self.status.setText("Stopping: running trials end and are run again when this "
                                "sweep is resumed (same name)")

    def _on_trial(self, info) -> None:
        self.trials[info.number] = info
        self._update_best()
        self._redraw()

    def _on_ended(self, error: str) -> None:
        self.thread = None
        self._set_running(False)
        done = sum(1 for t in self.trials.values() if t.state in ("complete", "pruned", "failed"))
        if error:
            self.status.setText(f"<span style='color:#c0392b'>The sweep stopped: {error}</span>")
        else:
            best = self.best
            self.status.setText(f"Sweep {self.sweep.name}: {done} trials ended" + (
                f"; best: trial {best.number} ({self.sweep.objective} {best.objective:.4g})"
                if best else "; no trial completed"))
        self._set_running(False)
        runs = getattr(self.window, "runs_ui", None)
        if runs is not None:
            runs.refresh()

    def _update_best(self) -> None:
        done = [t for t in self.trials.values() if t.state == "complete" and t.objective is not None]
        if not done or self.sweep is None:
            self.best = None
            return
        pick = min if self.sweep.direction == "minimize" else max
        self.best = pick(done, key=lambda t: t.objective)

    # ---- views -----------------------------------------------------------------------
    def _redraw(self) -> None:
        self._fill_table()
        self._draw_scatter()
        self._draw_parallel()

    def _fill_table(self) -> None:
        cols = ["Trial", "State"] + self.names + ["Objective", "Val acc", "Params", "Epochs", "Note"]
        t = self.table
        t.setColumnCount(len(cols))
        t.setHorizontalHeaderLabels(cols)
        trials = sorted(self.trials.values(), key=lambda x: x.number)
        t.setRowCount(len(trials))
        for row, tr in enumerate(trials):
            vals = [str(tr.number), tr.state]
            for n in self.names:
                v = tr.values.get(n)
                vals.append(f"{v:.4g}" if isinstance(v, float) else str(v))
            vals += [f"{tr.objective:.4f}" if tr.objective is not None else "",
                     f"{100 * tr.val_accuracy:.1f}%" if isinstance(tr.val_accuracy, (int, float)) else "",
                     f"{tr.params:,}" if isinstance(tr.params, int) else "",
                     str(tr.epochs or ""), tr.error or ("best" if tr is self.best else "")]
            for col, text in enumerate(vals):
                item = QTableWidgetItem(text)
                if col == 1:
                    item.setForeground(pg.mkColor(STATE_COLOURS.get(tr.state, "#7f7f7f")))
                if tr.error:
                    item.setToolTip(tr.error)
                t.setItem(row, col, item)
        t.resizeColumnsToContents()
        t.horizontalHeader().setStretchLastSection(True)

    def _numeric(self, name: str, trials: list) -> tuple[list[float], dict | None]:
        """The trials' values of ``name`` as numbers (choices by their position)."""
        vals = [t.values.get(name) for t in trials]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            return [float(v) for v in vals], None
        order = sorted({str(v) for v in vals})
        return [float(order.index(str(v))) for v in vals], {i: s for i, s in enumerate(order)}

    def _draw_scatter(self) -> None:
        self.scatter.clear()
        done = [t for t in self.trials.values() if t.state == "complete" and t.objective is not None]
        objective = self.sweep.objective if self.sweep is not None else "objective"
        # pruned trials: at the last value they reported (grey), when that is the objective
        pruned = [t for t in self.trials.values() if t.state == "pruned"
                  and isinstance(getattr(t, objective, None), (int, float))]
        shown = done + pruned
        for i, name in enumerate(self.names):
            plot = self.scatter.addPlot(row=0, col=i, title=name, enableMenu=False)
            plot.setLabel("left", objective if i == 0 else "")
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            if i == 0:
                plot.addLegend(offset=(-5, 5), labelTextSize="8pt", brush=(0, 0, 0, 160))
            if not shown:
                continue
            xs, labels = self._numeric(name, shown)
            log = labels is None and min(xs) > 0 and max(xs) / min(xs) > 20
            if log:  # log10 of the values on a linear axis, ticks at 1, 2, 5 x 10^k
                plot.getAxis("bottom").setTicks([log_ticks(min(xs), max(xs))])
            if labels:
                plot.getAxis("bottom").setTicks([list(labels.items())])
            x = np.log10(xs) if log else np.asarray(xs)
            n = len(done)
            groups = (("completed", [k for k in range(n) if done[k] is not self.best], "#1f77b4"),
                      ("best", [k for k in range(n) if done[k] is self.best], "#d62728"),
                      ("pruned (last epoch)", list(range(n, len(shown))), "#999999"))
            for label, ks, colour in groups:
                if not ks:
                    continue
                item = pg.ScatterPlotItem(
                    x=x[ks], y=[shown[k].objective if k < n else getattr(shown[k], objective)
                                for k in ks],
                    size=9, brush=None if label.startswith("pruned") else pg.mkBrush(colour),
                    pen=pg.mkPen(colour, width=1.5), name=label if i == 0 else None)
                plot.addItem(item)  # (named: the first plot's legend lists it)

    def _draw_parallel(self) -> None:
        p = self.parallel
        p.clear()
        done = [t for t in self.trials.values() if t.state in ("complete", "pruned")]
        axes = self.names + ["objective"]
        p.getAxis("bottom").setTicks([[(i, n) for i, n in enumerate(axes)]])
        for i in range(len(axes)):
            p.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen("#888888", width=1)))
        if not done:
            return
        columns, logs, choice_names = [], [], []
        for name in self.names:
            xs, labels = self._numeric(name, done)
            logged = labels is None and min(xs) > 0 and max(xs) / min(xs) > 20
            if logged:
                xs = [math.log10(x) for x in xs]
            columns.append(xs)
            logs.append(logged)
            choice_names.append(labels)
        objs = [t.objective if t.objective is not None else math.nan for t in done]
        finite = [o for o in objs if math.isfinite(o)]
        worst = (max(finite) if self.sweep.direction == "minimize" else min(finite)) if finite else 0.0
        columns.append([o if math.isfinite(o) else worst for o in objs])  # pruned: at the worst
        scaled, ranges = [], []
        for a, col in enumerate(columns):
            lo, hi = min(col), max(col)
            ranges.append((lo, hi))
            ys = [(v - lo) / (hi - lo) if hi > lo else 0.5 for v in col]
            if a == len(columns) - 1 and self.sweep.direction == "minimize":
                ys = [1 - y for y in ys]  # the better objective at the top
            scaled.append(ys)
        good = sorted(finite, reverse=self.sweep.direction == "maximize")
        for k, t in enumerate(done):
            ys = [scaled[a][k] for a in range(len(axes))]
            if t is self.best:
                pen = pg.mkPen("#d62728", width=3)
            elif t.state == "pruned":
                pen = pg.mkPen((150, 150, 150, 140), width=1, style=Qt.DashLine)
            else:  # better trials darker
                rank = good.index(objs[k]) / max(1, len(good) - 1) if good else 0.0
                pen = pg.mkPen((31, 119, 180, int(255 - 170 * rank)), width=2)
            p.plot(list(range(len(axes))), ys, pen=pen)
        for a, (lo, hi) in enumerate(ranges):  # each axis' range at its ends
            labels = choice_names[a] if a < len(choice_names) else None
            if labels:
                fmt = lambda v, labels=labels: labels.get(int(round(v)), "")  # noqa: E731
            elif a < len(logs) and logs[a]:
                fmt = lambda v: f"{10 ** v:.3g}"  # noqa: E731
            else:
                fmt = lambda v: f"{v:.4g}"  # noqa: E731
            top, bottom = (lo, hi) if a == len(axes) - 1 and self.sweep.direction == "minimize" \
                else (hi, lo)
            for y, v, anchor in ((1.0, top, (0.5, 1.0)), (0.0, bottom, (0.5, 0.0))):
                label = pg.TextItem(fmt(v), color="#dddddd", anchor=anchor)
                label.setPos(a, y + (0.04 if y else -0.04))
                p.addItem(label)
        p.setTitle(f"better {self.sweep.objective} at the top; pruned trials dashed, the best red")
        p.setXRange(-0.3, len(axes) - 0.7)
        p.setYRange(-0.12, 1.12)

    # ---- apply -----------------------------------------------------------------------
    def apply_best(self) -> bool:
        """Set the best trial's values on the graph: one undo step."""
        if self.best is None or self.sweep is None:
            return False
        from graph_editor import commands as C

        w = self.window
        doc = w.document
        values = self.best.values
        settings = {s.name: values[s.name] for s in self.sweep.specs
                    if s.node is None and s.name in values}
        stack = w.undo_stack
        stack.beginMacro(f"Apply sweep trial {self.best.number}")
        try:
            for s in self.sweep.specs:
                if s.node is not None and s.name in values and s.node in doc.nodes:
                    stack.push(C.SetParam(doc, s.node, s.param, values[s.name]))
            if settings:
                cfg = {**(doc.training or {}), **settings}
                SetTraining = getattr(C, "SetTraining", None)
                if SetTraining is None:
                    from app.training.ui import _SetTrainingCommand as SetTraining
                stack.push(SetTraining(doc, cfg))
        finally:
            stack.endMacro()
        w.show_message(f"Applied trial {self.best.number}: " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()), 8000)
        return True

    def closeEvent(self, event) -> None:
        self.stop()
        super().closeEvent(event)
