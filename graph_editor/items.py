"""Graphics items of the canvas: nodes with typed ports, edges with shape labels.

Items only draw what the document and the analysis side tables say; every change to the
graph goes through the scene's ``*_requested`` intents and the undo stack.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
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
BLOCK_LOD = 0.72  # below this zoom a node is a coloured block with a large title
READABLE_PX = 10.0  # the smallest on-screen text height drawn (labels hide below it)
BLOCK_TITLE_PX = 14.0  # on-screen title height aimed at in block mode
CLEARANCE = 12.0  # wires keep this far from node bodies

_TITLE_FONT = QFont()
_TITLE_FONT.setPointSizeF(9.0)
_TITLE_FONT.setBold(True)
_SMALL_FONT = QFont()
_SMALL_FONT.setPointSizeF(7.5)
_LABEL_FONT = QFont()
_LABEL_FONT.setPointSizeF(8.0)
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


def node_size(node: Node, direction: str = "LR") -> tuple[float, float]:
    """Width and height of a node's body: ports on the left and right (LR), or inputs
    on the top edge and outputs on the bottom edge (TB, a compact card)."""
    ins, outs = len(node.input_ports()), len(node.output_ports())
    if direction == "TB":
        return NODE_W, HEAD_H + FOOT_H + ROW_H * ((ins > 1) + (outs > 1))
    return NODE_W, HEAD_H + max(ins, outs, 1) * ROW_H + FOOT_H


def title_font_for(text: str, lod: float, box: QRectF) -> tuple[QFont, list[str]]:
    """The block-mode title: a font whose on-screen height is BLOCK_TITLE_PX at zoom
    ``lod`` when the text fits ``box`` (one line, else two at a word break), smaller
    when it does not. Returns the font and the lines."""
    font = QFont(_TITLE_FONT)
    px = min(BLOCK_TITLE_PX / max(lod, 1e-3), box.height() * 0.8)
    words = text.replace("_", "_\u200b").split("\u200b") if "_" in text else text.split(" ")
    options = [[text]]
    if len(words) > 1:
        best = min(range(1, len(words)), key=lambda i: abs(
            len("".join(words[:i])) - len("".join(words[i:]))))
        sep = "" if "_" in text else " "
        options.append([sep.join(words[:best]).strip(), sep.join(words[best:]).strip()])
    best_lines, best_px = options[0], 0.0
    for lines in options:
        font.setPixelSize(max(1, int(px)))
        fm = QFontMetricsF(font)
        widest = max(fm.horizontalAdvance(t) for t in lines)
        size = px * min(1.0, box.width() / max(widest, 1.0),
                        box.height() / (fm.height() * len(lines)))
        if size > best_px + 0.5:
            best_lines, best_px = lines, size
    font.setPixelSize(max(1, int(best_px)))
    return font, best_lines


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
        if option.levelOfDetailFromTransform(painter.worldTransform()) < BLOCK_LOD \
                and self.state == PortItem.NORMAL:
            return  # far away: ports hidden (the node is a block)
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


class MarkerItem(QGraphicsItem):
    """The error (red) or warning (orange) "!" on a node's corner, with its own tooltip."""

    R = 8.0

    def __init__(self, node_item: "NodeItem"):
        super().__init__(node_item)
        self.text, self.is_error = "", True
        self.setZValue(3)
        self.setAcceptHoverEvents(True)
        self.setVisible(False)

    def set_problem(self, error: str | None, warning: str | None) -> None:
        text = error or warning or ""
        self.is_error = bool(error)
        self.text = text
        self.setVisible(bool(text))
        kind = "Error" if error else "Warning"
        self.setToolTip(f"<b>{kind}:</b> {_esc(text)}" if text else "")
        self.update()

    def boundingRect(self) -> QRectF:
        r = self.R + 1
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        theme = _theme(self)
        c = theme.c("error") if self.is_error else theme.c("warning")
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(Qt.white, 1.5))
        painter.setBrush(c)
        r = self.R if lod >= BLOCK_LOD else min(self.R / max(lod, 0.05) * 0.6, 22.0)
        painter.drawEllipse(QPointF(0, 0), r, r)
        font = QFont(_BADGE_FONT)
        font.setPixelSize(max(1, int(r * 1.4)))
        painter.setFont(font)
        painter.drawText(QRectF(-r, -r, 2 * r, 2 * r), Qt.AlignCenter, "!")


