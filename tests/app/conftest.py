"""Fixtures of the application tests: the real main window (plug-ins off, settings and
recovery files under the test's tmp_path, questions answered by ScriptedPrompts)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from app.window import MainWindow
from tests.app.helpers import ScriptedPrompts, close_window


@pytest.fixture
def make_window(qtbot, tmp_path):
    """``make(prompts=None, size=None, **MainWindow kwargs)`` -> a shown MainWindow;
    every window made is closed (discarding changes) after the test."""
    made = []

    def make(*, size: tuple[int, int] | None = None, **kw):
        prompts = kw.pop("prompts", None) or ScriptedPrompts()
        w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                       recovery_dir=tmp_path / "recovery", prompts=prompts, plugins=False, **kw)
        qtbot.addWidget(w)
        if size is not None:
            w.resize(*size)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        close_window(w)


@pytest.fixture
def window(make_window):
    """One large window (1600 x 1000), empty document."""
    return make_window(size=(1600, 1000))
