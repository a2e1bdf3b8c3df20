"""Training health painted on the canvas: a small read-out above each node.

    overlay = HealthOverlay(view)          # one per canvas view
    overlay.update_stats(step, {"conv1": {"grad_norm": 0.03, "update_ratio": 1e-3, ...}})
    overlay.set_enabled(False)             # View > Show Training State
    overlay.clear()                        # the graph changed shape

Each read-out is a :class:`HealthBadge`, a child item of the node's item (so it moves with
the node and leaves the node's own drawing and cache alone): a chip coloured by the
gradient norm on a log scale (blue: vanishing, green: 1e-2 .. 1, red: exploding), the
gradient norm, the update ratio |lr * update| / |w|, and the share of dead (ReLU) or
saturated (sigmoid/tanh) units. New figures are applied at most ``HZ`` times a second,
only to badges whose drawing changes at the current zoom (far out only the bar's colour
bucket counts), so a large graph repaints little. A :class:`HealthLegend` in the view's corner explains
the colours.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QWidget

LOG_LO, LOG_HI = -7.0, 3.0  # colour scale of the gradient norm: 1e-7 .. 1e3
GREEN_LO, GREEN_HI = -2.0, 0.0  # 1e-2 .. 1: green
BADGE_H = 18.0
HZ = 2.0  # canvas updates per second at most (each may repaint much of the view)
SMALL_LOD = 0.6  # below this zoom (text under ~5 pt) only the coloured bar is drawn
COLOUR_STEPS = 9  # colour buckets of the bar over the scale (one per decade)
TINY_LOD = 0.2  # below this zoom a badge is a sliver: new figures wait for a zoom-in


def grad_colour(g: float | None) -> QColor:
    """Blue at 1e-7 and below (vanishing), green from 1e-2 to 1 (healthy), red at 1e3 and
    above (exploding), piecewise linear in log10 between; grey when unknown."""
    if g is None or not math.isfinite(g):
        return QColor("#d62728") if g is not None else QColor("#9aa0a6")
    e = math.log10(max(g, 1e-30))
    if e < GREEN_LO:
        hue = 120 + 120 * min(1.0, (GREEN_LO - e) / (GREEN_LO - LOG_LO))
    elif e > GREEN_HI:
        hue = 120 * max(0.0, 1 - (e - GREEN_HI) / (LOG_HI - GREEN_HI))
    else:
        hue = 120
    return QColor.fromHsvF(hue / 360, 0.75, 0.85)


def _num(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.1e}".replace("e-0", "e-").replace("e+0", "e")


def badge_text(rec: dict) -> str:
    parts = []
    if rec.get("grad_norm") is not None:
        parts.append(f"∇ {_num(rec['grad_norm'])}")
    if rec.get("update_ratio") is not None:
        parts.append(f"Δ {_num(rec['update_ratio'])}")
    if rec.get("dead_fraction") is not None:
        parts.append(f"dead {rec['dead_fraction']:.0%}")
    if rec.get("saturated_fraction") is not None:
        parts.append(f"sat {rec['saturated_fraction']:.0%}")
    if not parts and rec.get("act_std") is not None:
        parts.append(f"σ {rec['act_std']:.2g}")
    return "  ".join(parts)


class HealthBadge(QGraphicsItem):
    """The read-out above one node (a child of its NodeItem)."""

    def __init__(self, node_item: QGraphicsItem, width: float):
        super().__init__(node_item)
        self.width = width
        self.text = ""
        self.rec: dict = {}
        self.warn = False
        self._shown: tuple | None = None
        self.setPos(0, -BADGE_H - 3)
        self.setAcceptHoverEvents(True)
        self.setZValue(3)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self.setToolTip("")

    def set_record(self, rec: dict, warn: bool = False, small: bool = False) -> bool:
        """Take new figures; repaint only when what is drawn at this zoom changes (far
        out: the colour bucket of the bar; close up: the text). Returns whether it did."""
        self.rec, self.text, self.warn = dict(rec), badge_text(rec), warn
        g = rec.get("grad_norm")
        bucket = None if g is None or not math.isfinite(g) else round(
            (math.log10(max(g, 1e-30)) - LOG_LO) / (LOG_HI - LOG_LO) * COLOUR_STEPS)
        shown = (bucket, warn) if small else (self.text, warn)
        if shown == self._shown:
            return False
        self._shown = shown
        self.update()
        return True

    def hoverEnterEvent(self, event) -> None:
        self._set_tooltip()
        super().hoverEnterEvent(event)

    def _set_tooltip(self) -> None:
        self.setToolTip("<b>Training state</b><br>" + "<br>".join(
            f"{k.replace('_', ' ')}: {v:.3g}" for k, v in self.rec.items()
            if isinstance(v, (int, float))))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.width, BADGE_H)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        colour = grad_colour(self.rec.get("grad_norm")) if "grad_norm" in self.rec else None
        r = self.boundingRect()
        painter.setRenderHint(QPainter.Antialiasing, lod > SMALL_LOD)
        if lod < SMALL_LOD:  # far out: a coloured bar says enough
            painter.fillRect(QRectF(0, BADGE_H - 8, self.width, 8),
                             colour or QColor(150, 150, 150, 160))
            return
        painter.setPen(QPen(QColor("#d62728") if self.warn else QColor(0, 0, 0, 60), 1.2))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(r, 4, 4)
        x = 4.0
        if colour is not None:
            painter.setPen(Qt.NoPen)
            painter.setBrush(colour)
            painter.drawRoundedRect(QRectF(x, 4, 10, BADGE_H - 8), 2, 2)
            x += 14
        f = QFont(painter.font())
        f.setPointSizeF(7.5)
        painter.setFont(f)
        painter.setPen(QColor("#1f2328"))
        painter.drawText(QRectF(x, 0, self.width - x - 3, BADGE_H),
                         Qt.AlignVCenter | Qt.AlignLeft, self.text)


class HealthLegend(QWidget):
    """The colour scale and the abbreviations, in the canvas corner that hides least."""

    W, H = 300, 58

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        # opaque: a repaint (the step number changes) never repaints the canvas beneath
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self.step: int | None = None
        self.resize(self.W, self.H)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        p.setPen(QPen(QColor(0, 0, 0, 90)))
        p.drawRect(QRectF(0.5, 0.5, self.W - 1, self.H - 1))
        f = QFont(p.font())
        f.setPointSizeF(8)
        p.setFont(f)
        p.setPen(QColor("#1f2328"))
        title = "Training state" + (f" (step {self.step})" if self.step is not None else "")
        p.drawText(QRectF(8, 2, self.W - 16, 16), Qt.AlignVCenter, title)
        bar = QRectF(8, 20, 140, 10)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for i in range(11):
            t = i / 10
            grad.setColorAt(t, grad_colour(10 ** (LOG_LO + t * (LOG_HI - LOG_LO))))
        p.setPen(Qt.NoPen)
        p.setBrush(QBrush(grad))
        p.drawRect(bar)
        p.setPen(QColor("#57606a"))
        p.drawText(QRectF(8, 31, 60, 12), Qt.AlignLeft, "1e-7")
        one = 8 + 140 * (0 - LOG_LO) / (LOG_HI - LOG_LO)  # where 1 sits on the bar
        p.drawText(QRectF(one - 20, 31, 40, 12), Qt.AlignCenter, "1")
        p.drawText(QRectF(88, 31, 60, 12), Qt.AlignRight, "1e3")
        p.drawText(QRectF(154, 18, self.W - 160, 14), Qt.AlignVCenter, "∇ gradient norm")
        p.drawText(QRectF(154, 31, self.W - 160, 12), Qt.AlignVCenter, "Δ update / weight")
        p.drawText(QRectF(8, 43, self.W - 16, 13), Qt.AlignVCenter,
                   "dead / sat: share of dead or saturated units")


class HealthOverlay(QObject):
    """Badges for the nodes of one view's scene, fed with node_stats events."""

    def __init__(self, view, parent: QObject | None = None):
        super().__init__(parent or view)
        self.view = view
        self.enabled = True
        self.stats: dict[str, dict] = {}
        self.warned: set[str] = set()
        self.step: int | None = None
        self.badges: dict[str, HealthBadge] = {}
        self.apply_count = 0
        self._stale = False
        self._legend_for: tuple[int, int] | None = None
        view.viewport().installEventFilter(self)
        self.legend = HealthLegend(view.viewport())
        self.legend.hide()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(1000 / HZ))
        self._timer.timeout.connect(self.apply)

    # ---- input -----------------------------------------------------------------------
    def update_stats(self, step: int | None, stats: dict[str, dict]) -> None:
        """Remember the newest figures; they reach the canvas within 1 / HZ seconds."""
        for nid, rec in stats.items():
            self.stats[nid] = {**self.stats.get(nid, {}), **rec}
        self.step = step
        if self.enabled and not self._timer.isActive():
            self._timer.start()

    def mark_warning(self, node_id: str | None) -> None:
        if node_id:
            self.warned.add(node_id)
            if self.enabled and not self._timer.isActive():
                self._timer.start()

    def clear(self) -> None:
        self.stats.clear()
        self.warned.clear()
        self.step = None
        for badge in self.badges.values():
            if badge.scene() is not None:
                badge.scene().removeItem(badge)
        self.badges.clear()
        self.legend.hide()

    def set_enabled(self, on: bool) -> None:
        self.enabled = bool(on)
        for badge in self.badges.values():
            badge.setVisible(self.enabled)
        if self.enabled:
            self.apply()
        else:
            self.legend.hide()

    def _legend_corner(self) -> tuple[int, int]:
        """The viewport corner whose legend-sized patch covers the fewest nodes (bottom
        right on a tie: graphs start top left)."""
        vp, lw, lh = self.view.viewport(), self.legend.W, self.legend.H
        W, H = vp.width(), vp.height()
        corners = [(max(0, W - lw - 8), max(0, H - lh - 8)), (8, max(0, H - lh - 8)),
                   (max(0, W - lw - 8), 8), (8, 8)]
        items = getattr(self.view.scene(), "node_items", {})

        def covered(x, y):
            from PySide6.QtCore import QRect

            rect = self.view.mapToScene(QRect(x, y, lw, lh)).boundingRect()
            return sum(1 for it in items.values()
                       if it.sceneBoundingRect().intersects(rect))
        return min(corners, key=lambda c: covered(*c))

    def eventFilter(self, obj, event) -> bool:
        """After a zoom-in (the viewport repaints anyway) bring waiting figures in; keep
        the legend in its corner when the canvas is resized."""
        if event.type() in (event.Type.Resize, event.Type.Paint) and self.legend.isVisible():
            size = (obj.width(), obj.height())
            if size != self._legend_for:  # the canvas changed size: back into a corner
                self._legend_for = size
                self.legend.move(*self._legend_corner())
        if self._stale and event.type() == event.Type.Paint and self.enabled \
                and self.view.transform().m11() >= TINY_LOD and not self._timer.isActive():
            self._stale = False
            self._timer.start()
        return False

    # ---- drawing ---------------------------------------------------------------------
    def apply(self) -> None:
        """Put the remembered figures on the canvas (the timer's job)."""
        self.apply_count += 1
        scene = self.view.scene()
        if not self.enabled or scene is None or not self.stats:
            return
        items = getattr(scene, "node_items", {})
        zoom = self.view.transform().m11()
        small = zoom < SMALL_LOD
        if zoom < TINY_LOD and len(self.badges) >= len(self.stats):
            self._stale = True  # nothing readable changes: no repaint of the whole canvas
            return
        for nid, rec in self.stats.items():
            item = items.get(nid)
            if item is None:
                continue
            badge = self.badges.get(nid)
            if badge is None or badge.parentItem() is not item:
                width = item.boundingRect().width() - 24 if hasattr(item, "body_rect") else 160
                badge = HealthBadge(item, max(120.0, width))
                self.badges[nid] = badge
            badge.set_record(rec, nid in self.warned, small)
            badge.setVisible(True)
        where = self._legend_corner()
        self._legend_for = (self.view.viewport().width(), self.view.viewport().height())
        if (self.legend.x(), self.legend.y()) != where:
            self.legend.move(*where)
        self.legend.show()
        if self.legend.step != self.step:
            self.legend.step = self.step
            self.legend.update()