class NodeItem(QGraphicsItem):
    """A node: coloured header with its name and parameter badge, ports, output shape.

    ``direction`` (TB or LR) puts the inputs on the top edge and the outputs on the
    bottom edge, or the inputs on the left and the outputs on the right. Below BLOCK_LOD
    the node is drawn as a coloured block with its name in a large font (level of
    detail, as in ComfyUI and Blender)."""

    def __init__(self, node: Node, direction: str = "LR"):
        super().__init__()
        self.node = node
        self.direction = direction
        self.edges: list[EdgeItem] = []
        self.in_ports: dict[str, PortItem] = {}
        self.out_ports: dict[str, PortItem] = {}
        self.params_count = 0
        self.info_text = ""  # output shape line in the footer
        self.error: str | None = None
        self.warning: str | None = None
        self.hover_info = ""
        self._height = 0.0
        self.marker = MarkerItem(self)
        self.setPos(*node.position)  # before ItemSendsGeometryChanges: no callback
        self.setAcceptHoverEvents(True)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setZValue(1)
        self.rebuild_ports()
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)

    # ---- structure -------------------------------------------------------------------
    def set_direction(self, direction: str) -> None:
        if direction != self.direction:
            self.direction = direction
            self.rebuild_ports()

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
        _, self._height = node_size(self.node, self.direction)
        hidden = getattr(self.scene(), "block_mode", False)  # zoomed out: no ports shown
        for ports, out in ((self.in_ports, False), (self.out_ports, True)):
            n = len(ports)
            for i, port in enumerate(ports.values()):
                if self.direction == "TB":
                    port.setPos(NODE_W * (i + 1) / (n + 1), self._height if out else 0.0)
                else:
                    port.setPos(NODE_W if out else 0.0, HEAD_H + ROW_H * (i + 0.5))
                port.setVisible(not hidden)
        self.marker.setPos(NODE_W - 2, -2)
        self.refresh()

    def port(self, name: str, is_output: bool) -> PortItem | None:
        return (self.out_ports if is_output else self.in_ports).get(name)

    def refresh(self) -> None:
        self.update_tooltip()
        self.marker.set_problem(self.error, self.warning)
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
        tip = f"<b>{_esc(n.display_name)}</b> — {n.spec.title} (<code>{n.id}</code>)"
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

    def body_rect(self) -> QRectF:
        """The node's body in scene coordinates."""
        return QRectF(self.scenePos(), QSizeF(NODE_W, self._height))

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
            if scene is not None and hasattr(scene, "content_changed"):
                scene.content_changed.emit()
            if scene is not None and scene.groups_by_node:
                scene.node_item_moved(self.node.id)
        return value

    def title_screen_px(self, zoom: float) -> float:
        """On-screen height of the title's text at ``zoom`` (what the painter draws)."""
        if zoom >= BLOCK_LOD:
            return QFontMetricsF(_TITLE_FONT).height() * zoom
        font, _ = title_font_for(self.node.display_name, zoom, self._block_box())
        return font.pixelSize() * zoom

    def _block_box(self) -> QRectF:
        return QRectF(5, 3, NODE_W - 10, self._height - 6)

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
        luma = 0.299 * colour.redF() + 0.587 * colour.greenF() + 0.114 * colour.blueF()
        on_colour = Qt.white if luma < 0.6 else QColor("#1f2328")
        if lod < BLOCK_LOD:  # far away: a coloured block with one large name
            painter.setPen(QPen(border, (3.0 if selected or self.error else 1.0) / max(lod, 0.1)
                                if selected or self.error else 1.0))
            painter.setBrush(colour)
            painter.drawRoundedRect(rect, 6, 6)
            if lod > 0.04:
                font, lines = title_font_for(self.node.display_name, lod, self._block_box())
                painter.setFont(font)
                painter.setPen(on_colour)
                painter.drawText(self._block_box(), Qt.AlignCenter, "\n".join(lines))
            return
        painter.setPen(QPen(border, 2.4 if selected or self.error else 1.0))
        painter.setBrush(theme.c("node_body"))
        painter.drawRoundedRect(rect, 6, 6)
        head = QPainterPath()
        head.addRoundedRect(QRectF(0, 0, NODE_W, HEAD_H), 6, 6)
        head.addRect(QRectF(0, HEAD_H - 6, NODE_W, 6))
        painter.fillPath(head.simplified(), colour)
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
        painter.setPen(on_colour)
        title_rect = QRectF(8, 0, NODE_W - badge_w - 18, HEAD_H)
        fm = QFontMetricsF(_TITLE_FONT)
        painter.drawText(title_rect, Qt.AlignVCenter | Qt.AlignLeft,
                         fm.elidedText(self.node.display_name, Qt.ElideRight, title_rect.width()))
        # port names
        painter.setFont(_SMALL_FONT)
        painter.setPen(theme.c("text"))
        sfm = QFontMetricsF(_SMALL_FONT)
        if self.direction == "TB":
            rows = []
            if len(self.in_ports) > 1:
                rows.append((HEAD_H, self.in_ports))
            if len(self.out_ports) > 1:
                rows.append((self._height - FOOT_H - ROW_H, self.out_ports))
            for y, ports in rows:
                slot = NODE_W / (len(ports) + 1)
                for p in ports.values():
                    x = p.pos().x()
                    r = QRectF(x - slot / 2 - 4, y, slot + 8, ROW_H)
                    painter.drawText(r, Qt.AlignCenter,
                                     sfm.elidedText(p.name, Qt.ElideRight, r.width()))
        else:
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
        shape_w = 0.0
        if self.info_text:  # the output shape matters most: it gets the room it needs
            painter.setPen(theme.c("text"))
            shape_text = sfm.elidedText(self.info_text, Qt.ElideLeft, foot.width())
            shape_w = sfm.horizontalAdvance(shape_text) + 6
            painter.drawText(foot, Qt.AlignVCenter | Qt.AlignRight, shape_text)
        room = foot.width() - shape_w
        if room > 24:
            painter.setPen(theme.c("subtext"))
            painter.drawText(foot, Qt.AlignVCenter | Qt.AlignLeft,
                             sfm.elidedText(self.node.type, Qt.ElideRight, room))


