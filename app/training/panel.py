"""The training panel: configuration form, data choice and preview, run buttons, progress.

The form is a view of ``document.training``: every edit writes the whole dict back through
the window's undo stack (a SetTraining command when graph_editor provides one, otherwise
``document.set_training``), and the form refreshes from the document's
``training_changed`` event, so undo, redo and Open all show up here.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from runtime.training.config import DEVICES, OPTIMIZERS, SCHEDULES, TrainConfig  # no torch

# key -> (label, kind, extra).  kind: choice | float | int.  Keys missing from TrainConfig
# are left out of the form; fields TrainConfig has beyond these appear as plain text boxes.
FIELDS: dict[str, tuple[str, str, Any]] = {
    "optimizer": ("Optimizer", "choice", OPTIMIZERS),
    "lr": ("Learning rate", "float", None),
    "momentum": ("Momentum", "float", None),
    "batch_size": ("Batch size", "int", (1, 1 << 20)),
    "epochs": ("Epochs", "int", (1, 1 << 20)),
    "schedule": ("LR schedule", "choice", SCHEDULES),
    "clip_norm": ("Clip gradient norm", "float", None),
    "clip_value": ("Clip gradient value", "float", None),
    "l1": ("L1 penalty", "float", None),
    "weight_decay": ("L2 penalty (weight decay)", "float", None),
    "val_split": ("Validation split", "float", None),
    "early_stopping": ("Early-stopping patience", "int", (0, 1 << 20)),
    "seed": ("Seed", "int", (0, 2**31 - 1)),
    "device": ("Device", "choice", DEVICES),
}
HIDDEN = {"dataset", "probe_node"}  # shown elsewhere (data box) or set by selection


def config_defaults() -> dict[str, Any]:
    """TrainConfig's defaults as a dict (the one definition of the training defaults)."""
    return TrainConfig().to_dict()


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _parse(text: str, like: Any) -> Any:
    text = text.strip()
    if text in ("", "none", "None", "off"):
        return 0.0 if isinstance(like, float) else (0 if isinstance(like, int) and
                                                    not isinstance(like, bool) else None)
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(like, int) and not isinstance(like, bool):
        return int(float(text))
    if isinstance(like, float) or like is None:
        try:
            return float(text)
        except ValueError:
            return text if like is None else _raise(text)
    if isinstance(like, (list, tuple)):
        return [s.strip() for s in text.split(",") if s.strip()]
    return text


def _raise(text: str):
    raise ValueError(f"{text!r} is not a number")


