"""Light and dark application themes (Fusion style with a palette), following the system."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from graph_editor.theme import DARK, LIGHT, Theme


def system_prefers_dark() -> bool:
    try:
        return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark
    except AttributeError:  # Qt < 6.5
        return False


def dark_palette() -> QPalette:
    p = QPalette()
    base, alt, text = QColor("#25262b"), QColor("#2f3136"), QColor("#e6e6e6")
    p.setColor(QPalette.Window, QColor("#2b2d31"))
    p.setColor(QPalette.WindowText, text)
    p.setColor(QPalette.Base, base)
    p.setColor(QPalette.AlternateBase, alt)
    p.setColor(QPalette.ToolTipBase, QColor("#3a3d44"))
    p.setColor(QPalette.ToolTipText, text)
    p.setColor(QPalette.Text, text)
    p.setColor(QPalette.Button, QColor("#34363c"))
    p.setColor(QPalette.ButtonText, text)
    p.setColor(QPalette.BrightText, QColor("#ff6b6b"))
    p.setColor(QPalette.Highlight, QColor("#3d7bd9"))
    p.setColor(QPalette.HighlightedText, Qt.white)
    p.setColor(QPalette.Link, QColor("#58a6ff"))
    p.setColor(QPalette.PlaceholderText, QColor("#8b9099"))
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        p.setColor(QPalette.Disabled, role, QColor("#777a80"))
    return p


def apply_theme(key: str) -> Theme:
    """Apply 'light', 'dark' or 'system' to the application; returns the canvas theme."""
    dark = system_prefers_dark() if key == "system" else key == "dark"
    app = QApplication.instance()
    if app is not None:
        app.setStyle("Fusion")
        app.setPalette(dark_palette() if dark else app.style().standardPalette())
    return DARK if dark else LIGHT