class EdgeItem(QGraphicsPathItem):
    """A wire from an output port to an input port, labelled with the tensor shape.

    The wire is routed with clearance around the node bodies between its ends: straight
    (a smooth S) when nothing is in the way, else through a free lane beside the nodes;
    a recurrent (Delay) wire that runs against the flow goes around the nodes it spans."""

    def __init__(self, edge: Edge, src: NodeItem, dst: NodeItem, delay: bool = False):
        super().__init__()
        self.edge, self.src, self.dst, self.delay = edge, src, dst, delay
        self.label = ""
        self.setZValue(-1)  # below nodes: edges never steal clicks from nodes or ports
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self._label_item: EdgeLabelItem | None = None
        self.label_wanted = True  # the scene hides repeated labels of a fan-out
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
        scene = self.src.scene()
        obstacles = None
        if scene is not None and hasattr(scene, "node_bodies"):
            def obstacles(rect, ends=False):
                return scene.node_bodies(rect, () if ends else (self.src, self.dst))
        self.setPath(route_wire(a, b, self.src.direction, obstacles))
        self._place_label()

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self.setToolTip(f"{self.edge}<br>shape {text}" if text else str(self.edge))
            self._place_label()

    def label_item(self) -> "EdgeLabelItem | None":
        return self._label_item

    def _place_label(self, taken=None) -> None:
        """Put the shape label on the wire where it covers no node, port (and none of
        the ``taken`` label rectangles): the middle first, then further out."""
        if not self.label or not self.label_wanted:
            if self._label_item is not None:
                self._label_item.placed = False
                self._label_item.setVisible(False)
            return
        if self._label_item is None:
            self._label_item = EdgeLabelItem(self)
        item = self._label_item
        item.set_text(self.label)
        scene = self.src.scene()
        path = self.path()
        for t in (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.18, 0.82):
            p = path.pointAtPercent(t)
            rect = item.boundingRect().translated(p)
            free = scene is None or not hasattr(scene, "node_bodies") or not scene.node_bodies(
                rect.adjusted(-PORT_R - 3, -PORT_R - 3, PORT_R + 3, PORT_R + 3), ())
            if free and taken is not None:
                free = not any(rect.intersects(r) for r in taken)
            if free:
                item.setPos(p)
                item.placed = True
                item.setVisible(getattr(scene, "labels_on", True))
                if taken is not None:
                    taken.append(rect.adjusted(-2, -2, 2, 2))
                return
        item.placed = False
        item.setVisible(False)

    def show_label(self, on: bool) -> None:
        """Show the placed label (or hide it: too small to read at this zoom)."""
        if self._label_item is not None:
            self._label_item.setVisible(on and self._label_item.placed)

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
        if self.delay:
            colour = theme.c("recurrent") if not selected else colour
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        width = 2.6 if selected else 1.6
        if lod < BLOCK_LOD:  # keep wires visible when zoomed out
            width = min(width / max(lod, 0.1), 8.0) * 0.7
        pen = QPen(colour, width)
        if self.delay:
            pen.setStyle(Qt.DashLine)
        painter.setRenderHint(QPainter.Antialiasing, lod > 0.3)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path())


