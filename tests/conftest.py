"""Test set-up: Qt offscreen (before any Qt import), deterministic torch threads."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_sessionfinish(session, exitstatus):
    """Qt's offscreen platform crashes at exit (SIGSEGV) when the clipboard still holds
    data set from Python (measured with PySide6 6.11.3; the xcb platform does not): empty
    it while the application is still alive."""
    import sys

    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        app.clipboard().clear()
