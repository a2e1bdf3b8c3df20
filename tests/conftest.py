"""Test set-up: Qt offscreen (before any Qt import), deterministic torch threads."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests (hypothesis) run the same examples on every run, so a submission's CI
# result does not depend on luck. To hunt for new failing sequences, run e.g.
#   NETBUILDER_PROPERTY_EXPLORE=1 NETBUILDER_PROPERTY_EXAMPLES=500 python3 -m pytest tests/graph_editor
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile(
        "netbuilder", derandomize=not os.environ.get("NETBUILDER_PROPERTY_EXPLORE"),
        database=None if not os.environ.get("NETBUILDER_PROPERTY_EXPLORE") else
        _hyp_settings.default.database)
    _hyp_settings.load_profile("netbuilder")
except ImportError:  # hypothesis is a test extra
    pass


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
