"""The canvas view: zoom to the cursor, pan (middle button or space + drag), fit, drops."""
from __future__ import annotations

import time

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent, QPainter, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsView

LAYER_MIME = "application/x-netbuilder-layer"
MIN_ZOOM, MAX_ZOOM = 0.02, 4.0
OVERVIEW_MIN_NODES = 300  # zoomed-out graphs this big are drawn from one cached pixmap
OVERVIEW_MAX_PIXELS = 16_000_000
OVERVIEW_STILL_S = 0.25  # the scene unchanged this long: draw (and keep) the overview
FIT_MAX_ZOOM = 1.0  # fitting never blows a small graph up past 100%


def scene_content_rect(scene) -> QRectF:
    """What a scene shows: its visible top-level items and drawn backdrops (the unrolled
    view's time-step bands), not the scene rect grown for editing room."""
    rect = QRectF()
    if scene is None:
        return rect
    for i in scene.items():
        if i.parentItem() is None and i.isVisible():
            rect = rect.united(i.sceneBoundingRect())
    extra = getattr(scene, "extra_rect", None)
    if extra is not None:
        rect = rect.united(extra)
    return rect


class GraphView(QGraphicsView):
    add_requested = Signal(str, QPointF)  # node type, scene position (palette drop)
    quick_add_requested = Signal(QPointF)  # scene position (Tab or double-click)
    block_open_requested = Signal(str)  # a Block node was double-clicked
    context_requested = Signal(object, QPointF)  # item under cursor (or None), global pos
    fitted = Signal()

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
        self.minimap = None  # graph_editor.minimap.MiniMap, when the window adds one
        self._watched = None
        self._overview = None  # ((zoom, content rect), pixmap)
        self._content = None  # the scene's content rect while it does not change
        self._changed_at = 0.0
        self._overview_timer = QTimer(self)
        self._overview_timer.setSingleShot(True)
        self._overview_timer.setInterval(int(OVERVIEW_STILL_S * 1000) + 10)
        self._overview_timer.timeout.connect(self.viewport().update)
        self._fit_pending = False
        self._panning = False
        self._pan_start = QPointF()

    # ---- zoom -----------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        self._fit_pending = False  # the user chose a zoom: resizing no longer refits
        z = self.zoom()
        factor = max(MIN_ZOOM / z, min(MAX_ZOOM / z, factor))
        self.scale(factor, factor)

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            return super().wheelEvent(event)
        self.zoom_by(1.0015 ** delta)  # anchored under the mouse

    def resetTransform(self) -> None:
        self._fit_pending = False  # zoom 100% chosen: resizing no longer refits
        super().resetTransform()

    def request_fit(self) -> None:
        """Fit now and again whenever the view is resized (the window is shown, docks
        settle) until the user zooms or pans."""
        self._fit_pending = True
        self.fit()
        QTimer.singleShot(0, self._pending_fit)

    def _pending_fit(self) -> None:
        if self._fit_pending:
            self.fit()

    def setScene(self, scene) -> None:
        super().setScene(scene)
        if self.minimap is not None:
            self.minimap.follow_scene()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.minimap is not None:
            self.minimap.place()
        if self._fit_pending:
            self.fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._fit_pending:
            self.fit()

    def fit(self, rect: QRectF | None = None) -> None:
        scene = self.scene()
        if scene is None:
            return
        if rect is None:
            rect = self.content_rect()
        if rect.isEmpty():
            self.resetTransform()
            self.centerOn(0, 0)
            return
        vp = self.viewport().rect()
        if vp.width() < 2 or vp.height() < 2:
            return
        z = self.fit_zoom(rect)
        rect = rect.adjusted(-30, -30, 30, 30)
        self.setTransform(QTransform.fromScale(z, z))
        self.centerOn(rect.center())
        self.fitted.emit()

    def fit_zoom(self, rect: QRectF) -> float:
        """The zoom at which ``rect`` (scene units) and a margin fill the canvas."""
        rect = rect.adjusted(-30, -30, 30, 30)
        vp = self.viewport().rect()
        z = min(vp.width() / max(rect.width(), 1.0), vp.height() / max(rect.height(), 1.0),
                FIT_MAX_ZOOM)
        return max(MIN_ZOOM, z)

    def content_rect(self) -> QRectF:
        """The scene's items (not the grown scene rect)."""
        return scene_content_rect(self.scene())

    def fit_readable(self, *args) -> None:  # the former name
        self.fit()

    def paintEvent(self, event) -> None:
        scene = self.scene()
        if scene is not None and hasattr(scene, "sync_lod"):
            scene.sync_lod(self.zoom())
            if self._paint_overview(scene):
                return
        super().paintEvent(event)

    # ---- overview raster: a large graph zoomed out is one cached picture ---------------
    def _watch(self, scene) -> None:
        if scene is self._watched:
            return
        if self._watched is not None:
            try:
                self._watched.content_changed.disconnect(self._scene_changed)
            except (RuntimeError, TypeError):
                pass
        self._watched = scene
        self._overview = None
        self._content = None
        if scene is not None and hasattr(scene, "content_changed"):
            scene.content_changed.connect(self._scene_changed)

    def _scene_changed(self, *_) -> None:
        self._overview = None
        self._content = None
        self._changed_at = time.monotonic()
        self._overview_timer.start()  # rebuilt once the scene has been still a moment
        self.viewport().update()

    def _paint_overview(self, scene) -> bool:
        """Zoomed out on a big graph (block mode, many nodes) the whole picture is drawn
        once into a pixmap at this zoom and panning only blits it: thousands of items
        cost one drawPixmap per frame. Any change of the scene (or the zoom) redraws it
        once the scene is still again; meanwhile items are painted as usual."""
        self._watch(scene)
        if not scene.block_mode or len(scene.node_items) < OVERVIEW_MIN_NODES \
                or self._panning_rubber_band():
            return False
        z = self.zoom()
        if self._content is None:
            self._content = self.content_rect().adjusted(-60, -60, 60, 60)
        content = self._content
        w, h = int(content.width() * z) + 1, int(content.height() * z) + 1
        if w * h > OVERVIEW_MAX_PIXELS:
            return False
        if self._overview is None or self._overview[0] != (z, content):
            if time.monotonic() - self._changed_at < OVERVIEW_STILL_S:
                return False  # still changing (a drag): paint the items as usual
            ratio = self.devicePixelRatioF()
            pix = QPixmap(int(w * ratio), int(h * ratio))
            pix.setDevicePixelRatio(ratio)
            pix.fill(scene.theme.c("background"))
            painter = QPainter(pix)
            painter.setRenderHints(self.renderHints())
            painter.setTransform(QTransform.fromScale(z, z) * QTransform.fromTranslate(
                -content.left() * z, -content.top() * z))
            scene.render(painter, content, content)
            painter.end()
            self._overview = ((z, content), pix)
        painter = QPainter(self.viewport())
        painter.fillRect(self.viewport().rect(), scene.theme.c("background"))
        painter.drawPixmap(self.mapFromScene(content.topLeft()), self._overview[1])
        painter.end()
        return True

    def _panning_rubber_band(self) -> bool:
        return not self.rubberBandRect().isNull()

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
        self._fit_pending = False
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
