"""The mouse wheel scrolls panels; it never changes a combo box, spin box or slider that
the user has not clicked into (Qt's default turns a scroll over a form into edits)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import (QAbstractScrollArea, QAbstractSlider, QAbstractSpinBox,
                               QApplication, QComboBox, QScrollBar)

GUARDED = (QComboBox, QAbstractSpinBox, QAbstractSlider)


class WheelGuard(QObject):
    """Application-wide event filter: a wheel event over an unfocused value widget goes
    to the scroll area around it instead (or nowhere)."""

    def eventFilter(self, obj, event) -> bool:
        if event.type() != QEvent.Wheel or not isinstance(obj, GUARDED):
            return False
        if isinstance(obj, QScrollBar):
            return False  # scroll bars scroll
        if obj.hasFocus():
            return False
        parent = obj.parentWidget()
        while parent is not None and not isinstance(parent, QAbstractScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            QApplication.sendEvent(parent.verticalScrollBar(), event)
        return True


_guard: WheelGuard | None = None


def install() -> WheelGuard:
    """Install the guard once per application."""
    global _guard
    app = QApplication.instance()
    if _guard is None and app is not None:
        _guard = WheelGuard(app)
        app.installEventFilter(_guard)
    return _guard
