"""UI stalls while the first live analysis of a session loads torch.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_first_analysis.py --runs 3

Each run is a fresh process (torch loads once per process): the real MainWindow (no
plug-ins) opens resources/examples/lenet5.json while a 16 ms heartbeat timer records how
late each tick fires; the run ends when the analysis has put shapes on every edge.
Modes alternate: ``thread`` (the default: torch loads on a warm-up thread) and ``sync``
(the old way: the first analysis imports torch on the UI thread).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(mode: str) -> None:
    sys.path.insert(0, str(ROOT))
    import tempfile

    from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from app.window import MainWindow
    from graph_editor import warmup

    if mode == "sync":
        warmup.is_ready = lambda: True
    tmp = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat), recovery_dir=tmp,
                   plugins=False)
    w.show()
    w.open_path(ROOT / "resources" / "examples" / "lenet5.json", ask_save=False)
    clock = QElapsedTimer()
    clock.start()
    gaps: list[float] = []
    last = [clock.nsecsElapsed()]
    shown = [None]

    def beat():
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6 - 16.0)
        last[0] = now
        if shown[0] is None and w.editor.analysis is not None:
            shown[0] = time.perf_counter() - t0
            QTimer.singleShot(200, app.quit)

    heart = QTimer()
    heart.setTimerType(Qt.PreciseTimer)
    heart.timeout.connect(beat)
    heart.start(16)
    QTimer.singleShot(20000, app.quit)
    app.exec()
    w.undo_stack.setClean()
    print(json.dumps({"mode": mode, "shapes_s": shown[0], "max_late_ms": max(gaps),
                      "p99_late_ms": sorted(gaps)[int(0.99 * (len(gaps) - 1))],
                      "ticks": len(gaps)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    rows: dict[str, list[dict]] = {"thread": [], "sync": []}
    for i in range(args.runs):
        for mode in (("thread", "sync") if i % 2 == 0 else ("sync", "thread")):
            out = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True,
                                 text=True, timeout=120, cwd=ROOT)
            rows[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| mode | shapes shown after (s) | heartbeat lateness max (ms) | p99 (ms) |")
    print("|---|---|---|---|")
    for mode, rs in rows.items():
        med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
        print(f"| {mode} | {med('shapes_s'):.2f} | {med('max_late_ms'):.0f} | {med('p99_late_ms'):.0f} |")
    print("runs:", json.dumps(rows))


if __name__ == "__main__":
    main()
