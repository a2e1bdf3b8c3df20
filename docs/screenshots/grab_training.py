"""Screenshots of training in the real app (run under Xvfb):

    xvfb-run -s '-screen 0 1600x1000x24' python docs/screenshots/grab_training.py

Opens the mlp_spirals example (an untitled copy, as File > Examples does), presses
Start, and grabs the window mid-run (training.png); then the digits CNN, selects its
first convolution, shows the Inside tab and grabs feature maps and filters
(training-inside.png). Runs go to a temporary folder.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    tmp = Path(tempfile.mkdtemp())
    os.environ["NETBUILDER_RUNS_DIR"] = str(tmp / "runs")
    app = QApplication(sys.argv[:1])
    from app.window import MainWindow

    out = Path(__file__).resolve().parent
    examples = ROOT / "resources" / "examples"
    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat), recovery_dir=tmp)
    w.resize(1600, 1000)
    w.show()
    ui = w.training_ui

    def train(example: str, then, after_ms: int) -> None:
        w.open_example(examples / example)
        w.view.fit()
        ui.start()
        QTimer.singleShot(after_ms, then)

    def save(name: str) -> None:
        w.grab().save(str(out / name))
        print("saved", out / name)
        ui.controller.stop()

    def shoot_curves():
        save("training.png")
        QTimer.singleShot(3000, lambda: train("digits_cnn.json", inside, 4000))

    def inside():
        conv = next(n.id for n in w.document if n.type == "Conv2d")
        w.select_node(conv)
        plots = ui.ensure_plots()
        plots.tabs.setCurrentIndex([plots.tabs.tabText(i) for i in range(plots.tabs.count())]
                                   .index("Inside"))
        QTimer.singleShot(6000, shoot_inside)

    def shoot_inside():
        save("training-inside.png")
        w.undo_stack.setClean()
        w._forced_modified = False
        QTimer.singleShot(2000, app.quit)

    QTimer.singleShot(2500, lambda: train("mlp_spirals.json", shoot_curves, 6000))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
