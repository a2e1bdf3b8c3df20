"""The canvas scene: mirrors a GraphDocument with items and turns gestures into intents.

The scene subscribes to the document's events (node_added, edge_removed, ...) and keeps
one item per node and edge. Gestures become ``*_requested`` signals that the editor turns
into undo commands; the scene itself never mutates the document.
"""
from __future__ import annotations

import networkx as nx
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QToolTip

from runtime.catalog import kinds_compatible
from runtime.graph import Edge, GraphDocument
from runtime.topology import feedforward_graph, is_delay

from .groups import GroupItem, groups_of
from .items import EdgeItem, NodeItem, PortItem, wire_path
from .theme import LIGHT, Theme

GRID = 20.0
WIRE_END_GRAB = 24.0  # scene units around a wire's end where pressing picks that end up


def connection_problem(doc: GraphDocument, src: str, src_port: str, dst: str, dst_port: str,
                       ancestors: set[str] | None = None) -> str | None:
    """Why an edge src.src_port -> dst.dst_port is refused, or None when it is fine."""
    s, d = doc.node(src), doc.node(dst)
    if src == dst and not is_delay(s):
        return f"{s.display_name} cannot feed itself (a loop needs a Delay node)"
    out = {p.name: p for p in s.output_ports()}.get(src_port)
    inp = {p.name: p for p in d.input_ports()}.get(dst_port)
    if out is None or inp is None:
        return "no such port"
    if not kinds_compatible(out.kind, inp.kind):
        return (f"input '{dst_port}' of {d.display_name} takes {inp.kind} values but "
                f"{s.display_name}.{src_port} gives {out.kind} values")
    if not is_delay(s):
        if ancestors is None:
            g = feedforward_graph(doc)
            ancestors = nx.ancestors(g, src) | {src}
        if dst in ancestors:
            return (f"connecting {s.display_name} to {d.display_name} would make a cycle; "
                    "a recurrent connection must pass through a Delay node")
    return None