class EdgeLabelItem(QGraphicsItem):
    """The tensor shape on a wire: a small cached child item (text is the costly part),
    on a background, hidden when it would be smaller than readable."""

    def __init__(self, edge_item: EdgeItem):
        super().__init__(edge_item)
        self.text = ""
        self.placed = False
        self._rect = QRectF()
        self.setZValue(2)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setAcceptedMouseButtons(Qt.NoButton)

    def set_text(self, text: str) -> None:
        if text == self.text:
            return
        self.prepareGeometryChange()
        self.text = text
        fm = QFontMetricsF(_LABEL_FONT)
        w, h = fm.horizontalAdvance(text) + 10, fm.height() + 2
        self._rect = QRectF(-w / 2, -h / 2, w, h)
        self.update()

    @staticmethod
    def readable_at(zoom: float) -> bool:
        return QFontMetricsF(_LABEL_FONT).height() * zoom >= READABLE_PX

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if not self.text or not self.readable_at(lod):
            return
        theme = _theme(self)
        bg = theme.c("background")
        bg.setAlpha(240)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(theme.c("edge"), 0.8))
        painter.setBrush(bg)
        painter.drawRoundedRect(self._rect, 4, 4)
        painter.setPen(theme.c("edge_label"))
        painter.setFont(_LABEL_FONT)
        painter.drawText(self._rect, Qt.AlignCenter, self.text)


def wire_path(a: QPointF, b: QPointF, direction: str = "LR") -> QPainterPath:
    """A smooth S from ``a`` (an output) to ``b`` (an input)."""
    path = QPainterPath(a)
    if direction == "TB":
        dy = max(abs(b.y() - a.y()) * 0.5, 40.0)
        path.cubicTo(QPointF(a.x(), a.y() + dy), QPointF(b.x(), b.y() - dy), b)
    else:
        dx = max(abs(b.x() - a.x()) * 0.5, 40.0)
        path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


