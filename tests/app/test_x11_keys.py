"""Undo and redo keys under a real X server (xcb), where Qt's standard Redo is
Ctrl+Shift+Z: binding it twice made every redo key "ambiguous" and dead there, which the
offscreen platform (Redo = Ctrl+Y) cannot show. Starts Xvfb when it is installed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISPLAY = os.environ.get("NETBUILDER_TEST_DISPLAY", ":91")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed")]

SCRIPT = r"""
import sys, tempfile
from pathlib import Path
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
import runtime.analysis
app = QApplication(["t"])
assert app.platformName() == "xcb", app.platformName()
from app.window import MainWindow
class Quiet:
    def error(self, *a): print("error", a)
    def unsaved(self, n): return "discard"
    def recover(self, *a): return False
tmp = Path(tempfile.mkdtemp())
w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat),
               recovery_dir=tmp / "rec", prompts=Quiet(), plugins=False)
w.resize(1200, 800); w.show(); w.activateWindow()
QTest.qWaitForWindowExposed(w)
w.editor.add_node("Dense", (0, 0))
w.view.setFocus(); QTest.qWait(50)
for redo in ("Ctrl+Y", "Ctrl+Shift+Z"):
    QTest.keyClick(w.view, Qt.Key_Z, Qt.ControlModifier); QTest.qWait(20)
    assert len(w.document) == 0, "Ctrl+Z did not undo"
    c = QKeySequence(redo)[0]
    QTest.keyClick(w.view, c.key(), c.keyboardModifiers()); QTest.qWait(20)
    assert len(w.document) == 1, redo + " did not redo"
print("KEYS OK", flush=True)
w.undo_stack.setClean(); w.close()
import os; os._exit(0)  # no teardown races of background threads at exit
"""


@pytest.fixture(scope="module")
def xserver():
    proc = None
    lock = Path(f"/tmp/.X{DISPLAY.lstrip(':')}-lock")
    if not lock.exists():
        proc = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1600x1000x24"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if lock.exists():
                break
            time.sleep(0.1)
        time.sleep(0.3)
    yield DISPLAY
    if proc is not None:
        proc.terminate()
        proc.wait(10)


def test_undo_and_redo_keys_work_under_x11(xserver):
    env = dict(os.environ, DISPLAY=xserver, QT_QPA_PLATFORM="xcb")
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=180)
    assert "Ambiguous shortcut overload" not in r.stderr, r.stderr
    assert r.returncode == 0 and "KEYS OK" in r.stdout, r.stdout + r.stderr
