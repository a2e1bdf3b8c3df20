"""The Runs panel: the current graph's runs from its run folders, their curves overlaid.

A table lists every run (time, duration, device, status, final metrics, what changed
since the run before); selecting two or more overlays their curves in one plot with a
legend by run (the metric is chosen above the plot). Buttons rename a run, attach a
note, delete it (to the trash; Undo puts it back) and use its weights (as the next run's
initial weights, and for File > Export).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QPushButton, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from runtime.experiments import index

METRICS = (("Loss (validation)", "val_loss"), ("Loss (training, per epoch)", "train_loss"),
           ("Loss (training, per step)", "step_loss"), ("Accuracy (validation)", "val_accuracy"),
           ("Accuracy (training)", "train_accuracy"), ("Learning rate", "step_lr"))
COLUMNS = ("Run", "Started", "Took", "Device", "Status", "Epochs", "Val acc", "Val loss",
           "Params", "Changed since the run before")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks for log10 values on a linear axis: 1, 2 and 5 x 10^k between lo and hi."""
    ticks = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo / 1.5 <= v <= hi * 1.5:
                ticks.append((math.log10(v), f"{v:g}"))
    return ticks


def _duration(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class _Num(QTableWidgetItem):
    """A cell that sorts by its number, not its text."""

    def __init__(self, text: str, value: float | None):
        super().__init__(text)
        self.value = value if value is not None else float("-inf")

    def __lt__(self, other):
        return self.value < getattr(other, "value", float("-inf"))


class RunsPanel(QWidget):
    """``set_root(folder)`` then ``refresh()``; ``runs`` holds the listed runs."""

    use_weights_requested = Signal(object)  # a Run
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.root: Path | None = None
        self.runs: list[index.Run] = []
        self.trashed: list[Path] = []  # deleted runs, newest last (for Undo)
        self.ask_text = self._ask_text  # replaced in tests

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeToContents)
        head.setStretchLastSection(True)
        head.setSortIndicator(1, Qt.AscendingOrder)  # oldest first, as the changes read
        self.table.itemSelectionChanged.connect(self._selection_changed)

        self.where = QLabel(self)
        self.where.setWordWrap(True)
        self.where.setTextInteractionFlags(Qt.TextSelectableByMouse)
        buttons = QHBoxLayout()
        self.buttons = {}
        for key, text, slot in (("refresh", "Refresh", self.refresh),
                                ("rename", "Rename…", self.rename_selected),
                                ("note", "Note…", self.note_selected),
                                ("delete", "Delete", self.delete_selected),
                                ("undo", "Undo delete", self.undo_delete),
                                ("weights", "Use weights", self.use_weights)):
            b = QPushButton(text, self)
            b.clicked.connect(lambda _=False, s=slot: s())
            buttons.addWidget(b)
            self.buttons[key] = b
        self.buttons["weights"].setToolTip("Start the next run from this run's weights, and "
                                           "offer them in File > Export")
        buttons.addStretch(1)

        self.metric = QComboBox(self)
        for text, key in METRICS:
            self.metric.addItem(text, key)
        self.metric.currentIndexChanged.connect(lambda _i: self.redraw())
        self.plot = pg.PlotWidget(self, enableMenu=False)
        self.plot.setLabel("bottom", "epoch")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.legend = self.plot.addLegend(offset=(-5, 5), labelTextSize="9pt",
                                          brush=(0, 0, 0, 140))
        self.hint = QLabel("Select two or more runs to compare their curves.", self)

        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.where)
        tl.addWidget(self.table, 1)
        tl.addLayout(buttons)
        bottom = QWidget(self)
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Curve:", self))
        row.addWidget(self.metric)
        row.addWidget(self.hint, 1)
        bl.addLayout(row)
        bl.addWidget(self.plot, 1)
        self.splitter = QSplitter(Qt.Horizontal, self)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.splitter)
        self._update_buttons()

    # ---- contents --------------------------------------------------------------------
    def set_root(self, root: Path | None) -> None:
        self.root = Path(root) if root else None
        self.refresh()

    def refresh(self) -> None:
        chosen = {r.path for r in self.selected()}
        self.runs = index.find_runs(self.root) if self.root else []
        self.where.setText(f"Runs in {self.root}" if self.root else "No runs folder")
        t = self.table
        t.setSortingEnabled(False)
        t.blockSignals(True)
        t.setRowCount(len(self.runs))
        for row, r in enumerate(self.runs):
            m = r.metrics
            acc, loss = m.get("val_accuracy"), m.get("val_loss")
            cells = [
                QTableWidgetItem(r.name),
                _Num(time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started)), r.started),
                _Num(_duration(r.duration_s), r.duration_s),
                QTableWidgetItem(r.device or "-"), QTableWidgetItem(r.status),
                _Num(str(r.epochs), r.epochs),
                _Num(f"{100 * acc:.1f}%" if isinstance(acc, (int, float)) else "-", acc),
                _Num(f"{loss:.4f}" if isinstance(loss, (int, float)) else "-", loss),
                _Num(f"{r.params:,}" if isinstance(r.params, int) else "-", r.params),
                QTableWidgetItem("; ".join(r.changes))]
            tip = "\n".join(x for x in (str(r.path), f"note: {r.note}" if r.note else "",
                                        f"error: {r.error}" if r.error else "") if x)
            for col, item in enumerate(cells):
                item.setData(Qt.UserRole, row)
                item.setToolTip(tip)
                if col in (2, 5, 6, 7, 8):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                t.setItem(row, col, item)
            if r.note:
                cells[0].setText(f"{r.name} ✎")
        t.blockSignals(False)
        t.setSortingEnabled(True)
        self._select_where(lambda r: r.path in chosen)
        self.redraw()
        self._update_buttons()

    def _run_at(self, row: int) -> index.Run:
        return self.runs[self.table.item(row, 0).data(Qt.UserRole)]

    def selected(self) -> list[index.Run]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self._run_at(r) for r in rows if self.table.item(r, 0) is not None]

    def select(self, names: list[str]) -> None:
        """Select the runs with these names (or ids)."""
        self.table.clearSelection()
        self._select_where(lambda r: r.name in names or r.id in names)

    def _select_where(self, pick) -> None:
        sm = self.table.selectionModel()
        flags = QItemSelectionModel.Select | QItemSelectionModel.Rows
        for row in range(self.table.rowCount()):
            if pick(self._run_at(row)):
                sm.select(self.table.model().index(row, 0), flags)

    def _selection_changed(self) -> None:
        self.redraw()
        self._update_buttons()

    def _update_buttons(self) -> None:
        n = len(self.selected())
        b = self.buttons
        b["rename"].setEnabled(n == 1)
        b["note"].setEnabled(n == 1)
        b["weights"].setEnabled(n == 1 and self.selected()[0].weights is not None)
        b["delete"].setEnabled(n >= 1)
        b["undo"].setEnabled(bool(self.trashed))

    # ---- the plot --------------------------------------------------------------------
    def redraw(self) -> None:
        """The chosen curve of every selected run; losses and learning rates on a log
        scale (log10 of the values on a linear axis, ticks at 1, 2, 5 x 10^k: readable)."""
        key = self.metric.currentData()
        self.plot.clear()
        self.legend.clear()
        runs = self.selected()
        self.hint.setVisible(len(runs) < 2)
        self.drawn: dict[str, tuple] = {}
        for r in runs:
            c = index.curves(r)
            curve = c.get(key) or (c.get("lr") if key == "step_lr" else None)
            if curve:
                self.drawn[r.name] = curve
        ys = [v for _, y in self.drawn.values() for v in y]
        log = (key == "step_lr" or key.endswith("loss")) and bool(ys) and min(ys) > 0
        per_epoch = key not in ("step_loss", "step_lr")
        for i, (name, (x, y)) in enumerate(self.drawn.items()):
            colour = PALETTE[i % len(PALETTE)]
            self.plot.plot(x, [math.log10(v) for v in y] if log else y,
                           pen=pg.mkPen(colour, width=2), name=name,
                           symbol="o" if per_epoch and len(x) <= 40 else None, symbolSize=5,
                           symbolBrush=colour, symbolPen=None)
        self.plot.getAxis("left").setTicks([log_ticks(min(ys), max(ys))] if log else None)
        self.plot.setLabel("left", self.metric.currentText() + (" (log scale)" if log else ""))
        self.plot.enableAutoRange()

    # ---- actions ---------------------------------------------------------------------
    def _ask_text(self, title: str, label: str, text: str) -> str | None:
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value if ok else None

    def _edit_selected(self, title: str, label: str, field: str, apply) -> None:
        runs = self.selected()
        if len(runs) != 1:
            return
        text = self.ask_text(title, label.format(name=runs[0].name), getattr(runs[0], field))
        if text is None:
            return
        try:
            apply(runs[0].path, text)
        except index.RunError as exc:
            self.message.emit(str(exc))
            return
        self.refresh()

    def rename_selected(self) -> None:
        self._edit_selected("Rename run", "Name:", "name", index.rename)

    def note_selected(self) -> None:
        self._edit_selected("Note on run", "Note on {name}:", "note", index.set_note)

    def delete_selected(self) -> None:
        runs = self.selected()
        done = []
        for r in runs:
            try:
                self.trashed.append(index.delete(r.path))
                done.append(r.name)
            except index.RunError as exc:
                self.message.emit(str(exc))
        if done:
            self.message.emit(f"Deleted {', '.join(done)} (moved to the trash; Undo delete "
                              "puts it back)")
        self.refresh()

    def undo_delete(self) -> None:
        if not self.trashed:
            return
        try:
            back = index.restore(self.trashed.pop())
            self.message.emit(f"Restored {back.name}")
        except index.RunError as exc:
            self.message.emit(str(exc))
        self.refresh()

    def use_weights(self) -> None:
        runs = self.selected()
        if len(runs) == 1 and runs[0].weights is not None:
            self.use_weights_requested.emit(runs[0])
