"""Graphics items of the canvas: nodes with typed ports, edges with shape labels.

Items only draw what the document and the analysis side tables say; every change to the
graph goes through the scene's ``*_requested`` intents and the undo stack.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath,
                           QPainterPathStroker, QPen)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyle

from runtime.graph import Edge, Node

from .theme import LIGHT, Theme, category_colour

NODE_W = 150.0
HEAD_H = 26.0
ROW_H = 18.0
FOOT_H = 20.0
PORT_R = 5.5

_TITLE_FONT = QFont()
_TITLE_FONT.setPointSizeF(9.0)
_TITLE_FONT.setBold(True)
_SMALL_FONT = QFont()
_SMALL_FONT.setPointSizeF(7.5)
_BADGE_FONT = QFont()
_BADGE_FONT.setPointSizeF(7.0)
_BADGE_FONT.setBold(True)


def fmt_count(n: int) -> str:
    """61706 -> '61.7k', 2_500_000 -> '2.5M'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return str(n)


def fmt_shape(shape) -> str:
    if shape is None:
        return "?"
    return "×".join(map(str, shape)) if shape else "scalar"


def _theme(item: QGraphicsItem) -> Theme:
    scene = item.scene()
    return getattr(scene, "theme", LIGHT) if scene is not None else LIGHT


class PortItem(QGraphicsItem):
    """One typed port of a node: a circle on the left (inputs) or right (outputs) edge."""

    NORMAL, COMPATIBLE, INCOMPATIBLE = 0, 1, 2

    def __init__(self, node_item: "NodeItem", port, is_output: bool, index: int):
        super().__init__(node_item)
        self.node_item, self.port, self.is_output, self.index = node_item, port, is_output, index
        self.state = PortItem.NORMAL
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CrossCursor)
        y = HEAD_H + ROW_H * (index + 0.5)
        self.setPos(NODE_W if is_output else 0.0, y)
        self.setZValue(2)
        self._hover = False
        self.update_tooltip()

    @property
    def node_id(self) -> str:
        return self.node_item.node.id

    @property
    def name(self) -> str:
        return self.port.name

    def update_tooltip(self, shape=None) -> None:
        side = "output" if self.is_output else "input"
        tip = f"<b>{self.port.name}</b> ({side}, {self.port.kind})"
        if self.port.doc:
            tip += f"<br>{self.port.doc}"
        if self.port.optional:
            tip += "<br><i>optional</i>"
        if shape is not None:
            tip += f"<br>shape {fmt_shape(shape)}"
        self.setToolTip(tip)

    def set_state(self, state: int) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def scene_anchor(self) -> QPointF:
        return self.scenePos()

    def boundingRect(self) -> QRectF:
        r = PORT_R + 4
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(self.boundingRect())
        return path

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()

    def paint(self, painter: QPainter, option, widget=None) -> None:
        theme = _theme(self)
        r = PORT_R + (2 if self._hover or self.state == PortItem.COMPATIBLE else 0)
        fill = theme.c("node_body")
        border = theme.c("edge")
        if self.port.kind == "index":
            fill = QColor("#f2c14e")
        if self.state == PortItem.COMPATIBLE:
            fill, border = theme.c("compatible"), theme.c("compatible").darker(130)
        elif self.state == PortItem.INCOMPATIBLE:
            fill.setAlpha(60)
            border.setAlpha(60)
        painter.setPen(QPen(border, 1.6))
        painter.setBrush(fill)
        painter.drawEllipse(QPointF(0, 0), r, r)


