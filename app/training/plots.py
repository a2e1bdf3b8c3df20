"""Live training plots (pyqtgraph): curves, gradient norms, feature maps, evaluation, text.

Events are *ingested* into preallocated buffers (cheap, any rate); a ~30 Hz timer
*redraws* only what changed. Plot items are created once; curves get ``setData`` with the
buffer contents, images get ``setImage`` with fixed levels and a 256-entry lookup table,
so a redraw never rescales or rebuilds anything. Import this module lazily: it pulls in
pyqtgraph.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QFrame, QLabel, QListWidget, QListWidgetItem, QPlainTextEdit,
                               QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from .buffers import MetricStore

MAX_TILES = 64  # feature maps / filters shown at most
LOG_FLOOR = 1e-30  # log plots cannot show 0
MAX_SYMBOLS = 60  # per-epoch curves drop their markers beyond this many epochs
MIN_PLOT_HEIGHT = 195  # px per curve plot, title and axis included: ~145 px of data
LEGEND_HEIGHT = 22  # one line under each plot
LABEL_GAP = 22  # px at least between two labelled ticks of a log axis


class LogAxis(pg.AxisItem):
    """A log axis that labels whole decades only, every 1, 2, 5, 10... decades so that two
    labels are at least ``LABEL_GAP`` px apart (pyqtgraph labels 1..9 of every decade when
    the view spans few decades, and every decade however short the axis is)."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        span = max(maxVal - minVal, 1e-9)
        fit = max(1, int(size // LABEL_GAP))  # labels that fit
        step = next((s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if span / s <= fit), 1000)
        first = math.ceil(minVal / step) * step
        major = [float(v) for v in np.arange(first, maxVal + 1e-9, step)]
        if not major:  # less than one decade in view: its ends, which fit
            major = [minVal, maxVal] if size >= 2 * LABEL_GAP else [minVal]
        ticks = [(float(step), major)]
        if step == 1 and span * 9 * 4 <= size:  # unlabelled 2..9 marks while 4 px apart
            minor = [v + math.log10(k) for v in range(math.floor(minVal), math.ceil(maxVal))
                     for k in range(2, 10)]
            ticks.append((None, [x for x in minor if minVal < x < maxVal]))
        return ticks


def _lut() -> np.ndarray:
    return pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256)


def _normalise(a: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the array's own range (a constant array becomes 0.5)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    if hi - lo < 1e-12:
        return np.full(a.shape, 0.5, np.float32)
    return (a - lo) / (hi - lo)


def mosaic(tiles: np.ndarray, gap: int = 1) -> np.ndarray:
    """(N, H, W) -> one (rows*(H+gap), cols*(W+gap)) image, each tile scaled to [0, 1]."""
    tiles = np.asarray(tiles, dtype=np.float32)
    if tiles.ndim == 1:
        tiles = tiles[None, None, :]
    elif tiles.ndim == 2:  # (C, L): channels as one-row tiles would be unreadable: one image
        tiles = tiles[None]
    elif tiles.ndim > 3:
        tiles = tiles.reshape(-1, *tiles.shape[-2:])
    tiles = tiles[:MAX_TILES]
    n, h, w = tiles.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.zeros((rows * (h + gap) - gap, cols * (w + gap) - gap), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = _normalise(tiles[i])
    return out


def _image_plot(layout: pg.GraphicsLayoutWidget, title: str, row: int, col: int,
                rowspan: int = 1):
    plot = layout.addPlot(row=row, col=col, rowspan=rowspan, title=title, enableMenu=False)
    plot.setAspectLocked(True)
    plot.invertY(True)
    plot.hideAxis("left")
    plot.hideAxis("bottom")
    img = pg.ImageItem(axisOrder="row-major")
    img.setLookupTable(_lut())
    img.setLevels((0.0, 1.0))
    plot.addItem(img)
    return plot, img


SERIES = {"step": (86, 180, 233), "train": (0, 114, 178), "val": (230, 159, 0),
          "lr": (204, 121, 167)}
PLOT_THEMES = {  # background, axes and text, legend background
    "light": ("#ffffff", "#3c4043", (255, 255, 255, 0)),
    "dark": ("#1e1f22", "#c8cacf", (30, 31, 34, 0)),
}


class TrainingPlotsWidget(QWidget):
    """All live plots of one run. ``ingest(events)`` then the timer calls ``redraw()``."""

    node_link = Signal(str)  # a warning's node name was clicked

    def __init__(self, parent: QWidget | None = None, capacity: int = 4096, fps: float = 30.0):
        super().__init__(parent)
        pg.setConfigOptions(antialias=False)
        self.store = MetricStore(capacity)
        self.probe_node: str | None = None
        self.node_order: list[str] = []
        self.warned: dict[str, str] = {}
        self._last_step = 0
        self._drawn: dict[str, int] = {}
        self._maps: dict[str, dict] = {}  # latest feature maps / histograms per node
        self._hists: dict[str, dict] = {}
        self._filters: dict | None = None
        self._pending_images = False
        self._pending_eval: dict | None = None
        self.samples: Any = None  # optional input array for misclassified thumbnails
        self._grad_warn_x: list[float] = []
        self._grad_warn_y: list[float] = []
        self._x_max = -1.0
        self.class_names: list[str] | None = None

        self.tabs = QTabWidget(self)
        self.warning_label = QLabel("", self)
        self.warning_label.setStyleSheet("color: #c0392b;")
        self.warning_label.setWordWrap(True)
        self.warning_label.setTextFormat(Qt.RichText)
        self.warning_label.linkActivated.connect(self.node_link.emit)
        self.warning_label.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.warning_label)
        lay.addWidget(self.tabs)
        self._build_curves()
        self._build_inside()
        self._build_evaluation()
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(2000)
        self.tabs.addTab(self.text, "Text")

        self.tabs.currentChanged.connect(lambda _i: self.redraw())
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(1000 / fps)))
        self.timer.timeout.connect(self.redraw)
        self.redraw_count = 0

    # ---- construction ----------------------------------------------------------------
    def _curve_plot(self, layout, title, row, col, ylabel, log=False):
        # each plot on an even row, its legend on the row below: never over the data
        axes = {"left": LogAxis(orientation="left")} if log else None
        plot = layout.addPlot(row=2 * row, col=col, axisItems=axes)
        plot.setMinimumHeight(MIN_PLOT_HEIGHT)
        plot.setTitle(f"{title} (x: training step)", size="9pt")  # no axis label: room
        plot.setLabel("left", ylabel)
        # No grid: grid lines belong to the axis items, which pyqtgraph then repaints with
        # every curve update (measured: most of the UI's time while training).
        plot.setClipToView(True)
        plot.disableAutoRange()  # ranges change in steps (_grow_x, _fit_y): axes stay cached
        plot.setDownsampling(auto=True, mode="peak")
        plot.getAxis("left").enableAutoSIPrefix(False)
        if log:  # label decades only, and always show at least two of them
            plot.setLogMode(x=False, y=True)
            plot.getAxis("left").setStyle(maxTextLevel=0)
            plot.getViewBox().setLimits(minYRange=2.0)
        legend = pg.LegendItem(colCount=4, labelTextSize="8pt", verSpacing=-8,
                               horSpacing=14)
        layout.addItem(legend, row=2 * row + 1, col=col)
        legend.setMaximumHeight(LEGEND_HEIGHT)  # one line: the room goes to the data
        legend.layout.setContentsMargins(0, 0, 0, 0)  # its row is its own: no margins
        layout.ci.layout.setRowStretchFactor(2 * row, 1)
        layout.ci.layout.setRowStretchFactor(2 * row + 1, 0)
        plot.legend = legend  # PlotItem.addItem puts named curves in it
        self.legends.append(legend)
        return plot

    def _build_curves(self) -> None:
        self.curves_view = pg.GraphicsLayoutWidget()
        self.legends: list = []
        lw = self.curves_view
        self.loss_plot = self._curve_plot(lw, "Loss", 0, 0, "loss")
        self.grad_plot = self._curve_plot(lw, "Gradient norm per layer", 0, 1, "norm", log=True)
        self.acc_plot = self._curve_plot(lw, "Accuracy", 1, 0, "accuracy")
        self.lr_plot = self._curve_plot(lw, "Learning rate", 1, 1, "lr")
        self._default_ranges()
        self.curves: dict[str, Any] = {}
        c = self._add_curve
        # Okabe-Ito colours: told apart by everyone, on light and dark backgrounds
        c("loss", self.loss_plot, "train (step)", SERIES["step"], width=1)
        c("epoch/train_loss", self.loss_plot, "train (epoch)", SERIES["train"], symbol="o",
          width=2)
        c("epoch/val_loss", self.loss_plot, "validation", SERIES["val"], symbol="s", width=2)
        c("epoch/train_accuracy", self.acc_plot, "train", SERIES["train"], symbol="o", width=2)
        c("epoch/val_accuracy", self.acc_plot, "validation", SERIES["val"], symbol="s", width=2)
        c("lr", self.lr_plot, "lr", SERIES["lr"], width=2)
        # warning markers on the gradient plot (one bounded series)
        self.grad_warn_curve = pg.PlotDataItem(pen=None, symbol="t", symbolSize=12,
                                               symbolBrush=(220, 40, 40), symbolPen=None, name="vanish/explode")
        self.grad_plot.addItem(self.grad_warn_curve)
        self.grad_plot.geometryChanged.connect(  # a wider or narrower dock: refit
            lambda: self._fit_legend(self.grad_plot.legend,
                                     self.grad_plot.sceneBoundingRect().width()))
        # two rows of plots with their legends never get flatter than MIN_PLOT_HEIGHT: a
        # short dock scrolls the tab instead
        lw.setMinimumHeight(2 * (MIN_PLOT_HEIGHT + LEGEND_HEIGHT) + 24)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(lw)
        self._curves_tab = scroll
        self.tabs.addTab(scroll, "Curves")

    def _default_ranges(self) -> None:
        """The axes of an empty run: steps 0..50, accuracy 0..1, norms 0.01..10."""
        for plot in (self.loss_plot, self.grad_plot, self.acc_plot, self.lr_plot):
            plot.setXRange(0.0, 50.0, padding=0.0)
        self.loss_plot.setYRange(0.0, 1.0, padding=0.02)
        self.lr_plot.setYRange(0.0, 1.0, padding=0.02)
        self.acc_plot.setYRange(0.0, 1.0, padding=0.02)
        self.grad_plot.setYRange(-2.0, 1.0, padding=0.0)

    def _add_curve(self, key, plot, name, color, width=1, symbol=None):
        kw: dict[str, Any] = {"pen": pg.mkPen(color=color, width=width), "name": name,
                              "skipFiniteCheck": True}
        if symbol:
            kw.update(symbol=symbol, symbolSize=6, symbolBrush=color, symbolPen=None)
        curve = plot.plot([], [], **kw)
        self.curves[key] = curve
        return curve

    def _build_inside(self) -> None:
        self.inside_view = pg.GraphicsLayoutWidget()
        lw = self.inside_view
        # maps | filters | histograms (weights over activations): images get full height
        self.maps_plot, self.maps_img = _image_plot(lw, "Feature maps", 0, 0, rowspan=2)
        self.filters_plot, self.filters_img = _image_plot(lw, "First-layer filters", 0, 1,
                                                          rowspan=2)
        self.whist_plot = lw.addPlot(row=0, col=2, title="Weights")
        self.ahist_plot = lw.addPlot(row=1, col=2, title="Activations")
        self.whist = self.whist_plot.plot([], [], stepMode="center", fillLevel=0,
                                          brush=(80, 120, 200, 160), pen=(80, 120, 200))
        self.ahist = self.ahist_plot.plot([], [], stepMode="center", fillLevel=0,
                                          brush=(220, 140, 60, 160), pen=(220, 140, 60))
        for col, stretch in ((0, 3), (1, 2), (2, 3)):
            lw.ci.layout.setColumnStretchFactor(col, stretch)
        self.tabs.addTab(lw, "Inside")

    def _build_evaluation(self) -> None:
        split = QSplitter(Qt.Horizontal, self)
        self.eval_view = pg.GraphicsLayoutWidget()
        self.conf_plot, self.conf_img = _image_plot(self.eval_view, "Confusion matrix", 0, 0)
        self.conf_plot.showAxis("left")
        self.conf_plot.showAxis("bottom")
        self.conf_plot.setLabel("left", "true class")
        self.conf_plot.setLabel("bottom", "predicted class")
        self._conf_texts: list = []
        self.misclassified = QListWidget(self)
        self.misclassified.setViewMode(QListWidget.IconMode)
        self.misclassified.setIconSize(pg.QtCore.QSize(48, 48))
        self.misclassified.setResizeMode(QListWidget.Adjust)
        split.addWidget(self.eval_view)
        split.addWidget(self.misclassified)
        self._eval_tab = split
        self.tabs.addTab(split, "Evaluation")

    def plots(self) -> dict[str, Any]:
        """Every exportable plot item by a file-name-friendly key."""
        return {"loss": self.loss_plot, "grad_norms": self.grad_plot, "accuracy": self.acc_plot,
                "learning_rate": self.lr_plot, "feature_maps": self.maps_plot,
                "filters": self.filters_plot, "weight_hist": self.whist_plot,
                "activation_hist": self.ahist_plot, "confusion": self.conf_plot}

    def set_theme(self, name: str) -> None:
        """Light plots in the light theme, dark ones in the dark theme."""
        bg, fg, legend_bg = PLOT_THEMES.get(name, PLOT_THEMES["light"])
        self.theme_name = name
        for view in (self.curves_view, self.inside_view, self.eval_view):
            view.setBackground(bg)
            for item in view.ci.items:
                if isinstance(item, pg.PlotItem):
                    for axis in ("left", "bottom", "right", "top"):
                        ax = item.getAxis(axis)
                        ax.setPen(fg)
                        ax.setTextPen(fg)
                    title = item.titleLabel.text
                    item.setTitle(title, color=fg, size="9pt")
        for legend in self.legends:
            legend.setBrush(legend_bg)
            legend.setPen(None)
            legend.setLabelTextColor(fg)
            for _, label in legend.items:
                label.setText(label.text, color=fg)

    # ---- run life cycle --------------------------------------------------------------
    def reset(self) -> None:
        self.store.clear()
        self._drawn.clear()
        self.warned.clear()
        self._messages = []
        self._maps.clear()
        self._hists.clear()
        self._filters = None
        self._last_step = 0
        self._x_max = -1.0
        self._grad_warn_x.clear()
        self._grad_warn_y.clear()
        for key in [k for k in self.curves if k.startswith("grad/")]:
            self.grad_plot.removeItem(self.curves.pop(key))
        self._fit_legend(self.grad_plot.legend, self.grad_plot.sceneBoundingRect().width())
        for key, curve in self.curves.items():
            curve.setData([], [])
            if key.startswith("epoch/"):
                curve.setSymbol("o" if "train" in key else "s")
        self.grad_warn_curve.setData([], [])
        self._default_ranges()  # nothing of the previous run's axes stays either
        self.node_order = []
        self.warning_label.hide()
        self.text.clear()
        self.misclassified.clear()

    def clear_images(self) -> None:
        """Empty the feature maps, filters, histograms and confusion matrix."""
        for img in (self.maps_img, self.filters_img, self.conf_img):
            img.clear()
        for curve in (self.whist, self.ahist):
            curve.setData([], [])
        for t in self._conf_texts:
            self.conf_plot.removeItem(t)
        self._conf_texts = []
        self._pending_images = False
        self._pending_eval = None

    def start_live(self) -> None:
        self.timer.start()

    def stop_live(self) -> None:
        self.timer.stop()
        self.redraw(everything=True)
        if self._last_step > 0:  # the run is over: fit the step axis to it
            self._x_max = float(self._last_step)
            for plot in (self.loss_plot, self.grad_plot, self.acc_plot, self.lr_plot):
                plot.setXRange(0.0, self._x_max, padding=0.02)

    # ---- ingest: called with every batch of events; only touches buffers --------------
    def ingest(self, events: list[dict]) -> None:
        store = self.store
        for ev in events:
            kind = ev.get("event")
            if kind == "step":
                step = float(ev.get("step", 0))
                self._last_step = step
                loss, lr = ev.get("loss"), ev.get("lr")
                if loss is not None and math.isfinite(loss):
                    store.append("loss", step, loss)
                if lr is not None and math.isfinite(lr):
                    store.append("lr", step, lr)
            elif kind == "grad_norms":
                self._ingest_grads(ev)
            elif kind == "epoch":
                self._ingest_epoch(ev)
            elif kind == "feature_maps":
                self._maps[ev.get("node")] = ev
                self._pending_images = True
            elif kind == "histograms":
                self._hists[ev.get("node")] = ev
                self._pending_images = True
            elif kind == "filters":
                self._filters = ev
                self._pending_images = True
            elif kind == "sample_text":
                self.text.appendPlainText(f"--- epoch {ev.get('epoch')} ---\n{ev.get('text', '')}")
            elif kind == "started":
                self.node_order = list(ev.get("nodes") or [])
            elif kind == "warning" and ev.get("message"):
                if ev.get("kind") in ("vanishing", "exploding"):
                    self._mark_grad_warning(ev)
                self._warn(ev.get("node") or "", str(ev["message"]))

    def _ingest_grads(self, ev: dict) -> None:
        """Per-node gradient norms to curves. Whether a norm is vanishing or exploding is
        judged by the runtime relative to the other layers and the loss (health warnings,
        marked on the curve where they arrive), never by an absolute threshold here."""
        step = float(ev.get("step", self._last_step))
        for node, norm in (ev.get("norms") or {}).items():
            norm = float(norm)
            if not math.isfinite(norm):
                self._warn(node, f"gradient norm of {node} is not finite at step {int(step)}")
                continue
            self.store.append(f"grad/{node}", step, max(norm, LOG_FLOOR))

    def _mark_grad_warning(self, ev: dict) -> None:
        node = ev.get("node")
        buf = self.store.series.get(f"grad/{node}")
        if buf is None or not buf.n or len(self._grad_warn_x) >= 500:
            return
        self._grad_warn_x.append(float(buf.x[buf.n - 1]))
        self._grad_warn_y.append(float(buf.y[buf.n - 1]))
        self._drawn["grad_warn"] = -1

    def _ingest_epoch(self, ev: dict) -> None:
        row = {k: v for k, v in ev.items()  # scalars only: the table stays small
               if k != "event" and not isinstance(v, (list, dict, tuple))}
        row["step"] = self._last_step
        self.store.epochs.append(row)
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            v = ev.get(key)
            if v is not None and math.isfinite(v):
                self.store.append(f"epoch/{key}", self._last_step, v)
        if ev.get("confusion") is not None or ev.get("misclassified"):
            self._pending_eval = ev

    def _warn(self, node: str, message: str) -> None:
        """Show the newest warnings, each node a link to it on the canvas; the newest
        one's advice in full (health warnings read "node: what: advice")."""
        import html

        if self.warned.get(node) == message.split(" (")[0]:
            return
        self.warned[node] = message.split(" (")[0]
        self._messages = [m for m in getattr(self, "_messages", []) if m[0] != node]
        self._messages.append((node, message))
        lines = []
        recent = self._messages[-4:]
        for i, (nid, msg) in enumerate(recent):
            head, _, rest = msg.partition(": ") if nid and msg.startswith(nid + ": ") else ("", "", msg)
            what, _, advice = rest.partition(": ")
            text = html.escape(what if advice and i < len(recent) - 1 else rest)
            link = f"<a href='{html.escape(nid)}'>{html.escape(nid)}</a>: " if head else ""
            lines.append(f"⚠ {link}{text}")
        self.warning_label.setText("<br>".join(lines))
        self.warning_label.show()

    # ---- probe -----------------------------------------------------------------------
    def set_probe(self, node_id: str | None) -> None:
        self.probe_node = node_id
        self._pending_images = True
        name = node_id or "first layer"
        self.maps_plot.setTitle(f"Feature maps: {name}")
        self.whist_plot.setTitle(f"Weights: {name}")
        self.ahist_plot.setTitle(f"Activations: {name}")

    # ---- redraw: the timer's job -----------------------------------------------------
    def redraw(self, everything: bool = False) -> None:
        """Update the items of the visible tab (all tabs with ``everything``) that changed."""
        self.redraw_count += 1
        tab = self.tabs.currentWidget()
        if everything or tab is self._curves_tab:
            self._redraw_curves()
        if (everything or tab is self.inside_view) and self._pending_images:
            self._pending_images = False
            self._draw_images()
        if (everything or tab is self._eval_tab) and self._pending_eval is not None:
            ev, self._pending_eval = self._pending_eval, None
            self._draw_evaluation(ev)

    def _grow_x(self, step: float) -> None:
        """Widen the shared step axis by 1.3x when the run passes its end, so axes are not
        regenerated on every redraw."""
        if step <= self._x_max:
            return
        self._x_max = max(50.0, step * 1.3)
        for plot in (self.loss_plot, self.grad_plot, self.acc_plot, self.lr_plot):
            plot.setXRange(0.0, self._x_max, padding=0.0)

    def _fit_y(self, plot, prefix: str, log: bool = False) -> None:
        """Set the y range only when the data leaves it or fills less than a third of it."""
        bufs = [b for k, b in self.store.series.items() if k.startswith(prefix) and b.n]
        if not bufs:
            return
        lo = min(float(b.y[:b.n].min()) for b in bufs)
        hi = max(float(b.y[:b.n].max()) for b in bufs)
        if log:
            lo, hi = math.log10(max(lo, LOG_FLOOR)), math.log10(max(hi, LOG_FLOOR))
        span = max(hi - lo, 1.0 if log else abs(hi) * 0.1 or 1e-3)
        cur_lo, cur_hi = plot.getViewBox().viewRange()[1]
        if lo < cur_lo or hi > cur_hi or (cur_hi - cur_lo) > 3 * span:
            margin = 0.3 if log else 0.1 * span
            plot.setYRange(lo - margin, hi + margin, padding=0.0)

    def _redraw_curves(self) -> None:
        self._grow_x(self._last_step)
        self._fit_y(self.loss_plot, ("loss", "epoch/train_loss", "epoch/val_loss"))
        self._fit_y(self.grad_plot, "grad/", log=True)
        for name, buf in self.store.series.items():
            if self._drawn.get(name) == buf.version:
                continue
            curve = self.curves.get(name)
            if curve is None:
                if not name.startswith("grad/"):
                    continue
                curve = self._grad_curve(name)
            x, y = buf.data()
            if name.startswith("epoch/") and len(x) > MAX_SYMBOLS and curve.opts["symbol"]:
                curve.setSymbol(None)  # hundreds of markers cost more than they show
            curve.setData(x.copy(), y.copy())
            self._drawn[name] = buf.version
            if name == "lr" and len(y):  # from 0, so a flat lr line is a flat line
                self.lr_plot.setYRange(0.0, float(y.max()) * 1.1 or 1.0, padding=0)
        if self._drawn.get("grad_warn") == -1:
            self.grad_warn_curve.setData(np.array(self._grad_warn_x), np.array(self._grad_warn_y))
            self._drawn["grad_warn"] = 0

    def _grad_curve(self, name: str):
        node = name[5:]
        if node not in self.node_order:
            self.node_order.append(node)
        n = max(len(self.node_order), 6)
        color = pg.intColor(self.node_order.index(node), hues=n, values=1, maxValue=230)
        curve = self.grad_plot.plot([], [], pen=pg.mkPen(color, width=1), name=node,
                                    skipFiniteCheck=True)
        self.curves[name] = curve
        self._fit_legend(self.grad_plot.legend, self.grad_plot.sceneBoundingRect().width())
        self.grad_plot.disableAutoRange()  # adding an item must not change the ranges
        if self._x_max > 0:
            self.grad_plot.setXRange(0.0, self._x_max, padding=0.0)
        return curve

    @staticmethod
    def _fit_legend(legend, width: float) -> None:
        """As many entries per line as fit in ``width`` px, as many lines
        as needed: a legend must not spill over the plot below or off the side."""
        n = len(legend.items)
        widest = max((label.item.boundingRect().width() for _, label in legend.items),
                     default=0)  # the text itself: the label is as wide as its column
        per_line = max(1, int(width // (widest + 40)))  # label, sample, spacing
        cols = max(1, min(n, per_line)) if width >= 100 else 4  # 4 until laid out
        if legend.columnCount != cols:
            legend.setColumnCount(cols)
        legend.setMaximumHeight(LEGEND_HEIGHT + 13 * max(0, math.ceil(n / cols) - 1))

    def _probe_event(self, table: dict[str, dict]) -> dict | None:
        if self.probe_node in table:
            return table[self.probe_node]
        if self.probe_node is None and table:
            return next(reversed(table.values()))
        return None

    def _draw_images(self) -> None:
        ev = self._probe_event(self._maps)
        if ev is not None and ev.get("maps") is not None:
            self.maps_img.setImage(mosaic(ev["maps"]), autoLevels=False, levels=(0.0, 1.0))
            self.maps_plot.setTitle(f"Feature maps: {ev.get('node')} (step {ev.get('step')})")
        elif self.probe_node is not None:
            self.maps_img.clear()
            self.maps_plot.setTitle(f"Feature maps: {self.probe_node} (shown at the next "
                                    "visualisation step while training)")
        if self._filters is not None and self._filters.get("weights") is not None:
            w = np.asarray(self._filters["weights"])
            self.filters_img.setImage(mosaic(w if w.ndim != 2 else w[None]), autoLevels=False,
                                      levels=(0.0, 1.0))
            self.filters_plot.setTitle(f"First-layer filters: {self._filters.get('node')}")
        ev = self._probe_event(self._hists)
        if ev is not None:
            for key, item in (("weights", self.whist), ("activations", self.ahist)):
                hist = ev.get(key)
                if hist is None:
                    item.setData([], [])
                    continue
                counts, edges = (np.asarray(a, dtype=np.float64) for a in hist)
                if len(edges) == len(counts) + 1:
                    item.setData(edges, counts, stepMode="center", fillLevel=0)
        elif self.probe_node is not None:
            self.whist.setData([], [])
            self.ahist.setData([], [])

    def _draw_evaluation(self, ev: dict) -> None:
        conf = ev.get("confusion")
        for t in self._conf_texts:
            self.conf_plot.removeItem(t)
        self._conf_texts = []
        if conf is not None:
            m = np.asarray(conf, dtype=np.float64)
            rows = m.sum(axis=1, keepdims=True)
            frac = m / np.maximum(rows, 1)
            self.conf_img.setImage(frac, autoLevels=False, levels=(0.0, 1.0))
            k = m.shape[0]
            ticks = [[(i + 0.5, str(i)) for i in range(k)]] if k <= 30 else None
            for axis in ("left", "bottom"):
                self.conf_plot.getAxis(axis).setTicks(ticks)
            if k <= 12:
                for i in range(k):
                    for j in range(m.shape[1]):
                        dark = frac[i, j] > 0.6  # viridis is light at the top
                        t = pg.TextItem(str(int(m[i, j])), anchor=(0.5, 0.5),
                                        color=(0, 0, 0) if dark else (255, 255, 255))
                        t.setPos(j + 0.5, i + 0.5)
                        self.conf_plot.addItem(t)
                        self._conf_texts.append(t)
            self.conf_plot.setTitle(f"Confusion matrix (epoch {ev.get('epoch')})")
        self.misclassified.clear()
        for rec in (ev.get("misclassified") or [])[:48]:
            label, pred = rec.get("label"), rec.get("pred")
            names = self.class_names
            if names:
                label = names[label] if isinstance(label, int) and label < len(names) else label
                pred = names[pred] if isinstance(pred, int) and pred < len(names) else pred
            item = QListWidgetItem(f"#{rec.get('index')}\n{label} → {pred}")
            icon = self._thumbnail(rec.get("index"))
            if icon is not None:
                item.setIcon(icon)
            self.misclassified.addItem(item)

    def _thumbnail(self, index: Any):
        if self.samples is None or not isinstance(index, int):
            return None
        images = self.samples
        if index >= len(images):
            return None
        a = np.asarray(images[index], dtype=np.float32)
        if a.ndim == 3 and a.shape[0] in (1, 3):
            a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
        if a.ndim not in (2, 3):
            return None
        img8 = np.ascontiguousarray((_normalise(a) * 255).astype(np.uint8))
        h, w = img8.shape[:2]
        if img8.ndim == 2:
            q = QImage(img8.data, w, h, w, QImage.Format_Grayscale8).copy()
        else:
            q = QImage(img8.data, w, h, 3 * w, QImage.Format_RGB888).copy()
        from PySide6.QtGui import QIcon

        return QIcon(QPixmap.fromImage(q).scaled(48, 48))

    # ---- export ----------------------------------------------------------------------
    def export_png(self, folder: str | Path, width: int = 800) -> list[Path]:
        """Every plot as ``<folder>/<name>.png``; returns the paths written."""
        from pyqtgraph.exporters import ImageExporter

        self.redraw(everything=True)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, plot in self.plots().items():
            exporter = ImageExporter(plot)
            exporter.parameters()["width"] = width
            path = folder / f"{name}.png"
            exporter.export(str(path))
            paths.append(path)
        return paths

    def export_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.store.to_csv(), encoding="utf-8")
        return path
