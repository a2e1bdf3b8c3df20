"""Screenshots of the real editor (run under Xvfb):

    xvfb-run -s '-screen 0 1600x1000x24' python docs/screenshots/grab_editor.py

Opens resources/examples/lenet5.json in the real main window (with the installed
plug-ins), selects a layer, waits for the live analysis, and saves window grabs.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def main() -> int:
    app = QApplication(sys.argv[:1])
    from app.window import MainWindow

    tmp = Path(tempfile.mkdtemp())
    out = Path(__file__).resolve().parent
    example = ROOT / "resources" / "examples" / (sys.argv[1] if len(sys.argv) > 1 else "lenet5.json")
    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat), recovery_dir=tmp)
    w.resize(1600, 1000)
    w.show()
    w.open_path(example, ask_save=False)
    shots = [("light", "editor-lenet5.png"), ("dark", "editor-lenet5-dark.png")]

    def shoot(i: int = 0) -> None:
        theme, _name = shots[i]
        w.set_theme(theme)
        w.editor.run_analysis()
        w.view.fit()
        w.select_node("C3")
        # the inspector lays its fields out over the next event-loop turns: grab after
        QTimer.singleShot(1500, lambda: grab(i))

    def grab(i: int) -> None:
        name = shots[i][1]
        app.processEvents()
        w.grab().save(str(out / name))
        print("saved", out / name)
        if i + 1 < len(shots):
            QTimer.singleShot(400, lambda: shoot(i + 1))
        else:
            w.undo_stack.setClean()
            QTimer.singleShot(100, app.quit)

    QTimer.singleShot(1500, shoot)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