class NodeItem(QGraphicsItem):
    """A node: coloured header with its name and parameter badge, ports, output shape."""

    def __init__(self, node: Node):
        super().__init__()
        self.node = node
        self.edges: list[EdgeItem] = []
        self.in_ports: dict[str, PortItem] = {}
        self.out_ports: dict[str, PortItem] = {}
        self.params_count = 0
        self.info_text = ""  # output shape line in the footer
        self.error: str | None = None
        self.warning: str | None = None
        self.hover_info = ""
        self._height = 0.0
        self.setPos(*node.position)  # before ItemSendsGeometryChanges: no callback
        self.setAcceptHoverEvents(True)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setZValue(1)
        self.rebuild_ports()
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)

    # ---- structure -------------------------------------------------------------------
    def rebuild_ports(self) -> None:
        """(Re)create port items: parameters may change a node's ports (Concat inputs...)."""
        self.prepareGeometryChange()
        for p in list(self.in_ports.values()) + list(self.out_ports.values()):
            p.setParentItem(None)
            if p.scene() is not None:
                p.scene().removeItem(p)
        ins, outs = self.node.input_ports(), self.node.output_ports()
        self.in_ports = {p.name: PortItem(self, p, False, i) for i, p in enumerate(ins)}
        self.out_ports = {p.name: PortItem(self, p, True, i) for i, p in enumerate(outs)}
        rows = max(len(ins), len(outs), 1)
        self._height = HEAD_H + rows * ROW_H + FOOT_H
        self.refresh()

    def port(self, name: str, is_output: bool) -> PortItem | None:
        return (self.out_ports if is_output else self.in_ports).get(name)

    def refresh(self) -> None:
        self.update_tooltip()
        self.update()

    def set_analysis(self, info, error: str | None, warning: str | None) -> None:
        params = info.params if info is not None else 0
        text = ""
        hover = ""
        if info is not None and info.output_shapes and info.error is None:
            text = "→ " + ", ".join(fmt_shape(s) for s in info.output_shapes.values())
            parts = [f"output {text[2:]}"]
            if info.params:
                parts.append(f"{info.params:,} parameters")
            if info.macs:
                parts.append(f"{info.macs:,} MACs")
            if info.receptive_field:
                parts.append("receptive field " + "×".join(map(str, info.receptive_field)))
            hover = "<br>".join(parts)
        changed = (params, text, error, warning, hover) != (
            self.params_count, self.info_text, self.error, self.warning, self.hover_info)
        if changed:
            self.params_count, self.info_text, self.hover_info = params, text, hover
            self.error, self.warning = error, warning
            self.refresh()

    def update_tooltip(self) -> None:
        n = self.node
        tip = f"<b>{n.display_name}</b> — {n.spec.title} (<code>{n.id}</code>)"
        if self.hover_info:
            tip += "<br>" + self.hover_info
        if self.error:
            tip += f"<br><span style='color:#d62728'><b>Error:</b> {_esc(self.error)}</span>"
        elif self.warning:
            tip += f"<br><span style='color:#b26b00'><b>Warning:</b> {_esc(self.warning)}</span>"
        self.setToolTip(tip)

    # ---- geometry -------------------------------------------------------------------
    def height(self) -> float:
        return self._height

    def boundingRect(self) -> QRectF:
        return QRectF(-12, -12, NODE_W + 24, self._height + 24)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_W, self._height), 6, 6)
        return path

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionChange:
            scene = self.scene()
            grid = getattr(scene, "snap_grid", 0) if scene is not None else 0
            if grid and getattr(scene, "dragging", False):
                return QPointF(round(value.x() / grid) * grid, round(value.y() / grid) * grid)
        elif change == QGraphicsItem.ItemPositionHasChanged:
            for e in self.edges:
                e.update_path()
            scene = self.scene()
            if scene is not None and scene.groups_by_node:
                scene.node_item_moved(self.node.id)
        return value

    # ---- drawing --------------------------------------------------------------------
    def paint(self, painter: QPainter, option, widget=None) -> None:
        theme = _theme(self)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        rect = QRectF(0, 0, NODE_W, self._height)
        colour = category_colour(self.node.spec.category)
        selected = bool(option.state & QStyle.State_Selected)
        painter.setRenderHint(QPainter.Antialiasing, lod > 0.3)
        border = theme.c("selection") if selected else theme.c("node_border")
        if self.error:
            border = theme.c("error") if not selected else border
        painter.setPen(QPen(border, 2.4 if selected or self.error else 1.0))
        painter.setBrush(theme.c("node_body"))
        painter.drawRoundedRect(rect, 6, 6)
        head = QPainterPath()
        head.addRoundedRect(QRectF(0, 0, NODE_W, HEAD_H), 6, 6)
        head.addRect(QRectF(0, HEAD_H - 6, NODE_W, 6))
        painter.fillPath(head.simplified(), colour)
        if lod < 0.35:  # far away: one big name per node (semantic zoom) instead of details
            if lod > 0.08:
                font = QFont(_TITLE_FONT)
                font.setPointSizeF(min(40.0, 7.5 / lod))
                painter.setFont(font)
                painter.setPen(theme.c("text"))
                body = QRectF(4, HEAD_H, NODE_W - 8, self._height - HEAD_H)
                text = QFontMetricsF(font).elidedText(self.node.display_name, Qt.ElideRight,
                                                      body.width())
                painter.drawText(body, Qt.AlignCenter, text)
            return
        # header: name and parameter badge
        badge_w = 0.0
        if self.params_count:
            badge = fmt_count(self.params_count)
            fm = QFontMetricsF(_BADGE_FONT)
            badge_w = fm.horizontalAdvance(badge) + 10
            br = QRectF(NODE_W - badge_w - 6, 6, badge_w, HEAD_H - 12)
            painter.setPen(Qt.NoPen)
            painter.setBrush(QColor(0, 0, 0, 90))
            painter.drawRoundedRect(br, 6, 6)
            painter.setPen(Qt.white)
            painter.setFont(_BADGE_FONT)
            painter.drawText(br, Qt.AlignCenter, badge)
        painter.setFont(_TITLE_FONT)
        luma = 0.299 * colour.redF() + 0.587 * colour.greenF() + 0.114 * colour.blueF()
        painter.setPen(Qt.white if luma < 0.6 else QColor("#1f2328"))
        title_rect = QRectF(8, 0, NODE_W - badge_w - 18, HEAD_H)
        fm = QFontMetricsF(_TITLE_FONT)
        painter.drawText(title_rect, Qt.AlignVCenter | Qt.AlignLeft,
                         fm.elidedText(self.node.display_name, Qt.ElideRight, title_rect.width()))
        # port names
        painter.setFont(_SMALL_FONT)
        painter.setPen(theme.c("text"))
        half = NODE_W / 2 - 12
        for i, p in enumerate(self.in_ports.values()):
            painter.drawText(QRectF(10, HEAD_H + i * ROW_H, half, ROW_H),
                             Qt.AlignVCenter | Qt.AlignLeft, p.name)
        for i, p in enumerate(self.out_ports.values()):
            painter.drawText(QRectF(NODE_W / 2 + 2, HEAD_H + i * ROW_H, half, ROW_H),
                             Qt.AlignVCenter | Qt.AlignRight, p.name)
        # footer: type and output shape
        painter.setPen(theme.c("subtext"))
        foot = QRectF(8, self._height - FOOT_H, NODE_W - 16, FOOT_H - 2)
        fm = QFontMetricsF(_SMALL_FONT)
        shape_w = 0.0
        if self.info_text:  # the output shape matters most: it gets the room it needs
            painter.setPen(theme.c("text"))
            shape_text = fm.elidedText(self.info_text, Qt.ElideLeft, foot.width())
            shape_w = fm.horizontalAdvance(shape_text) + 6
            painter.drawText(foot, Qt.AlignVCenter | Qt.AlignRight, shape_text)
        room = foot.width() - shape_w
        if room > 24:
            painter.setPen(theme.c("subtext"))
            painter.drawText(foot, Qt.AlignVCenter | Qt.AlignLeft,
                             fm.elidedText(self.node.type, Qt.ElideRight, room))
        if self.error or self.warning:
            c = theme.c("error") if self.error else theme.c("warning")
            centre = QPointF(NODE_W - 2, -2)
            painter.setPen(QPen(Qt.white, 1.5))
            painter.setBrush(c)
            painter.drawEllipse(centre, 8, 8)
            painter.setFont(_BADGE_FONT)
            painter.drawText(QRectF(centre.x() - 8, centre.y() - 8, 16, 16), Qt.AlignCenter, "!")