def route_wire(a: QPointF, b: QPointF, direction: str, obstacles=None) -> QPainterPath:
    """The wire from ``a`` to ``b``, around the node bodies ``obstacles(rect)`` returns.

    Works in flow coordinates (u along the flow, v across it) so one routine serves top
    to bottom and left to right."""
    if obstacles is None:
        return wire_path(a, b, direction)
    tb = direction == "TB"

    def uv(p: QPointF) -> tuple[float, float]:
        return (p.y(), p.x()) if tb else (p.x(), p.y())

    def pt(u: float, v: float) -> QPointF:
        return QPointF(v, u) if tb else QPointF(u, v)

    def rect(u0, u1, v0, v1) -> QRectF:
        u0, u1 = min(u0, u1), max(u0, u1)
        v0, v1 = min(v0, v1), max(v0, v1)
        v0, v1 = v0 - CLEARANCE, v1 + CLEARANCE
        return QRectF(v0, u0, v1 - v0, u1 - u0) if tb else QRectF(u0, v0, u1 - u0, v1 - v0)

    def span(r: QRectF) -> tuple[float, float]:  # a body's extent across the flow
        return (r.left(), r.right()) if tb else (r.top(), r.bottom())

    au, av = uv(a)
    bu, bv = uv(b)
    stub = 18.0
    forward = bu - au > 2 * stub
    if forward:
        blockers = obstacles(rect(au + stub, bu - stub, av, bv))
        if not blockers:
            return wire_path(a, b, direction)
        u0, u1 = au + stub, bu - stub
    else:
        u0, u1 = bu - stub, au + stub
        blockers = obstacles(rect(u0, u1, av, bv))
    # a lane across the flow that no body between u0 and u1 touches (against the flow,
    # the wire's own two nodes are in the way too)
    near = obstacles(rect(u0, u1, min(av, bv) - 2000, max(av, bv) + 2000), not forward)
    cands = {av, bv}
    for r in near:
        lo, hi = span(r)
        cands.add(lo - CLEARANCE - 6)
        cands.add(hi + CLEARANCE + 6)
    bodies = [span(r) for r in near]

    def free(v: float) -> bool:
        return all(not (lo - CLEARANCE < v < hi + CLEARANCE) for lo, hi in bodies)
    lanes = [v for v in cands if free(v)]
    if not lanes:
        return wire_path(a, b, direction)
    lane = min(lanes, key=lambda v: abs(v - av) + abs(v - bv))
    if forward:
        pts = [(au, av), (u0, av), (u0, lane), (u1, lane), (u1, bv), (bu, bv)]
        pts = [pt(u, v) for u, v in pts]
    else:  # against the flow: out, around, back in
        pts = [pt(au, av), pt(u1, av), pt(u1, lane), pt(u0, lane), pt(u0, bv), pt(bu, bv)]
    return _rounded(pts, 14.0)


def _rounded(pts: list[QPointF], radius: float) -> QPainterPath:
    """A polyline with its corners rounded (drops repeated points)."""
    clean = [pts[0]]
    for p in pts[1:]:
        if (p - clean[-1]).manhattanLength() > 0.5:
            clean.append(p)
    path = QPainterPath(clean[0])
    for i in range(1, len(clean) - 1):
        p0, p1, p2 = clean[i - 1], clean[i], clean[i + 1]
        d1 = p1 - p0
        d2 = p2 - p1
        l1 = (d1.x() ** 2 + d1.y() ** 2) ** 0.5
        l2 = (d2.x() ** 2 + d2.y() ** 2) ** 0.5
        r = min(radius, l1 / 2, l2 / 2)
        path.lineTo(p1 - d1 * (r / l1))
        path.quadTo(p1, p1 + d2 * (r / l2))
    path.lineTo(clean[-1])
    return path


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
