"""The canvas view: zoom to the cursor, pan (middle button or space + drag), fit, drops."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPainter
from PySide6.QtWidgets import QGraphicsView

LAYER_MIME = "application/x-netbuilder-layer"
MIN_ZOOM, MAX_ZOOM = 0.08, 4.0


class GraphView(QGraphicsView):
    add_requested = Signal(str, QPointF)  # node type, scene position (palette drop)
    quick_add_requested = Signal(QPointF)  # scene position (Tab or double-click)
    block_open_requested = Signal(str)  # a Block node was double-clicked
    context_requested = Signal(object, QPointF)  # item under cursor (or None), global pos

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setOptimizationFlags(QGraphicsView.DontSavePainterState)
        self.setCacheMode(QGraphicsView.CacheBackground)  # the grid is redrawn only when exposed
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self._space = False
        self._panning = False
        self._pan_start = QPointF()

    # ---- zoom -----------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        z = self.zoom()
        factor = max(MIN_ZOOM / z, min(MAX_ZOOM / z, factor))
        self.scale(factor, factor)

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            return super().wheelEvent(event)
        self.zoom_by(1.0015 ** delta)  # anchored under the mouse

    def fit(self, rect: QRectF | None = None) -> None:
        scene = self.scene()
        if scene is None:
            return
        if rect is None:
            items = [i for i in scene.items() if i.parentItem() is None and i.isVisible()]
            rect = QRectF()
            for i in items:
                rect = rect.united(i.sceneBoundingRect())
        if rect.isEmpty():
            self.resetTransform()
            self.centerOn(0, 0)
            return
        self.fitInView(rect.adjusted(-40, -40, 40, 40), Qt.KeepAspectRatio)
        z = self.zoom()
        if z > 1.5:
            self.zoom_by(1.5 / z)
        elif z < MIN_ZOOM:
            self.zoom_by(MIN_ZOOM / z)

    def fit_readable(self, min_zoom: float = 0.6) -> None:
        """Fit the graph, but never below a zoom where names are readable: a long chain
        then opens at its inputs (left end), the way one reads it."""
        self.fit()
        z = self.zoom()
        if z >= min_zoom or self.scene() is None:
            return
        rect = self.scene().itemsBoundingRect()
        self.zoom_by(min_zoom / z)
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        self.centerOn(rect.left() - 30 + visible.width() / 2, rect.center().y())

    # ---- pan ----------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.OpenHandCursor)
            return
        if event.key() == Qt.Key_Tab:
            pos = self.mapToScene(self.mapFromGlobal(self.cursor().pos()))
            if not self.viewport().rect().contains(self.mapFromGlobal(self.cursor().pos())):
                pos = self.mapToScene(self.viewport().rect().center())
            self.quick_add_requested.emit(pos)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)

    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # Tab is quick-add on the canvas

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MiddleButton or (self._space and event.button() == Qt.LeftButton):
            self._panning = True
            self._pan_start = event.position()
            self.viewport().setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.RightButton:
            item = self.itemAt(event.position().toPoint())
            self.context_requested.emit(item, event.globalPosition())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._panning:
            delta = event.position() - self._pan_start
            self._pan_start = event.position()
            self.pan_by(delta.x(), delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def pan_by(self, dx: float, dy: float) -> None:
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() - int(dx))
        v.setValue(v.value() - int(dy))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning and event.button() in (Qt.MiddleButton, Qt.LeftButton):
            self._panning = False
            if self._space:
                self.viewport().setCursor(Qt.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if event.button() == Qt.LeftButton and item is None:
            self.quick_add_requested.emit(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        while item is not None and not hasattr(item, "node"):
            item = item.parentItem()
        if event.button() == Qt.LeftButton and item is not None \
                and getattr(item.node, "type", None) == "Block":
            self.block_open_requested.emit(item.node.id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    # ---- drops from the palette -------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        if mime.hasFormat(LAYER_MIME):
            type_id = bytes(mime.data(LAYER_MIME)).decode()
            self.add_requested.emit(type_id, self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
        else:
            super().dropEvent(event)