class EdgeItem(QGraphicsPathItem):
    """A wire from an output port to an input port, labelled with the tensor shape."""

    def __init__(self, edge: Edge, src: NodeItem, dst: NodeItem, delay: bool = False):
        super().__init__()
        self.edge, self.src, self.dst, self.delay = edge, src, dst, delay
        self.label = ""
        self.setZValue(-1)  # below nodes: edges never steal clicks from nodes or ports
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self._label_item: EdgeLabelItem | None = None
        src.edges.append(self)
        dst.edges.append(self)
        self.update_path()

    def detach(self) -> None:
        for n in (self.src, self.dst):
            if self in n.edges:
                n.edges.remove(self)

    def endpoints(self) -> tuple[QPointF, QPointF]:
        sp = self.src.port(self.edge.source_port, True)
        dp = self.dst.port(self.edge.target_port, False)
        a = sp.scenePos() if sp else self.src.scenePos() + QPointF(NODE_W, HEAD_H / 2)
        b = dp.scenePos() if dp else self.dst.scenePos() + QPointF(0, HEAD_H / 2)
        return a, b

    def update_path(self) -> None:
        a, b = self.endpoints()
        self.setPath(wire_path(a, b))
        self._place_label()

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self.setToolTip(f"{self.edge}<br>shape {text}" if text else str(self.edge))
            self._place_label()

    def _place_label(self) -> None:
        if not self.label:
            if self._label_item is not None:
                self._label_item.setVisible(False)
            return
        if self._label_item is None:
            self._label_item = EdgeLabelItem(self)
        self._label_item.set_text(self.label)
        self._label_item.setPos(self.path().pointAtPercent(0.5))
        self._label_item.setVisible(True)

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-4, -4, 4, 4)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        return stroker.createStroke(self.path())

    def paint(self, painter: QPainter, option, widget=None) -> None:
        theme = _theme(self)
        selected = bool(option.state & QStyle.State_Selected)
        colour = theme.c("selection") if selected else theme.c("edge")
        pen = QPen(colour, 2.6 if selected else 1.6)
        if self.delay:
            pen.setStyle(Qt.DashLine)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path())


class EdgeLabelItem(QGraphicsItem):
    """The tensor shape on a wire: a small cached child item (text is the costly part)."""

    def __init__(self, edge_item: EdgeItem):
        super().__init__(edge_item)
        self.text = ""
        self._rect = QRectF()
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setAcceptedMouseButtons(Qt.NoButton)

    def set_text(self, text: str) -> None:
        if text == self.text:
            return
        self.prepareGeometryChange()
        self.text = text
        fm = QFontMetricsF(_SMALL_FONT)
        w, h = fm.horizontalAdvance(text) + 8, fm.height() + 2
        self._rect = QRectF(-w / 2, -h / 2, w, h)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if not self.text or lod <= 0.45:
            return
        theme = _theme(self)
        bg = theme.c("background")
        bg.setAlpha(235)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(theme.c("edge"), 0.8))
        painter.setBrush(bg)
        painter.drawRoundedRect(self._rect, 4, 4)
        painter.setPen(theme.c("edge_label"))
        painter.setFont(_SMALL_FONT)
        painter.drawText(self._rect, Qt.AlignCenter, self.text)


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    dx = max(abs(b.x() - a.x()) * 0.5, 40.0)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
