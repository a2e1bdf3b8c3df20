"""Editor benchmarks: open a big graph, frame times, live analysis, start-up.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_editor.py
    xvfb-run -s '-screen 0 1600x1000x24' python benchmarks/bench_editor.py   # real X server

Measures, on the real MainWindow (without plug-ins, which have their own benchmarks):
- open: load a 2,000-node file, build the scene and paint the first frame; then the first
  live analysis (cold cache) apart, because it runs after the window is usable;
- frame time while panning (scroll + synchronous repaint of the viewport) and while
  dragging one node (move + edge updates + repaint) on 500- and 2,000-node graphs;
- live analysis after one parameter edit on a 500-node graph (memoised: incremental);
- start to first window: a fresh ``python -m app.main`` process until its window is shown.
Reports medians and p95 over repeated blocks; shared machines are noisy (read the ratios).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ms(v: float) -> str:
    return f"{v * 1000:.1f} ms"


def make_file(n: int, directory: Path) -> Path:
    import runtime
    from benchmarks.graphgen import make_graph
    from graph_editor.layout import layered_positions
    from runtime.serialization import save_graph

    doc = make_graph(runtime, n)
    for nid, pos in layered_positions(doc).items():
        doc.move_node(nid, pos)
    path = directory / f"graph{n}.json"
    save_graph(doc, path)
    return path


def new_window(tmp: Path):
    from PySide6.QtCore import QSettings

    from app.window import MainWindow

    class Quiet:
        def error(self, *a):
            print("error:", a)

        def unsaved(self, name):
            return "discard"

        def recover(self, *a):
            return False

    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp / "rec", prompts=Quiet(), plugins=False)
    w.resize(1600, 1000)
    w.show()
    return w


def bench_open(app, path: Path, tmp: Path, repeats: int) -> dict:
    from runtime import analysis

    opens, analyses = [], []
    for _ in range(repeats):
        analysis.clear_cache()
        w = new_window(tmp)
        app.processEvents()
        w.editor.analysis_enabled = False
        t0 = time.perf_counter()
        w.open_path(path, ask_save=False)
        app.processEvents()
        w.view.viewport().repaint()
        opens.append(time.perf_counter() - t0)
        w.editor.analysis_enabled = True
        t0 = time.perf_counter()
        w.editor.run_analysis()
        w.view.viewport().repaint()
        analyses.append(time.perf_counter() - t0)
        w.undo_stack.setClean()
        w.close()
        w.deleteLater()
        app.processEvents()
    return {"open": statistics.median(opens), "analysis_cold": statistics.median(analyses)}


def bench_frames(app, path: Path, tmp: Path, frames: int) -> dict:
    from PySide6.QtCore import QPointF

    w = new_window(tmp)
    w.open_path(path, ask_save=False)
    w.editor.run_analysis()
    view = w.view
    node = next(iter(w.editor.scene.node_items.values()))
    results = {}
    for label in ("zoom 1", "fit"):
        if label == "fit":
            view.fit()
        else:
            view.resetTransform()  # zoom 1: full detail, text on every node and edge
            view.centerOn(node)
        app.processEvents()
        pan = []
        for i in range(frames + 30):  # 30 warm-up frames fill the item caches
            t0 = time.perf_counter()
            step = 1 if (i // 20) % 2 == 0 else -1  # back and forth: stays over the graph
            view.pan_by(7 * step, 3 * step)
            view.viewport().repaint()
            if i >= 30:
                pan.append(time.perf_counter() - t0)
        results[label] = pan
    view.resetTransform()
    view.centerOn(node)
    app.processEvents()
    drag = []
    start = node.pos()
    for i in range(frames):
        t0 = time.perf_counter()
        node.setPos(start + QPointF(3 * (i % 50), 2 * (i % 30)))
        view.viewport().repaint()
        drag.append(time.perf_counter() - t0)
    # one parameter edit: the live analysis after it (incremental thanks to memoisation)
    scene = w.editor.scene
    target = next((n for n in w.document if n.type == "BatchNorm"), next(iter(w.document)))
    spec = target.spec
    name = next((p.name for p in spec.params if p.type == "float"), None)
    edit = []
    if name is not None:
        for i in range(9):
            w.editor.set_param(target.id, name, float(target.params[name]) * (1.01 if i % 2 else 0.99))
            t0 = time.perf_counter()
            w.editor.run_analysis()
            edit.append(time.perf_counter() - t0)
    w.undo_stack.setClean()
    w.close()
    app.processEvents()
    z1, fit = results["zoom 1"], results["fit"]
    out = {"pan_median": statistics.median(z1), "pan_p95": pct(z1, 0.95),
           "fit_median": statistics.median(fit), "fit_p95": pct(fit, 0.95),
           "drag_median": statistics.median(drag), "drag_p95": pct(drag, 0.95),
           "items": len(scene.items())}
    if edit:
        out["edit_analysis_median"] = statistics.median(edit)
    return out


def bench_layout(repeats: int) -> dict:
    """Seconds to lay out the synthetic 500- and 2,000-node graphs (Edit > Auto-layout)."""
    import runtime
    from benchmarks.graphgen import make_graph
    from graph_editor.layout import layered_positions

    out = {}
    for n in (500, 2000):
        doc = make_graph(runtime, n)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            layered_positions(doc)
            times.append(time.perf_counter() - t0)
        out[n] = statistics.median(times)
    return out


def bench_startup(repeats: int) -> float:
    """Seconds from launching ``python -c 'app.main.main()'`` to its window being shown."""
    code = ("import sys, time\n"
            "from PySide6.QtCore import QTimer\n"
            "from PySide6.QtWidgets import QApplication\n"
            "app = QApplication(['netbuilder'])\n"
            "def shown():\n"
            "    for w in app.topLevelWidgets():\n"
            "        if w.objectName() == 'MainWindow' and w.isVisible():\n"
            "            print('SHOWN', time.time(), flush=True); w.undo_stack.setClean();"
            " import os; os._exit(0)\n"
            "    QTimer.singleShot(5, shown)\n"
            "QTimer.singleShot(0, shown)\n"
            "from app.main import main\n"
            "main([])\n")
    times = []
    env = dict(os.environ)
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as home:
            env["HOME"] = home  # no recovery prompt from a previous session
            env["XDG_DATA_HOME"] = home
            env["XDG_CONFIG_HOME"] = home
            t0 = time.time()
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120).stdout
        shown = [float(line.split()[1]) for line in out.splitlines() if line.startswith("SHOWN")]
        if shown:
            times.append(shown[0] - t0)
    return statistics.median(times) if times else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--canvas", action="store_true",
                    help="only the layout times and the 2,000-node frame times")
    args = ap.parse_args()
    repeats, frames = (1, 60) if args.quick else (3, 240)
    from PySide6.QtWidgets import QApplication

    app = QApplication(["bench"])
    tmp = Path(tempfile.mkdtemp())
    import runtime.analysis  # noqa: F401  (torch import outside the timings)

    print(f"platform: {app.platformName()}, python {sys.version.split()[0]}")
    f500, f2000 = make_file(500, tmp), make_file(2000, tmp)
    lay = bench_layout(max(3, repeats))
    print(f"auto-layout: 500 nodes {ms(lay[500])} (goal <= 200 ms), 2,000 nodes "
          f"{ms(lay[2000])} (goal <= 1 s)")
    if args.canvas:
        r = bench_frames(app, f2000, tmp, frames)
        print(f"2000 nodes ({r['items']} items): pan with the whole graph in view (level of "
              f"detail) median {ms(r['fit_median'])} p95 {ms(r['fit_p95'])} (goal p95 <= 16 ms); "
              f"pan at zoom 1 median {ms(r['pan_median'])} p95 {ms(r['pan_p95'])}")
        return 0
    r = bench_open(app, f2000, tmp, repeats)
    print(f"open 2,000-node file (load + scene + first paint): {ms(r['open'])}  (goal <= 2 s)")
    print(f"first live analysis of it (cold cache): {ms(r['analysis_cold'])}")
    for n, f in ((500, f500), (2000, f2000)):
        r = bench_frames(app, f, tmp, frames)
        print(f"{n} nodes ({r['items']} items): pan at zoom 1 median {ms(r['pan_median'])} "
              f"p95 {ms(r['pan_p95'])}; pan with the whole graph in view median "
              f"{ms(r['fit_median'])} p95 {ms(r['fit_p95'])}; drag median {ms(r['drag_median'])} p95 {ms(r['drag_p95'])}"
              + (f"; analysis after one edit {ms(r['edit_analysis_median'])}"
                 if "edit_analysis_median" in r else ""))
    s = bench_startup(repeats)
    print(f"start to first window (python -c app.main.main()): {s:.2f} s  (goal <= 1.5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
