"""Screenshots of the Runs panel and of a live sweep in the real app (run under Xvfb):

    xvfb-run -s '-screen 0 1600x1000x24' python docs/screenshots/grab_experiments.py

Trains two real runs of the mlp_spirals example (learning rate 0.01 and 0.002), opens
the window on a saved copy, selects both runs in the Runs dock and grabs the window
(runs.png); then opens Train > Sweep…, sweeps the learning rate and the first layer's
width (12 trials, 2 at once, 8 epochs each) and grabs the dialog while trials run
(sweep-live.png) and once they are done, on its objective-vs-parameter and parallel
coordinates tabs (sweep-scatter.png, sweep-parallel.png). Everything goes to a
temporary folder.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from runtime.serialization import load_graph
    from runtime.training import TrainConfig, Trainer

    tmp = Path(tempfile.mkdtemp())
    os.environ["NETBUILDER_RUNS_DIR"] = str(tmp / "userruns")
    graph = tmp / "mlp_spirals.json"
    shutil.copy(ROOT / "resources" / "examples" / "mlp_spirals.json", graph)
    root = tmp / "runs" / "mlp_spirals"
    for name, lr in (("lr 0.01", 0.01), ("lr 0.002", 0.002)):
        doc = load_graph(graph)
        cfg = TrainConfig.from_dict({**doc.training, "lr": lr, "epochs": 15, "threads": 1})
        Trainer(doc, cfg, out_dir=root / name.replace(" ", "-")).fit()
        from runtime.experiments import index

        index.rename(root / name.replace(" ", "-"), name)

    app = QApplication(sys.argv[:1])
    from app.window import MainWindow

    out = Path(__file__).resolve().parent
    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat), recovery_dir=tmp)
    w.resize(1600, 1000)
    w.show()
    w.open_path(graph, ask_save=False)

    def runs():
        ui = w.runs_ui
        ui.show_runs()
        w.resizeDocks([ui.dock], [430], __import__("PySide6.QtCore", fromlist=["Qt"]).Qt.Vertical)
        ui.panel.select(["lr 0.01", "lr 0.002"])
        QTimer.singleShot(800, shoot_runs)

    def shoot_runs():
        w.grab().save(str(out / "runs.png"))
        print("saved", out / "runs.png")
        sweep()

    def sweep():
        dlg = w.runs_ui.open_sweep()
        dlg.resize(1400, 680)
        while dlg.params.rowCount():
            dlg.params.removeRow(0)
        dlg.add_param("lr", "1e-3..1e-1:log")
        dlg.add_param("hidden1.units", "4..64:int")
        dlg.trials_spin.setValue(12)
        dlg.jobs_spin.setValue(2)
        dlg.epochs_spin.setValue(8)
        dlg.name_edit.setText("lr-and-width")
        dlg.start()

        def live():
            done = sum(t.state != "running" for t in dlg.trials.values())
            if done >= 5:
                dlg.grab().save(str(out / "sweep-live.png"))
                print("saved", out / "sweep-live.png")
                wait_end()
            else:
                QTimer.singleShot(500, live)

        def wait_end():
            if dlg.running:
                QTimer.singleShot(500, wait_end)
                return
            for i, name in ((1, "sweep-scatter.png"), (2, "sweep-parallel.png")):
                dlg.tabs.setCurrentIndex(i)
                app.processEvents()
                dlg.grab().save(str(out / name))
                print("saved", out / name)
            QTimer.singleShot(500, app.quit)

        QTimer.singleShot(1000, live)

    QTimer.singleShot(2500, runs)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