class TrainingPanel(QWidget):
    """Edits a document's training config; emits the user's run commands."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    step_requested = Signal()

    def __init__(self, parent: QWidget | None = None,
                 apply_config: Callable[[Any, dict], None] | None = None,
                 base_dir: Callable[[], Any] | None = None):
        super().__init__(parent)
        self.document: Any = None
        self._base_dir = base_dir or (lambda: None)  # the graph file's folder, if saved
        self._apply = apply_config or (lambda doc, cfg: doc.set_training(cfg))
        self._defaults = config_defaults()
        self._editors: dict[str, QWidget] = {}
        self._updating = False
        self._rate_t0: tuple[float, int] | None = None
        self._steps_per_s = 0.0
        self._shown_at = 0.0
        self._pending_step: dict | None = None
        self._final = False  # the run has ended: no ETA
        self.total_steps = 0
        self.steps_per_epoch = 0
        self.epochs = 0
        self.batch_size = 0

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        body = QWidget()
        col = QVBoxLayout(body)
        outer.addWidget(self._build_run_box())
        # the outcome of a run (final metrics, run folder) wraps over several lines: in
        # the scrolled part it is never squeezed out of sight by a short dock
        col.addWidget(self.status_label)
        col.addWidget(self.run_label)
        col.addWidget(self._build_data_box())
        col.addWidget(self._build_config_box())
        col.addStretch(1)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        self.set_state("idle")

    # ---- construction ----------------------------------------------------------------
    def _build_config_box(self) -> QWidget:
        holder = QWidget(self)
        lay = QVBoxLayout(holder)
        lay.setContentsMargins(0, 0, 0, 0)
        main = [k for k in FIELDS if k in self._defaults]
        more = [k for k, v in self._defaults.items()
                if k not in FIELDS and k not in HIDDEN
                and isinstance(v, (int, float, str, type(None)))]
        lay.addWidget(self._form("Configuration", main))
        more_box = self._form("More settings", more)
        more_box.setCheckable(True)
        more_box.setChecked(False)
        more_box.toggled.connect(lambda on, b=more_box: [
            w.setVisible(on) for w in b.findChildren(QWidget)])
        for w in more_box.findChildren(QWidget):
            w.setVisible(False)
        lay.addWidget(more_box)
        return holder

    def _form(self, title: str, keys: list[str]) -> QGroupBox:
        box = QGroupBox(title, self)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for key in keys:
            label, kind, extra = FIELDS.get(key, (key.replace("_", " ").capitalize(), "text", None))
            if isinstance(self._defaults.get(key), bool):
                w = QCheckBox(box)
                w.toggled.connect(lambda _v, k=key: self._edited(k))
            elif kind == "choice":
                w = QComboBox(box)
                w.addItems(list(extra))
                w.setEditable(False)
                w.currentTextChanged.connect(lambda _t, k=key: self._edited(k))
            elif kind == "int":
                w = QSpinBox(box)
                w.setRange(*extra)
                w.valueChanged.connect(lambda _v, k=key: self._edited(k))
            else:
                w = QLineEdit(box)
                w.setPlaceholderText("off")
                w.editingFinished.connect(lambda k=key: self._edited(k))
            w.setObjectName(f"train_{key}")
            self._editors[key] = w
            form.addRow(label, w)
        return box

    def _build_data_box(self) -> QGroupBox:
        box = QGroupBox("Data", self)
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        self.data_combo = QComboBox(box)
        self.data_combo.setEditable(True)
        self.data_combo.setObjectName("train_dataset")
        try:
            from runtime.data.spec import NAMES
        except ImportError:
            NAMES = ("spirals", "xor", "moons", "circles", "blobs", "digits", "text")
        self.data_combo.addItems(list(NAMES))
        self.data_combo.setToolTip("a built-in set, or a spec such as csv:file.csv?label=y, "
                                   "npz:data.npz, images:folder, idx:imgs.gz,labels.gz, text:file.txt")
        self.data_combo.lineEdit().editingFinished.connect(lambda: self._edited("dataset"))
        self.data_combo.activated.connect(lambda _i: self._edited("dataset"))
        browse = QPushButton("File…", box)
        browse.clicked.connect(self._browse)
        row.addWidget(self.data_combo, 1)
        row.addWidget(browse)
        lay.addLayout(row)
        self.preview = DataPreview(box)
        lay.addWidget(self.preview)
        return box

    def _build_run_box(self) -> QWidget:
        box = QWidget(self)
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for i, (name, sig) in enumerate((("Start", self.start_requested),
                                         ("Pause", self.pause_requested),
                                         ("Resume", self.resume_requested),
                                         ("Step", self.step_requested),
                                         ("Stop", self.stop_requested))):
            b = QPushButton(name, box)
            b.setObjectName(f"train_{name.lower()}")
            b.clicked.connect(sig.emit)
            grid.addWidget(b, 0, i)
            self.buttons[name.lower()] = b
        lay.addLayout(grid)
        self.progress = QProgressBar(box)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress_label = QLabel("not started", box)
        self.progress_label.setWordWrap(True)
        self.status_label = QLabel("", box)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.run_label = QLabel("", box)  # where the last run saved its files
        self.run_label.setObjectName("train_run_folder")
        self.run_label.setWordWrap(True)
        self.run_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.run_label.setVisible(False)
        self.run_folder: Path | None = None
        lay.addWidget(self.progress)
        lay.addWidget(self.progress_label)
        return box

    # ---- binding to the document -----------------------------------------------------
    def set_document(self, doc: Any) -> None:
        if self.document is not None:
            self.document.training_changed.disconnect(self._on_training_changed)
        self.document = doc
        if doc is not None:
            doc.training_changed.connect(self._on_training_changed)
        self.refresh()

    def _on_training_changed(self, _old: Any, _new: Any) -> None:
        self.refresh()

    def config(self) -> dict[str, Any]:
        """The effective config: TrainConfig defaults overlaid with the document's values."""
        cfg = dict(self._defaults)
        if self.document is not None:
            cfg.update(self.document.training or {})
        return cfg

    def refresh(self) -> None:
        cfg = self.config()
        self._updating = True
        try:
            for key, w in self._editors.items():
                v = cfg.get(key)
                if isinstance(w, QCheckBox):
                    w.setChecked(bool(v))
                elif isinstance(w, QComboBox):
                    if v is not None and w.findText(str(v)) < 0:
                        w.addItem(str(v))
                    w.setCurrentText(str(v) if v is not None else w.itemText(0))
                elif isinstance(w, QSpinBox):
                    w.setValue(int(v or 0))
                else:
                    w.setText(_fmt(v))
            ds = cfg.get("dataset") or ""
            self.data_combo.setCurrentText(str(ds))
        finally:
            self._updating = False
        self.preview.show_spec(str(cfg.get("dataset") or ""), self.document, self._base_dir())

    def _edited(self, key: str) -> None:
        if self._updating or self.document is None:
            return
        cfg = dict(self.document.training or {})
        try:
            value = self._value(key)
        except ValueError as exc:
            self.show_status(f"{FIELDS.get(key, (key,))[0]}: {exc}", error=True)
            self.refresh()
            return
        if cfg.get(key, self._defaults.get(key)) == value and key in cfg:
            return
        cfg[key] = value
        self._apply(self.document, cfg)

    def _value(self, key: str) -> Any:
        if key == "dataset":
            return self.data_combo.currentText().strip()
        w = self._editors[key]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentText()
        if isinstance(w, QSpinBox):
            return w.value()
        return _parse(w.text(), self._defaults.get(key))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a data file", "",
            "Data (*.csv *.npz *.npy *.txt *.gz *.idx* *.bin);;All files (*)")
        if not path:
            return
        suffix = Path(path).suffix.lower()
        kind = {".csv": "csv", ".npz": "npz", ".npy": "npy", ".txt": "text", ".bin": "cifar"}.get(
            suffix, "idx" if "idx" in path or suffix == ".gz" else "npz")
        self.data_combo.setCurrentText(f"{kind}:{path}")
        self._edited("dataset")

    # ---- run state and progress ------------------------------------------------------
    def set_state(self, state: str) -> None:
        active = state in ("starting", "running", "paused", "stopping")
        b = self.buttons
        b["start"].setEnabled(not active)
        b["pause"].setEnabled(state in ("starting", "running"))
        b["resume"].setEnabled(state == "paused")
        b["step"].setEnabled(state == "paused")
        b["stop"].setEnabled(active and state != "stopping")
        for w in self._editors.values():
            w.setEnabled(not active)
        self.data_combo.setEnabled(not active)
        if state == "starting":
            self.progress.setRange(0, 0)  # busy until "started" gives the total
            self.progress_label.setText("starting the training process…")
            self.show_status("")
            self._rate_t0 = None
            self._steps_per_s = 0.0
            self._pending_step = None
            self._shown_at = 0.0
            self._final = False
        elif state == "paused":
            self.flush_progress()
            self.progress_label.setText(self.progress_label.text() + " · paused")
        elif state in ("finished", "stopped", "failed", "idle"):
            if self.progress_label.text().startswith("starting"):  # no step was reported
                self.progress_label.setText("not started" if state == "idle" else
                                            f"{state} before the first step")
            self._final = True
            self.flush_progress()
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)

    def set_run_folder(self, folder: Any, weights: Any = None) -> None:
        """Show where the run saved its checkpoints and final weights (None hides it)."""
        self.run_folder = Path(folder) if folder else None
        if self.run_folder is None:
            self.run_label.setVisible(False)
            self.run_label.setText("")
            return
        what = (f"final weights {Path(weights).name}, checkpoints/" if weights else
                "no final weights (the run did not end normally); checkpoints/ holds the "
                "epochs that finished")
        self.run_label.setText(f"Run folder: {self.run_folder}\n({what})")
        self.run_label.setToolTip(str(self.run_folder))
        self.run_label.setVisible(True)

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #c0392b;" if error else "")
        self.status_label.setText(text)

    def on_events(self, events: list[dict]) -> None:
        """Update the progress from the newest events of a batch."""
        last_step = None
        for ev in events:
            kind = ev.get("event")
            if kind == "started":
                self.total_steps = int(ev.get("total_steps") or 0)
                self.steps_per_epoch = int(ev.get("steps_per_epoch") or 0)
                self.epochs = int(ev.get("epochs") or 0)
                self.progress.setRange(0, max(1, self.total_steps))
                self._device_text = (f"training on {ev.get('device', '?')}, "
                                     f"{int(ev.get('params') or 0):,} parameters")
                self.show_status(self._device_text)
            elif kind == "epoch" and ev.get("memory_mb") and getattr(self, "_device_text", None):
                self.show_status(f"{self._device_text} · peak memory {ev['memory_mb']:,.0f} MB")
            elif kind == "step":
                last_step = ev
            elif kind == "finished":
                metrics = ev.get("metrics") or {}
                if metrics.get("status") == "error":
                    continue  # the error event says it better
                parts = [f"{k} {v:.4g}" for k, v in metrics.items()
                         if isinstance(v, (int, float)) and v is not None]
                how = metrics.get("status")
                how = f" ({str(how).replace('_', ' ')})" if how and how != "completed" else ""
                self.show_status(f"finished{how}: " + ", ".join(parts))
                self._final = True
            elif kind == "checkpoint":
                pass
        if last_step is not None:
            self._pending_step = last_step
            now = time.monotonic()
            if now - self._shown_at >= 0.2 or self.total_steps and \
                    int(last_step.get("step", 0)) + 1 >= self.total_steps:
                self._shown_at = now  # a progress bar repaints synchronously: 5 Hz is plenty
                self._show_step(last_step)

    def reset_progress(self) -> None:
        """Back to "not started" (another document is open)."""
        self._pending_step = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label.setText("not started")
        self.show_status("")
        self.set_run_folder(None)

    def flush_progress(self) -> None:
        """Show the newest step (at the end of a run)."""
        if self._pending_step is not None:
            self._show_step(self._pending_step)

    def _show_step(self, ev: dict) -> None:
        step = int(ev.get("step", 0))
        now = time.monotonic()
        if self._rate_t0 is None:
            self._rate_t0 = (now, step)
        else:
            t0, s0 = self._rate_t0
            if now - t0 > 0.5:
                rate = (step - s0) / (now - t0)
                self._steps_per_s = rate if self._steps_per_s == 0 else 0.7 * self._steps_per_s + 0.3 * rate
                self._rate_t0 = (now, step)
        if self.total_steps:  # steps are numbered from 0: step s means s + 1 done
            self.progress.setValue(min(step + 1, self.total_steps))
        sps = ev.get("samples_per_s")
        parts = [f"epoch {int(ev.get('epoch', 0)) + 0}/{self.epochs}" if self.epochs else
                 f"epoch {ev.get('epoch')}",
                 f"batch {ev.get('batch')}/{self.steps_per_epoch}" if self.steps_per_epoch else
                 f"batch {ev.get('batch')}",
                 f"step {step + 1}/{self.total_steps}" if self.total_steps else f"step {step + 1}"]
        if sps:
            parts.append(f"{sps:,.0f} samples/s")
        if self._steps_per_s > 0 and self.total_steps and not self._final:
            eta = max(0.0, (self.total_steps - step - 1) / self._steps_per_s)
            parts.append("ETA " + _duration(eta))
        loss = ev.get("loss")
        if loss is not None and math.isfinite(loss):
            parts.append(f"loss {loss:.4g}")
        self.progress_label.setText(" · ".join(parts))


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class DataPreview(QWidget):
    """A few samples of the chosen dataset: a scatter for 2-D points, a mosaic for images,
    text for text. pyqtgraph is imported on first use."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self._lay.addWidget(self.info)
        self._view = None
        self._spec: tuple | None = None  # (spec, base folder) shown
        self.dataset = None
        self.setMinimumHeight(60)

    def _ensure_view(self):
        if self._view is None:
            import pyqtgraph as pg

            self._view = pg.PlotWidget(self, enableMenu=False)
            self._view.setMinimumHeight(160)
            self._view.setMaximumHeight(220)
            self._lay.addWidget(self._view)
        return self._view

    def show_spec(self, spec: str, doc: Any = None, base_dir: Any = None) -> None:
        if (spec, base_dir) == self._spec:
            return
        self._spec = (spec, base_dir)
        self.dataset = None
        if not spec:
            self.info.setText("no dataset chosen")
            if self._view is not None:
                self._view.hide()
            return
        try:
            from runtime.data.spec import load_dataset

            ds = load_dataset(spec, doc, base_dir)
        except Exception as exc:  # noqa: BLE001 - a bad file is a message, never a traceback
            self.info.setText(f"cannot preview {spec!r}: {exc}")
            if self._view is not None:
                self._view.hide()
            return
        self.dataset = ds
        shapes = ", ".join(str(tuple(a.shape[1:])) for a in ds.inputs)
        classes = f", {ds.num_classes} classes" if ds.num_classes else ""
        self.info.setText(f"{ds.name}: {len(ds)} samples, input {shapes}{classes} ({ds.task})")
        self._draw(ds)

    def _draw(self, ds: Any) -> None:
        import pyqtgraph as pg

        from .plots import _lut, mosaic

        view = self._ensure_view()
        view.clear()
        view.show()
        x = ds.inputs[0] if ds.inputs else None
        y = ds.targets[0] if ds.targets else None
        if x is None:
            view.hide()
            return
        item = view.getPlotItem()
        if x.ndim == 2 and x.shape[1] >= 2 and np.issubdtype(x.dtype, np.floating):
            item.setAspectLocked(False)
            item.invertY(False)
            item.showAxis("left")
            item.showAxis("bottom")
            n = min(len(x), 2000)
            if y is not None and y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
                k = int(y.max()) + 1
                brushes = [pg.intColor(int(c), hues=max(k, 2)) for c in y[:n]]
            else:
                brushes = pg.mkBrush(80, 120, 200)
            view.addItem(pg.ScatterPlotItem(x[:n, 0], x[:n, 1], size=4, pen=None, brush=brushes))
            item.autoRange()
        elif x.ndim == 4 or (x.ndim == 3 and ds.task == "classification" and not ds.vocab
                             and min(x.shape[1:]) >= 4):
            tiles = x[:16]
            if tiles.ndim == 4:
                tiles = tiles[:, 0]
            img = pg.ImageItem(mosaic(tiles), axisOrder="row-major")
            img.setLookupTable(_lut())
            img.setLevels((0.0, 1.0))
            item.setAspectLocked(True)
            item.invertY(True)
            item.hideAxis("left")
            item.hideAxis("bottom")
            view.addItem(img)
            item.autoRange()
            if y is not None and y.ndim == 1:
                self.info.setText(self.info.text() + "; labels of the first 16: " +
                                  " ".join(str(int(v)) for v in y[:16]))
        elif ds.vocab:
            view.hide()
            ids = np.asarray(x[0]).astype(int).ravel()[:80]
            self.info.setText(self.info.text() + "\n«" + "".join(ds.vocab[i] for i in ids
                                                                   if 0 <= i < len(ds.vocab)) + "»")
        elif x.ndim == 2 or x.ndim == 3:
            item.setAspectLocked(False)
            item.invertY(False)
            item.showAxis("left")
            item.showAxis("bottom")
            seq = x[:3].reshape(min(3, len(x)), x.shape[1], -1)
            for i, s in enumerate(seq):
                view.plot(np.arange(s.shape[0]), s[:, 0].astype(float), pen=pg.intColor(i, 3))
            item.autoRange()
        else:
            view.hide()