class GraphScene(QGraphicsScene):
    connect_requested = Signal(object)  # Edge
    reconnect_requested = Signal(object, object)  # old Edge, new Edge (or None: drop)
    move_requested = Signal(dict)  # node id -> (old pos, new pos)
    refused = Signal(str)  # a gesture the scene refused, with the reason
    content_changed = Signal()  # what the scene shows changed (cached pictures are stale)

    def __init__(self, doc: GraphDocument, theme: Theme = LIGHT, parent=None,
                 read_only: bool = False):
        super().__init__(parent)
        self.doc = doc
        self.read_only = read_only  # a view of a derived graph (the unrolled one)
        self.theme = theme
        self.snap_grid = 0.0
        self.show_grid = True  # off for exported pictures
        self.block_mode = False  # zoomed out: see sync_lod
        self.labels_on = True
        self.backdrops: list = []  # callables (painter, rect) drawn over the background
        self.extra_rect = None  # the backdrops' extent (part of the content to fit)
        self.dragging = False
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        self.node_items: dict[str, NodeItem] = {}
        self.edge_items: dict[Edge, EdgeItem] = {}
        self._wire: QGraphicsPathItem | None = None
        self._wire_from: PortItem | None = None
        self._wire_edge: Edge | None = None  # edge being re-plugged
        self._press_positions: dict[str, QPointF] = {}
        self._subscriptions = [
            (doc.node_added, self._on_node_added), (doc.node_removed, self._on_node_removed),
            (doc.edge_added, self._on_edge_added), (doc.edge_removed, self._on_edge_removed),
            (doc.param_changed, self._on_param_changed),
            (doc.label_changed, self._on_label_changed), (doc.node_moved, self._on_node_moved),
            (doc.metadata_changed, self._on_metadata_changed),
        ]
        self.group_items: list[GroupItem] = []
        self.groups_by_node: dict[str, list[GroupItem]] = {}
        from .layout import document_direction

        self.direction = document_direction(doc)  # TB (ports top/bottom) or LR
        self._labels_timer = None
        self._building = True
        self._subscriptions += [(event, self._doc_event) for event in (
            doc.node_added, doc.node_removed, doc.edge_added, doc.edge_removed,
            doc.param_changed, doc.label_changed, doc.node_moved, doc.metadata_changed)]
        self.selectionChanged.connect(self.mark_changed)
        for event, cb in self._subscriptions:
            event.connect(cb)
        for node in doc:
            self._on_node_added(node)
        for e in doc.edges:
            self._on_edge_added(e)
        self._rebuild_groups()
        self._building = False
        self.place_labels()
        self.update_scene_rect()

    def _doc_event(self, *_args) -> None:
        self.content_changed.emit()

    def mark_changed(self, *_args) -> None:
        self.content_changed.emit()

    def detach(self) -> None:
        """Stop following the document (before the scene is dropped)."""
        for event, cb in self._subscriptions:
            event.disconnect(cb)

    # ---- document events -> items -----------------------------------------------------
    def _on_node_added(self, node) -> None:
        item = NodeItem(node, self.direction)
        if self.read_only:
            item.setFlag(QGraphicsItem.ItemIsMovable, False)
        self.node_items[node.id] = item
        self.addItem(item)
        self.ensure_room(item)

        if node.id in self.groups_by_node:
            self._rebuild_groups()

    def _on_node_removed(self, node) -> None:
        item = self.node_items.pop(node.id, None)
        if item is not None:
            self.removeItem(item)
        if node.id in self.groups_by_node:
            self._rebuild_groups()

    def _on_metadata_changed(self, old, new) -> None:
        if groups_of(old) != groups_of(new):
            self._rebuild_groups()
        from .layout import DIRECTION_KEY, document_direction

        if old.get(DIRECTION_KEY) != new.get(DIRECTION_KEY):
            self.set_direction(document_direction(self.doc))

    def set_direction(self, direction: str) -> None:
        """Ports on the top and bottom edges (TB) or on the sides (LR)."""
        if direction == self.direction:
            return
        self.direction = direction
        for item in self.node_items.values():
            item.set_direction(direction)
        self.reroute()

    def reroute(self) -> None:
        for item in self.edge_items.values():
            item.update_path()
        self.place_labels()

    def sync_lod(self, zoom: float) -> None:
        """Level of detail for the whole scene when the zoom crosses a threshold: far
        away, ports and unreadable shape labels are hidden (not just left unpainted) and
        wires are cached as pixmaps, so panning a 2,000-node graph in full view blits
        pixmaps instead of calling thousands of paint()s."""
        from .items import BLOCK_LOD, EdgeLabelItem

        block = zoom < BLOCK_LOD
        labels = EdgeLabelItem.readable_at(zoom)
        if block != self.block_mode:
            self.block_mode = block
            cache = QGraphicsItem.DeviceCoordinateCache if block else QGraphicsItem.NoCache
            for item in self.node_items.values():
                for port in list(item.in_ports.values()) + list(item.out_ports.values()):
                    port.setVisible(not block)
            for edge in self.edge_items.values():
                edge.setCacheMode(cache)
        if labels != self.labels_on:
            self.labels_on = labels
            for edge in self.edge_items.values():
                edge.show_label(labels)

    def node_bodies(self, rect: QRectF, exclude=()) -> list[QRectF]:
        """Scene rectangles of the node bodies that ``rect`` touches (wire routing)."""
        out = []
        for item in self.items(rect, Qt.IntersectsItemBoundingRect):
            if isinstance(item, NodeItem) and item not in exclude and item.isVisible():
                body = item.body_rect()
                if body.intersects(rect):
                    out.append(body)
        return out

    def place_labels(self) -> None:
        """Place every wire's shape label where it covers no node, port or other label;
        a fan-out (one output feeding several inputs) shows its shape once."""
        taken: list[QRectF] = []
        shown: set = set()
        for edge, item in self.edge_items.items():
            key = (edge.source, edge.source_port)
            item.label_wanted = key not in shown
            if item.label:
                shown.add(key)
            item._place_label(taken)

    def schedule_labels(self) -> None:
        """place_labels once the current burst of changes is over."""
        if self._labels_timer is None:
            from PySide6.QtCore import QTimer

            self._labels_timer = QTimer(self)
            self._labels_timer.setSingleShot(True)
            self._labels_timer.setInterval(0)
            self._labels_timer.timeout.connect(self.place_labels)
        self._labels_timer.start()

    def _rebuild_groups(self) -> None:
        for g in self.group_items:
            self.removeItem(g)
        self.group_items, self.groups_by_node = [], {}
        for group in groups_of(self.doc.metadata):
            item = GroupItem(group, self)
            self.addItem(item)
            self.group_items.append(item)
            for n in group["nodes"]:
                self.groups_by_node.setdefault(n, []).append(item)

    def node_item_moved(self, node_id: str) -> None:
        for g in self.groups_by_node.get(node_id, ()):
            g.update_bounds()

    def _on_edge_added(self, edge: Edge) -> None:
        src, dst = self.node_items.get(edge.source), self.node_items.get(edge.target)
        if src is None or dst is None:
            return
        item = EdgeItem(edge, src, dst, delay=is_delay(src.node))
        self.edge_items[edge] = item
        self.addItem(item)
        if not self._building:
            self.schedule_labels()

    def _on_edge_removed(self, edge: Edge) -> None:
        item = self.edge_items.pop(edge, None)
        if item is not None:
            item.detach()
            self.removeItem(item)

    def _on_param_changed(self, node_id, name, old, new) -> None:
        item = self.node_items.get(node_id)
        if item is None:
            return
        item.rebuild_ports()
        for e in item.edges:
            e.update_path()

    def _on_label_changed(self, node_id, old, new) -> None:
        item = self.node_items.get(node_id)
        if item is not None:
            item.refresh()

    def _on_node_moved(self, node_id, old, new) -> None:
        item = self.node_items.get(node_id)
        if item is not None and (item.pos().x(), item.pos().y()) != tuple(new):
            item.setPos(*new)
            self.ensure_room(item)
            self.schedule_labels()

    # ---- analysis -> items -------------------------------------------------------------
    def apply_analysis(self, analysis, diagnostics) -> None:
        errors: dict[str, str] = {}
        warnings: dict[str, str] = {}
        for d in diagnostics:
            if d.node_id is None:
                continue
            target = errors if d.is_error else warnings
            target.setdefault(d.node_id, d.message)
        infos = analysis.nodes if analysis is not None else {}
        for nid, item in self.node_items.items():
            item.set_analysis(infos.get(nid), errors.get(nid), warnings.get(nid))
        for edge, item in self.edge_items.items():
            shape = analysis.edge_shape(edge) if analysis is not None else None
            item.set_label(_fmt(shape))
            port = item.dst.port(edge.target_port, False)
            if port is not None:
                port.update_tooltip(shape)
        self.place_labels()
        self.content_changed.emit()

    # ---- geometry helpers ------------------------------------------------------------
    def update_scene_rect(self) -> None:
        rect = self.itemsBoundingRect().adjusted(-2000, -2000, 2000, 2000)
        self.setSceneRect(rect.united(QRectF(-2000, -1500, 4000, 3000)))

    def ensure_room(self, item) -> None:
        """Grow the scene rect around ``item`` so the view can scroll to it, with room
        to spare around it for new layers (the rect never shrinks while editing)."""
        rect = item.sceneBoundingRect()
        if not self.sceneRect().contains(rect.adjusted(-400, -400, 400, 400)):
            self.setSceneRect(self.sceneRect().united(rect.adjusted(-2000, -2000, 2000, 2000)))

    def selected_node_ids(self) -> list[str]:
        return [i.node.id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, ids) -> None:
        ids = set(ids)
        self.blockSignals(True)
        self.clearSelection()
        for nid in ids:
            item = self.node_items.get(nid)
            if item is not None:
                item.setSelected(True)
        self.blockSignals(False)
        self.selectionChanged.emit()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        for item in self.node_items.values():
            item.update()
        for edge in self.edge_items.values():
            for child in edge.childItems():
                child.update()  # cached shape labels: repaint in the new colours
        for group in self.group_items:
            group.update()
        self.update()
        self.content_changed.emit()
        for view in self.views():
            view.resetCachedContent()  # the cached grid background

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, self.theme.c("background"))
        for draw in self.backdrops:  # drawn under every item (the unrolled view's bands)
            draw(painter, rect)
        if not self.show_grid:
            return
        scale = painter.worldTransform().m11()
        step = GRID if scale > 0.6 else GRID * 5
        if scale < 0.15:
            return
        painter.setPen(QPen(self.theme.c("grid"), 0))
        left = int(rect.left() // step) * step
        top = int(rect.top() // step) * step
        lines = []
        from PySide6.QtCore import QLineF
        x = left
        while x < rect.right():
            lines.append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            lines.append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        painter.drawLines(lines)

    # ---- wiring gesture ----------------------------------------------------------------
    def _port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos):
            if isinstance(item, PortItem):
                return item
        return None

    def _wire_end_at(self, pos: QPointF) -> tuple[Edge, bool] | None:
        """A wire whose end lies under ``pos`` (within WIRE_END_GRAB): (edge, True) for its
        output (source) end, (edge, False) for its input end."""
        if any(isinstance(i, NodeItem) for i in self.items(pos)):
            return None  # on a node: that press moves or selects the node
        best = None
        for item in self.items(QRectF(pos.x() - WIRE_END_GRAB, pos.y() - WIRE_END_GRAB,
                                      2 * WIRE_END_GRAB, 2 * WIRE_END_GRAB)):
            if not isinstance(item, EdgeItem) or not item.isVisible():
                continue
            for at_source, end in zip((True, False), item.endpoints()):
                d = (end - pos).manhattanLength()
                if d <= WIRE_END_GRAB and (best is None or d < best[0]):
                    best = (d, item.edge, at_source)
        return None if best is None else (best[1], best[2])

    def begin_wire_end(self, edge: Edge, at_source: bool) -> None:
        """Pick up one end of an existing wire to plug it elsewhere (or drop it on the
        canvas to remove it); the other end stays where it is."""
        if not at_source:
            self.begin_wire(self.node_items[edge.target].port(edge.target_port, False))
            return
        self.begin_wire(self.node_items[edge.target].port(edge.target_port, False),
                        keep_source=False)
        self._wire_edge = edge
        self.edge_items[edge].setVisible(False)

    def begin_wire(self, port: PortItem, keep_source: bool = True) -> None:
        """Start dragging a wire from ``port`` (an input with an edge re-plugs that edge's
        input end, unless ``keep_source`` is False: then the input end stays and the
        caller re-plugs the source end)."""
        self._wire_edge = None
        if not port.is_output and keep_source:
            existing = [e for e in self.doc.in_edges(port.node_id) if e.target_port == port.name]
            if existing:
                self._wire_edge = existing[0]
                port = self.node_items[self._wire_edge.source].port(
                    self._wire_edge.source_port, True) or port
                self.edge_items[self._wire_edge].setVisible(False)
        self._wire_from = port
        self._wire = QGraphicsPathItem()
        pen = QPen(self.theme.c("selection"), 2, Qt.DashLine)
        self._wire.setPen(pen)
        self._wire.setZValue(5)
        self.addItem(self._wire)
        self._highlight_compatible(port)

    def _highlight_compatible(self, start: PortItem) -> None:
        g = feedforward_graph(self.doc)
        if start.is_output:
            banned = nx.ancestors(g, start.node_id) | {start.node_id}
        else:
            banned = nx.descendants(g, start.node_id) | {start.node_id}
        for item in self.node_items.values():
            for p in list(item.in_ports.values()) + list(item.out_ports.values()):
                if p.is_output == start.is_output:
                    p.set_state(PortItem.INCOMPATIBLE if p is not start else PortItem.NORMAL)
                    continue
                ok = self._problem(start, p, banned) is None
                p.set_state(PortItem.COMPATIBLE if ok else PortItem.INCOMPATIBLE)

    def _problem(self, start: PortItem, other: PortItem, banned=None) -> str | None:
        """Why start -> other is refused (``banned``: the cycle set computed at drag start)."""
        if start.is_output == other.is_output:
            side = "output" if start.is_output else "input"
            return f"both ends are {side}s: connect an output (right) to an input (left)"
        src, dst = (start, other) if start.is_output else (other, start)
        ancestors = None
        if banned is not None:
            if start.is_output:
                ancestors = banned
            else:
                if src.node_id in banned and not is_delay(src.node_item.node):
                    return (f"connecting {src.node_item.node.display_name} to "
                            f"{dst.node_item.node.display_name} would make a cycle; a "
                            "recurrent connection must pass through a Delay node")
                ancestors = set()
        return connection_problem(self.doc, src.node_id, src.name, dst.node_id, dst.name,
                                  ancestors=ancestors)

    def _end_wire(self, pos: QPointF, screen_pos) -> None:
        start, old = self._wire_from, self._wire_edge
        self.removeItem(self._wire)
        self._wire, self._wire_from, self._wire_edge = None, None, None
        for item in self.node_items.values():
            for p in list(item.in_ports.values()) + list(item.out_ports.values()):
                p.set_state(PortItem.NORMAL)
        if old is not None and old in self.edge_items:
            self.edge_items[old].setVisible(True)
        target = self._port_at(pos)
        if target is None or target is start:
            if old is not None:
                self.reconnect_requested.emit(old, None)  # dropped on empty canvas: remove
            return
        if old is not None and target.is_output == start.is_output:
            return
        problem = self._problem(start, target)
        if problem:
            self.refused.emit(problem)
            if screen_pos is not None:
                QToolTip.showText(screen_pos, "Cannot connect: " + problem)
            return
        src, dst = (start, target) if start.is_output else (target, start)
        edge = Edge(src.node_id, src.name, dst.node_id, dst.name)
        if edge == old or edge in self.edge_items:
            return
        occupied = [e for e in self.doc.in_edges(dst.node_id) if e.target_port == dst.name]
        if old is not None:
            self.reconnect_requested.emit(old, edge)
        elif occupied:
            self.reconnect_requested.emit(occupied[0], edge)  # replace the input's wire
        else:
            self.connect_requested.emit(edge)

    # ---- mouse ----------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            port = None if self.read_only else self._port_at(event.scenePos())
            if port is not None:
                self.begin_wire(port)
                event.accept()
                return
            end = None if self.read_only else self._wire_end_at(event.scenePos())
            if end is not None:  # grab a wire by either end to re-plug it
                self.begin_wire_end(*end)
                event.accept()
                return
            if event.modifiers() & Qt.ShiftModifier:  # shift-click toggles a node
                node = next((i for i in self.items(event.scenePos())
                             if isinstance(i, NodeItem)), None)
                if node is not None:
                    node.setSelected(not node.isSelected())
                    event.accept()
                    return
        super().mousePressEvent(event)
        if event.button() == Qt.LeftButton and not self.dragging:
            self.begin_move()

    def begin_move(self) -> None:
        """Remember where the selected nodes are, to report one move when released."""
        self.dragging = True
        self._press_positions = {i.node.id: i.pos() for i in self.selectedItems()
                                 if isinstance(i, NodeItem)}

    def end_move(self) -> None:
        self.dragging = False
        moves = {}
        for nid, old in self._press_positions.items():
            item = self.node_items.get(nid)
            if item is not None and item.pos() != old:
                moves[nid] = ((old.x(), old.y()), (item.pos().x(), item.pos().y()))
        self._press_positions = {}
        for nid in moves:
            self.ensure_room(self.node_items[nid])
        if moves:
            self.reroute()  # wires that the moved nodes now block take another lane
        if moves:
            self.move_requested.emit(moves)

    def mouseMoveEvent(self, event) -> None:
        if self._wire is not None:
            a = self._wire_from.scenePos()
            b = event.scenePos()
            d = self.direction
            self._wire.setPath(wire_path(a, b, d) if self._wire_from.is_output
                               else wire_path(b, a, d))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._wire is not None and event.button() == Qt.LeftButton:
            self._end_wire(event.scenePos(), event.screenPos())
            event.accept()
            return
        was_dragging = self.dragging
        super().mouseReleaseEvent(event)
        if event.button() == Qt.LeftButton and was_dragging and self.dragging:
            self.end_move()


def _fmt(shape) -> str:
    if shape is None:
        return ""
    return "×".join(map(str, shape)) if shape else "scalar"
