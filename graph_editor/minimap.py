"""An overview of the whole graph in a corner of the canvas: the part on screen is
outlined, and a click (or drag) there moves the canvas to that place."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QFrame, QGraphicsView

SIZE = (240, 160)
MARGIN = 12


class MiniMap(QGraphicsView):
    """A small, read-only view of ``main``'s scene, fitted; redrawn at most 5 times a
    second (the canvas itself is never slowed down by it)."""

    def __init__(self, main: QGraphicsView):
        super().__init__(main)
        self.main = main
        self.setFixedSize(*SIZE)
        self.setInteractive(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Box)
        self.setRenderHints(QPainter.Antialiasing)
        self.setViewportUpdateMode(QGraphicsView.NoViewportUpdate)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the canvas there (View > Minimap)")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.refit)
        main.horizontalScrollBar().valueChanged.connect(self._frame_moved)
        main.verticalScrollBar().valueChanged.connect(self._frame_moved)
        self._scene = None
        self.follow_scene()
        self.hide()

    def follow_scene(self) -> None:
        """Show the main view's (new) scene."""
        scene = self.main.scene()
        if scene is self._scene:
            return
        if self._scene is not None:
            try:
                self._scene.changed.disconnect(self._schedule)
            except (RuntimeError, TypeError):
                pass
        self._scene = scene
        self.setScene(scene)
        if scene is not None:
            scene.changed.connect(self._schedule)
        self.refit()

    def _schedule(self, *_):
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def _frame_moved(self, *_):
        if self.isVisible():
            self.viewport().update()

    def refit(self) -> None:
        scene = self.scene()
        if scene is None or not self.isVisible():
            return
        rect = self.main.content_rect() if hasattr(self.main, "content_rect") \
            else scene.itemsBoundingRect()
        if not rect.isEmpty():
            self.fitInView(rect.adjusted(-40, -40, 40, 40), Qt.KeepAspectRatio)
        self.viewport().update()

    def place(self) -> None:
        """Bottom-right corner of the canvas."""
        vp = self.main.viewport().geometry()
        self.move(vp.right() - self.width() - MARGIN, vp.bottom() - self.height() - MARGIN)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.place()
        self.raise_()
        self.refit()

    def drawBackground(self, painter, rect) -> None:
        scene = self.scene()
        colour = scene.theme.c("background") if scene is not None and hasattr(scene, "theme") \
            else QColor("#f4f5f7")
        painter.fillRect(rect, colour)

    def drawForeground(self, painter, rect) -> None:
        seen = self.main.mapToScene(self.main.viewport().rect()).boundingRect()
        scene = self.scene()
        colour = scene.theme.c("selection") if scene is not None and hasattr(scene, "theme") \
            else QColor("#0969da")
        fill = QColor(colour)
        fill.setAlpha(40)
        painter.setPen(QPen(colour, 0))
        painter.setBrush(fill)
        painter.drawRect(seen)

    def _go(self, event) -> None:
        self.main.centerOn(self.mapToScene(event.position().toPoint()))
        if hasattr(self.main, "_fit_pending"):
            self.main._fit_pending = False  # the user moved: resizing no longer refits
        self.viewport().update()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self._go(event)

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.LeftButton:
            self._go(event)

    def wheelEvent(self, event) -> None:
        event.ignore()

    def visible_frame(self) -> QRectF:
        """The main view's visible scene rectangle (what the outline shows)."""
        return self.main.mapToScene(self.main.viewport().rect()).boundingRect()
