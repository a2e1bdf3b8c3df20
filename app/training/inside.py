"""Inside and Try it: look at any node of the graph with any input.

Both run the graph in this process (runtime.training.probe) with the newest weights of the
run (the last checkpoint while training, the final weights after it; fresh weights before
any run), on the validation samples as training sees them (runtime.training.probing.
probe_data) or on an input made here.

- :class:`InsidePanel`: the selected node's output for the chosen sample: feature maps
  with the input beside them, channel numbers and a colour bar; dense and recurrent
  outputs as heat maps over units (and time); histograms of its weights and activations;
  its filters as images; for recurrent nodes the gradient norm dL/dh_t over time steps.
- :class:`TryItPanel`: draw a digit with the mouse at the input's size, pick a sample, open
  an image, type text or enter numbers; the top-5 classes (or the value, or the generated
  text) and every node's activation follow as you draw.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QFileDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QScrollArea, QSizePolicy, QSpinBox, QVBoxLayout,
                               QWidget)

MAX_MAPS = 32
CELL = 56  # px per feature-map tile


def viridis() -> np.ndarray:
    import pyqtgraph as pg

    return pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256)


_LUT: np.ndarray | None = None


def to_qimage(a: np.ndarray, lo: float | None = None, hi: float | None = None) -> QImage:
    """A 2-d array as a viridis image scaled to [lo, hi] (its own range by default)."""
    global _LUT
    if _LUT is None:
        _LUT = viridis()
    a = np.nan_to_num(np.asarray(a, np.float32))
    lo = float(a.min()) if lo is None else lo
    hi = float(a.max()) if hi is None else hi
    t = np.zeros_like(a) if hi - lo < 1e-12 else (a - lo) / (hi - lo)
    idx = np.clip((t * 255).astype(np.int32), 0, 255)
    rgb = np.ascontiguousarray(_LUT[idx][..., :3].astype(np.uint8))
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()


def grey_qimage(a: np.ndarray) -> QImage:
    a = np.nan_to_num(np.asarray(a, np.float32))
    if a.ndim == 3 and a.shape[0] == 3:
        lo, hi = float(a.min()), float(a.max())
        rgb = ((a - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8).transpose(1, 2, 0)
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    a = a.reshape(a.shape[-2:]) if a.ndim >= 2 else a.reshape(1, -1)
    lo, hi = float(a.min()), float(a.max())
    g = np.ascontiguousarray(((a - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8))
    h, w = g.shape
    return QImage(g.data, w, h, w, QImage.Format_Grayscale8).copy()


def pixmap(img: QImage, w: int, h: int) -> QPixmap:
    return QPixmap.fromImage(img.scaled(w, h, Qt.KeepAspectRatio, Qt.FastTransformation))


class ColourBar(QWidget):
    """A vertical viridis bar labelled with the value range."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.lo, self.hi = 0.0, 1.0
        self.setFixedWidth(70)
        self.setMinimumHeight(120)

    def set_range(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.update()

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        bar = QRectF(4, 8, 14, self.height() - 16)
        g = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        lut = viridis()
        for i in range(0, 256, 32):
            g.setColorAt(i / 255, QColor(*[int(c) for c in lut[i][:3]]))
        g.setColorAt(1.0, QColor(*[int(c) for c in lut[255][:3]]))
        p.fillRect(bar, g)
        p.setPen(QPen(self.palette().text().color()))
        p.drawText(QRectF(22, 0, 48, 16), Qt.AlignLeft | Qt.AlignVCenter, f"{self.hi:.3g}")
        p.drawText(QRectF(22, self.height() - 16, 48, 16), Qt.AlignLeft | Qt.AlignVCenter,
                   f"{self.lo:.3g}")


class Histogram(QWidget):
    """A tiny bar chart of a value distribution."""

    def __init__(self, title: str, colour: str, parent=None):
        super().__init__(parent)
        self.title, self.colour = title, QColor(colour)
        self.counts: np.ndarray | None = None
        self.edges = (0.0, 1.0)
        self.setMinimumSize(200, 110)

    def set_values(self, values: np.ndarray | None) -> None:
        if values is None or np.size(values) == 0:
            self.counts = None
        else:
            v = np.asarray(values, np.float64).ravel()
            v = v[np.isfinite(v)]
            self.counts, e = np.histogram(v, bins=40)
            self.edges = (float(e[0]), float(e[-1]))
        self.update()

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.setPen(self.palette().text().color())
        p.drawText(QRectF(0, 0, self.width(), 16), Qt.AlignLeft, self.title)
        if self.counts is None:
            p.drawText(QRectF(0, 20, self.width(), 20), Qt.AlignLeft, "(none)")
            return
        area = QRectF(0, 18, self.width(), self.height() - 36)
        top = max(1, int(self.counts.max()))
        w = area.width() / len(self.counts)
        for i, c in enumerate(self.counts):
            h = area.height() * c / top
            p.fillRect(QRectF(area.left() + i * w, area.bottom() - h, max(1.0, w - 1), h),
                       self.colour)
        p.drawText(QRectF(0, self.height() - 16, self.width() / 2, 16), Qt.AlignLeft,
                   f"{self.edges[0]:.3g}")
        p.drawText(QRectF(self.width() / 2, self.height() - 16, self.width() / 2, 16),
                   Qt.AlignRight, f"{self.edges[1]:.3g}")


class TimePlot(QWidget):
    """Gradient norm per time step on a log scale (backpropagation through time)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.values: np.ndarray | None = None
        self.title = ""
        self.setMinimumSize(320, 200)

    def set_values(self, values: np.ndarray | None, title: str = "") -> None:
        self.values, self.title = values, title
        self.update()

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        fg = self.palette().text().color()
        p.setPen(fg)
        p.drawText(QRectF(0, 0, self.width(), 16), Qt.AlignLeft, self.title)
        v = self.values
        if v is None or len(v) == 0:
            return
        lv = np.log10(np.maximum(np.asarray(v, np.float64), 1e-30))
        lo, hi = math.floor(lv.min()), math.ceil(lv.max())
        hi = max(hi, lo + 1)
        area = QRectF(46, 20, self.width() - 56, self.height() - 44)
        p.drawRect(area)
        for k in range(lo, hi + 1, max(1, (hi - lo) // 4)):
            y = area.bottom() - area.height() * (k - lo) / (hi - lo)
            p.drawText(QRectF(0, y - 8, 44, 16), Qt.AlignRight | Qt.AlignVCenter, f"1e{k}")
        pts = [QPointF(area.left() + area.width() * i / max(1, len(lv) - 1),
                       area.bottom() - area.height() * (x - lo) / (hi - lo)) for i, x in enumerate(lv)]
        p.setPen(QPen(QColor("#1f77b4"), 2))
        for a, b in zip(pts, pts[1:]):
            p.drawLine(a, b)
        p.setPen(fg)
        p.drawText(QRectF(area.left(), area.bottom() + 2, area.width(), 16), Qt.AlignCenter,
                   f"time step t (1 .. {len(lv)})   ‖dL/dh_t‖")


class ProbeSource:
    """The graph, its probe samples and the newest weights, shared by both panels."""

    def __init__(self):
        self.doc = None
        self.data = None
        self.weights = None  # a state dict
        self.module = None
        self.error: str | None = None
        self.base_dir = None

    def set_document(self, doc, base_dir=None) -> None:
        self.doc, self.base_dir = doc, base_dir
        self.data = self.module = None
        self.error = None

    def set_weights(self, path) -> None:
        from runtime.training.checkpoint import load_weights

        try:
            self.weights = load_weights(path)
        except Exception:  # noqa: BLE001 - a checkpoint being written: keep the old ones
            return
        self.module = None

    def ensure(self) -> bool:
        if self.doc is None:
            return False
        try:
            if self.data is None:
                from runtime.training.probing import probe_data

                self.data = probe_data(self.doc, None, self.base_dir, n=256)
            if self.module is None:
                from runtime.training.probing import predictor

                self.module = predictor(self.doc, self.weights)
            self.error = None
            return True
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never a crash
            self.error = f"cannot probe this graph: {exc}"
            self.module = None
            return False


class InsidePanel(QWidget):
    """The chosen node's output for the chosen sample (see the module docstring)."""

    def __init__(self, source: ProbeSource, parent=None):
        super().__init__(parent)
        self.source = source
        self.node: str | None = None
        self.index = 0
        top = QHBoxLayout()
        self.title = QLabel("Select a node on the canvas to look inside it.")
        self.title.setWordWrap(True)
        self.prev_btn = QPushButton("◀ Previous")
        self.next_btn = QPushButton("Next ▶")
        self.spin = QSpinBox()
        self.spin.setPrefix("sample ")
        self.spin.setRange(0, 0)
        self.prev_btn.clicked.connect(lambda: self.set_index(self.index - 1))
        self.next_btn.clicked.connect(lambda: self.set_index(self.index + 1))
        self.spin.valueChanged.connect(self.set_index)
        top.addWidget(self.title, 1)
        for w in (self.prev_btn, self.spin, self.next_btn):
            top.addWidget(w)
        self.input_label = QLabel()
        self.input_label.setAlignment(Qt.AlignCenter)
        self.input_caption = QLabel("input")
        self.maps = QWidget()
        self.maps_grid = QGridLayout(self.maps)
        self.maps_grid.setSpacing(3)
        # tiles keep their own size, packed from the top left: each caption stays right
        # under its map however large the scrolled area is
        self.maps_grid.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidget(self.maps)
        scroll.setWidgetResizable(True)
        self.bar = ColourBar()
        self.whist = Histogram("weights", "#4f79c7")
        self.ahist = Histogram("activations", "#dc8c3c")
        self.filters = QLabel()
        self.filters.setAlignment(Qt.AlignCenter)
        self.time = TimePlot()
        left = QVBoxLayout()
        left.addWidget(self.input_caption)
        left.addWidget(self.input_label)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.whist)
        right.addWidget(self.ahist)
        right.addWidget(self.filters)
        right.addStretch(1)
        centre = QVBoxLayout()
        centre.addWidget(scroll, 1)
        centre.addWidget(self.time, 2)  # recurrent nodes: dL/dh_t over the time steps
        body = QHBoxLayout()
        body.addLayout(left)
        body.addLayout(centre, 1)
        body.addWidget(self.bar)
        body.addLayout(right)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(body, 1)
        self.time.hide()
        self.filters.hide()

    def set_node(self, node: str | None) -> None:
        """Show ``node``; a node inside a hand-drawn recurrent cell shows its loop."""
        if node is not None and self.source.doc is not None and node in self.source.doc.nodes:
            from runtime.topology import find_regions, has_recurrent_nodes

            if has_recurrent_nodes(self.source.doc):
                regions, _ = find_regions(self.source.doc)
                node = next((r.name for r in regions if node in r.nodes), node)
        self.node = node
        self.refresh()

    def set_index(self, i: int) -> None:
        n = len(self.source.data) if self.source.data is not None else 1
        self.index = max(0, min(int(i), max(0, n - 1)))
        if self.spin.value() != self.index:
            self.spin.blockSignals(True)
            self.spin.setValue(self.index)
            self.spin.blockSignals(False)
        self.refresh()

    def refresh(self) -> None:
        if self.node is None or not self.source.ensure():
            self.title.setText(self.source.error or "Select a node on the canvas to look "
                               "inside it.")
            return
        from runtime.training import probe

        data = self.source.data
        self.spin.setRange(0, max(0, len(data) - 1))
        res = probe(self.source.module, data.sample(self.index))
        act = res.activations.get(self.node)
        if isinstance(act, (tuple, list)):
            act = act[0]
        label = ""
        if data.targets and data.targets[0] is not None and len(data.targets[0]) > self.index:
            y = data.targets[0][self.index]
            if np.ndim(y) == 0:
                names = data.class_names
                label = f", label {names[int(y)] if names and int(y) < len(names) else y}"
        if act is None:
            self.title.setText(f"{self.node}: no output to show (not a layer node of the "
                               "prediction)")
            self._clear_maps()
            return
        a = act[0].detach().float().cpu().numpy()
        self.title.setText(f"{self.node}: output {tuple(a.shape)} for validation sample "
                           f"{self.index}{label}")
        self._show_input(data.raw[0][self.index])
        self._show_maps(a)
        mod = dict(self.source.module.named_children()).get(self.node)
        params = [p.detach().float().cpu().numpy().ravel() for p in mod.parameters()] if mod else []
        self.whist.set_values(np.concatenate(params) if params else None)
        self.ahist.set_values(a)
        self._show_filters(mod)
        self._show_time(mod)

    def _clear_maps(self) -> None:
        while self.maps_grid.count():
            w = self.maps_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()

    def _show_input(self, x) -> None:
        x = np.asarray(x)
        if x.ndim == 3 or (x.ndim == 2 and x.dtype.kind == "f" and min(x.shape) > 1):
            self.input_label.setPixmap(pixmap(grey_qimage(x), 112, 112))
            self.input_caption.setText("input")
        elif x.dtype.kind in "iu":
            vocab = self.source.data.vocab
            text = "".join(vocab[t] if vocab and t < len(vocab) else "?" for t in x.ravel()[-48:])
            self.input_label.setText(text)
            self.input_caption.setText("input (text)")
        else:
            self.input_label.setPixmap(pixmap(to_qimage(x.reshape(1, -1) if x.ndim == 1 else x),
                                              112, 24 if x.ndim == 1 else 112))
            self.input_caption.setText(f"input ({x.size} values)")

    def _show_maps(self, a: np.ndarray) -> None:
        self._clear_maps()
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        self.bar.set_range(lo, hi)
        if a.ndim == 3:  # (C, H, W): one tile per channel, shared colour scale
            cols = max(1, min(8, int(math.ceil(math.sqrt(min(len(a), MAX_MAPS))))))
            for c in range(min(len(a), MAX_MAPS)):
                cell = QLabel()
                cell.setPixmap(pixmap(to_qimage(a[c], lo, hi), CELL, CELL))
                cap = QLabel(f"ch {c}")
                cap.setAlignment(Qt.AlignCenter)
                box = QWidget()
                v = QVBoxLayout(box)
                v.setContentsMargins(0, 0, 0, 0)
                v.setSpacing(0)
                v.addWidget(cell)
                v.addWidget(cap)
                self.maps_grid.addWidget(box, c // cols, c % cols)
            if len(a) > MAX_MAPS:
                self.maps_grid.addWidget(QLabel(f"+{len(a) - MAX_MAPS} more channels"),
                                         MAX_MAPS // cols + 1, 0, 1, cols)
            return
        if a.ndim == 1:  # units: a heat map strip, folded into rows so it stays readable
            k = len(a)
            cols = min(k, 32)
            rows = int(math.ceil(k / cols))
            grid = np.full(rows * cols, np.nan, np.float32)
            grid[:k] = a
            img, caption = grid.reshape(rows, cols), f"{k} units (row-major, {cols} per row)"
        else:  # (T, F) or (C, L): time (or channels) down, units across
            img = a.reshape(a.shape[0], -1)
            caption = f"{img.shape[0]} steps (down) x {img.shape[1]} units (across)"
        lab = QLabel()
        scale = max(4, min(24, 480 // max(img.shape[1], 1)))
        lab.setPixmap(pixmap(to_qimage(np.nan_to_num(img, nan=lo), lo, hi),
                             img.shape[1] * scale, img.shape[0] * scale))
        self.maps_grid.addWidget(lab, 0, 0)
        self.maps_grid.addWidget(QLabel(caption), 1, 0)

    def _show_filters(self, mod) -> None:
        w = getattr(mod, "weight", None)
        if w is None or w.dim() != 4:
            self.filters.hide()
            return
        w = w.detach().float().cpu().numpy()
        tiles = w[:, 0] if w.shape[1] != 3 else w.mean(1)
        n = min(len(tiles), 32)
        cols = min(8, n)
        rows = int(math.ceil(n / cols))
        kh, kw = tiles.shape[1:]
        canvas = np.full((rows * (kh + 1), cols * (kw + 1)), np.nan, np.float32)
        for i in range(n):
            r, c = divmod(i, cols)
            t = tiles[i]
            canvas[r * (kh + 1): r * (kh + 1) + kh, c * (kw + 1): c * (kw + 1) + kw] = t
        lo = float(np.nanmin(canvas))
        self.filters.setPixmap(pixmap(to_qimage(np.nan_to_num(canvas, nan=lo)), 200, 120))
        self.filters.setToolTip(f"{len(tiles)} filters {kh}x{kw} (input channel 0)")
        self.filters.show()

    def _show_time(self, mod) -> None:
        from runtime.catalog.recurrent_modules import FusedRNN
        from runtime.recurrent.fused import LoweredCell
        from runtime.recurrent.loop import RecurrentLoop

        if not isinstance(mod, (FusedRNN, RecurrentLoop, LoweredCell)):
            self.time.hide()
            return
        import torch

        from runtime.training.probing import time_gradients

        data = self.source.data
        args = data.sample(self.index)
        targets = tuple(torch.from_numpy(np.ascontiguousarray(t[self.index:self.index + 1]))
                        for t in data.targets)
        try:
            g = time_gradients(self.source.doc, self.source.module, args, targets)
        except Exception:  # noqa: BLE001 - a graph whose loss cannot run here
            g = {}
        values = g.get(self.node)
        if values is None:
            self.time.hide()
            return
        self.time.set_values(values, f"{self.node}: gradient of the loss w.r.t. h_t")
        self.time.show()


# ---- Try it -----------------------------------------------------------------------------


class DrawPad(QWidget):
    """Draw at the input's size (H x W values in 0..1), shown enlarged."""

    changed = Signal()

    def __init__(self, h: int, w: int, parent=None):
        super().__init__(parent)
        self.h, self.w = h, w
        self.values = np.zeros((h, w), np.float32)
        self.scale = max(8, 224 // max(h, w))
        self.setFixedSize(w * self.scale, h * self.scale)
        self.brush = 1.0 if max(h, w) <= 12 else max(1.0, max(h, w) / 14)
        self.setCursor(Qt.CrossCursor)

    def clear(self) -> None:
        self.values[:] = 0
        self.update()
        self.changed.emit()

    def set_values(self, a: np.ndarray) -> None:
        a = np.asarray(a, np.float32).reshape(self.h, self.w)
        lo, hi = float(a.min()), float(a.max())
        self.values = (a - lo) / max(hi - lo, 1e-12)
        self.update()
        self.changed.emit()

    def _paint_at(self, pos) -> None:
        y, x = pos.y() / self.scale - 0.5, pos.x() / self.scale - 0.5
        yy, xx = np.mgrid[0:self.h, 0:self.w]
        d2 = (yy - y) ** 2 + (xx - x) ** 2
        ink = np.exp(-d2 / (2 * (0.45 * self.brush) ** 2)).astype(np.float32)
        self.values = np.maximum(self.values, np.clip(ink * 1.2, 0, 1))
        self.update()
        self.changed.emit()

    def mousePressEvent(self, e) -> None:
        self._paint_at(e.position())

    def mouseMoveEvent(self, e) -> None:
        if e.buttons() & Qt.LeftButton:
            self._paint_at(e.position())

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        g = np.ascontiguousarray((self.values * 255).astype(np.uint8))
        img = QImage(g.data, self.w, self.h, self.w, QImage.Format_Grayscale8)
        p.drawImage(QRectF(0, 0, self.width(), self.height()), img)
        p.setPen(QPen(QColor(120, 120, 120, 90)))
        for i in range(1, self.w):
            p.drawLine(i * self.scale, 0, i * self.scale, self.height())
        for i in range(1, self.h):
            p.drawLine(0, i * self.scale, self.width(), i * self.scale)


class TryItPanel(QWidget):
    """Make an input, see the prediction and every node's activation (module docstring)."""

    def __init__(self, source: ProbeSource, parent=None):
        super().__init__(parent)
        self.source = source
        self.pad: DrawPad | None = None
        self.kind = None
        self.update_count = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(60)  # follow the mouse at ~15 Hz
        self._timer.timeout.connect(self.predict)
        self.input_box = QVBoxLayout()
        self.result = QLabel("")
        self.result.setTextFormat(Qt.RichText)
        self.result.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.result.setMinimumWidth(220)
        self.acts = QWidget()
        self.acts_grid = QGridLayout(self.acts)
        self.acts_grid.setSpacing(4)
        self.acts_grid.setColumnStretch(2, 1)  # names and images side by side, room after
        scroll = QScrollArea()
        scroll.setWidget(self.acts)
        scroll.setWidgetResizable(True)
        row = QHBoxLayout(self)
        left = QWidget()
        left.setLayout(self.input_box)
        left.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Preferred)
        row.addWidget(left)
        row.addWidget(self.result)
        row.addWidget(scroll, 1)

    def set_document(self, doc) -> None:
        while self.input_box.count():
            item = self.input_box.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.pad = None
        self.kind = None
        if doc is None:
            return
        from runtime.compiler import signature

        sig = signature(doc)
        if not sig.inputs:
            self.input_box.addWidget(QLabel("The graph has no input node."))
            return
        node = doc.nodes[sig.inputs[0]]
        self.kind, p = node.type, node.params
        self.input_box.addWidget(QLabel(f"<b>{node.id}</b> ({node.type})"))
        if node.type == "ImageInput":
            self.pad = DrawPad(p["height"], p["width"])
            self.pad.changed.connect(self.schedule)
            self.input_box.addWidget(QLabel(f"Draw with the mouse ({p['height']}x{p['width']}):"))
            self.input_box.addWidget(self.pad)
            btns = QHBoxLayout()
            for text, slot in (("Clear", self.pad.clear), ("Open image…", self.open_image)):
                b = QPushButton(text)
                b.clicked.connect(slot)
                btns.addWidget(b)
            self.input_box.addLayout(btns)
        elif node.type == "TokenInput":
            self.text = QLineEdit()
            self.text.setPlaceholderText("type text…")
            self.text.textChanged.connect(self.schedule)
            self.input_box.addWidget(self.text)
        else:
            self.numbers = QLineEdit()
            n = int(np.prod(node.spec.source_shape(node.params)))
            self.numbers.setPlaceholderText(f"{n} numbers, separated by commas")
            self.numbers.textChanged.connect(self.schedule)
            self.input_box.addWidget(self.numbers)
        pick = QHBoxLayout()
        self.sample_spin = QSpinBox()
        self.sample_spin.setPrefix("sample ")
        self.sample_spin.setRange(0, 9999)
        b = QPushButton("Use sample")
        b.clicked.connect(lambda: self.use_sample(self.sample_spin.value()))
        pick.addWidget(self.sample_spin)
        pick.addWidget(b)
        self.input_box.addLayout(pick)
        self.input_box.addStretch(1)

    def schedule(self, *_a) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def use_sample(self, i: int) -> None:
        if not self.source.ensure():
            self.result.setText(self.source.error or "")
            return
        data = self.source.data
        i = max(0, min(i, len(data) - 1))
        x = data.raw[0][i]
        if self.pad is not None:
            self.pad.set_values(np.asarray(x)[0] if np.ndim(x) == 3 else x)
        elif self.kind == "TokenInput":
            vocab = data.vocab or []
            self.text.setText("".join(vocab[t] if t < len(vocab) else "?" for t in np.ravel(x)))
        else:
            self.numbers.setText(", ".join(f"{v:.4g}" for v in np.ravel(x)))

    def open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif)")
        if path:
            self.load_image(path)

    def load_image(self, path: str | Path) -> None:
        img = QImage(str(path))
        if img.isNull() or self.pad is None:
            self.result.setText(f"cannot read {path} as an image")
            return
        img = img.convertToFormat(QImage.Format_Grayscale8).scaled(
            self.pad.w, self.pad.h, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        ptr = img.constBits()
        a = np.frombuffer(ptr, np.uint8, img.bytesPerLine() * img.height())
        a = a.reshape(img.height(), img.bytesPerLine())[:, :img.width()].astype(np.float32)
        if a.mean() > 127:  # dark ink on white paper: the digits are light on dark
            a = 255 - a
        self.pad.set_values(a / 255)

    def current_input(self) -> np.ndarray | None:
        """The raw input (1, ...) in the dataset's value range, or None."""
        data = self.source.data
        from runtime.compiler import signature

        node = self.source.doc.nodes[signature(self.source.doc).inputs[0]]
        shape = tuple(node.spec.source_shape(node.params))
        if self.pad is not None:
            lo, hi = data.ranges[0] if data.ranges else (0.0, 1.0)
            v = lo + self.pad.values * (hi - lo)
            c = shape[0]
            return np.repeat(v[None], c, 0)[None].astype(np.float32)
        if self.kind == "TokenInput":
            vocab = data.vocab or []
            index = {ch: i for i, ch in enumerate(vocab)}
            ids = [index.get(ch, 0) for ch in self.text.text()][-shape[0]:]
            if not ids:
                return None
            ids = [0] * (shape[0] - len(ids)) + ids
            return np.asarray(ids, np.int64)[None]
        try:
            vals = [float(t) for t in self.numbers.text().replace(";", ",").split(",") if t.strip()]
        except ValueError:
            return None
        if len(vals) != int(np.prod(shape)):
            return None
        return np.asarray(vals, np.float32).reshape((1,) + shape)

    def predict(self) -> None:
        if not self.source.ensure():
            self.result.setText(self.source.error or "")
            return
        x = self.current_input()
        if x is None:
            self.result.setText("Enter an input.")
            return
        from runtime.training import probe
        from runtime.training.probing import normalise

        res = probe(self.source.module, normalise([x], self.source.data.stats[:1]))
        self.update_count += 1
        self.last = res
        self.result.setText(self._describe(res))
        self._show_acts(res)

    def _describe(self, res) -> str:
        pred = res.prediction[0] if isinstance(res.prediction, tuple) else res.prediction
        data = self.source.data
        if pred.dim() >= 2 and pred.shape[-1] > 1:
            names = data.class_names or (data.vocab if self.kind == "TokenInput" else None)
            rows = []
            for k, p in res.top_k(5):
                name = names[k] if names and k < len(names) else str(k)
                name = repr(name) if self.kind == "TokenInput" else name
                bar = "█" * max(1, int(round(p * 20)))
                rows.append(f"<tr><td><b>{name}</b></td><td style='color:#1f77b4'>{bar}</td>"
                            f"<td>{p:.1%}</td></tr>")
            head = "<b>Next character</b>" if self.kind == "TokenInput" else "<b>Top 5</b>"
            text = head + "<table>" + "".join(rows) + "</table>"
            if self.kind == "TokenInput" and data.vocab:
                import html

                text += ("<b>Generated</b> (most likely character, step by step)<br><tt>"
                         + html.escape(self.generate(60)).replace("\n", "<br>") + "</tt>")
            return text
        vals = pred.detach().reshape(-1)[:8].tolist()
        return "<b>Prediction</b><br>" + ", ".join(f"{v:.4g}" for v in vals)

    def generate(self, length: int) -> str:
        """Continue the typed text with the most likely next token, ``length`` times."""
        import torch

        x = self.current_input()
        if x is None:
            return ""
        steps, vocab = x.shape[1], self.source.data.vocab
        tokens = list(x[0])
        out = []
        with torch.no_grad():
            for _ in range(length):
                pred = self.source.module(torch.tensor([tokens[-steps:]]))
                pred = pred[0] if isinstance(pred, tuple) else pred
                k = int(pred[0].reshape(-1, pred.shape[-1])[-1].argmax())
                tokens.append(k)
                out.append(vocab[k] if k < len(vocab) else "?")
        return "".join(out)

    def _show_acts(self, res) -> None:
        while self.acts_grid.count():
            w = self.acts_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        r = 0
        for nid, act in res.activations.items():
            if isinstance(act, (tuple, list)):
                act = act[0]
            if not hasattr(act, "dim") or not act.is_floating_point():
                continue
            a = act[0].detach().float().cpu().numpy()
            if a.ndim == 3:
                n = min(len(a), 16)
                img = np.concatenate([np.pad(a[i], ((0, 0), (0, 1)), constant_values=a.min())
                                      for i in range(n)], 1)
            elif a.ndim == 1:
                img = a[None]
            else:
                img = a.reshape(a.shape[0], -1)
            h = 40 if a.ndim == 3 else (14 if a.ndim == 1 else 40)
            lab = QLabel()
            lab.setPixmap(QPixmap.fromImage(to_qimage(img).scaled(
                min(420, max(60, img.shape[1] * 6)), h, Qt.IgnoreAspectRatio,
                Qt.FastTransformation)))
            self.acts_grid.addWidget(QLabel(f"{nid} {tuple(a.shape)}"), r, 0)
            self.acts_grid.addWidget(lab, r, 1, Qt.AlignLeft)
            r += 1
        self.acts_grid.setRowStretch(r, 1)
