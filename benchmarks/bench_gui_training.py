"""Training next to the GUI: throughput and UI responsiveness, process vs thread vs headless.

For each graph, in alternating blocks (the machines are noisy):

* headless: ``Trainer.fit()`` in a fresh Python process without Qt (what the CLI does),
  with the torch thread count the GUI's training uses (cores - 1);
* headless-all: the same with torch's default thread count (all cores);
* process:  the real MainWindow, training started from its Training panel in a spawned
  process (the default), live plots redrawing at 30 Hz;
* thread:   the same, with the controller in QThread mode.

Throughput is steps per second between the first and the last step event (headless: as the
trainer emits them; GUI: as the UI receives them, +-33 ms over a run of several seconds).
UI responsiveness is the lateness of a 16 ms heartbeat QTimer (PreciseTimer) in the UI
thread while the run is going: lateness = measured interval - 16 ms.

``--live-state-nodes 200`` also shows live training state (the health read-outs on every
node, fed at the controller's drain rate) on a 200-node graph and measures the heartbeat.

Run under Xvfb (real window painting) or offscreen:
    xvfb-run -a -s '-screen 0 1600x1000x24' python benchmarks/bench_gui_training.py
    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui_training.py --graphs mlp_spirals
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # this checkout first; graphgen
EXAMPLES = ROOT / "resources" / "examples"
HEARTBEAT_MS = 16
UI_THREADS = max(1, (os.cpu_count() or 2) - 1)  # TrainingController's default torch threads

HEADLESS = r"""
import json, sys, time
import torch
if int(sys.argv[3]) > 0:
    torch.set_num_threads(int(sys.argv[3]))
from runtime import load_graph
from runtime.training import TrainConfig, Trainer
doc = load_graph(sys.argv[1]); cfg = json.loads(sys.argv[2])
t = []
def on_event(ev):
    if ev["event"] == "step":
        t.append((time.perf_counter(), ev["step"]))
import tempfile
# a run folder, as `netbuilder train` and the GUI both write: checkpoints every epoch
Trainer(doc, TrainConfig.from_dict(cfg), on_event=on_event, out_dir=tempfile.mkdtemp()).fit()
(t0, s0), (t1, s1) = t[0], t[-1]
print(json.dumps({"steps": s1 - s0, "steps_per_s": (s1 - s0) / (t1 - t0)}))
"""


def config_for(graph: str, epochs: int) -> dict:
    cfg = {"epochs": epochs, "batch_size": 64, "seed": 0, "lr": 0.01, "optimizer": "adam",
           "device": "cpu"}
    cfg["dataset"] = "digits" if "digits" in graph else "spirals"
    return cfg


def run_headless(graph: str, cfg: dict, threads: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", HEADLESS, str(EXAMPLES / f"{graph}.json"),
                          json.dumps(cfg), str(threads)], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    if out.returncode:
        raise SystemExit(f"headless run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class GuiBench:
    """One MainWindow reused for every GUI run (as a user would train several times)."""

    def __init__(self):
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        self.app = QApplication.instance() or QApplication(["bench"])
        from app.window import MainWindow

        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "nb_bench_gui"
        tmp.mkdir(parents=True, exist_ok=True)
        self.window = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat),
                                 recovery_dir=tmp / "recovery")
        self.window.resize(1600, 1000)
        self.window.show()
        self.ui = self.window.training_ui
        self._spin(0.5)
        self.ui.ensure_built()

    def _spin(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.002)

    def run(self, graph: str, cfg: dict, mode: str) -> dict:
        from PySide6.QtCore import Qt, QTimer

        from runtime import load_graph

        w, ui = self.window, self.ui
        doc = load_graph(EXAMPLES / f"{graph}.json")
        doc.set_training(cfg)
        w.set_document(doc, None)
        ui.controller.mode = mode
        steps: list[tuple[float, int]] = []
        beats: list[float] = []

        def on_events(events):
            now = time.perf_counter()
            for ev in events:
                if ev.get("event") == "step":
                    steps.append((now, ev["step"]))

        ui.controller.events_received.connect(on_events)
        heart = QTimer()
        heart.setTimerType(Qt.PreciseTimer)
        heart.setInterval(HEARTBEAT_MS)
        heart.timeout.connect(lambda: beats.append(time.perf_counter()))
        ui.plots.tabs.setCurrentIndex(0)  # the curves are on screen
        heart.start()
        rss0 = _rss_mb()
        cpu0 = time.process_time()
        ui.start()
        t_start = time.perf_counter()
        while ui.controller.active:
            self.app.processEvents()
            time.sleep(0.001)
        heart.stop()
        ui_cpu = time.process_time() - cpu0
        ui.controller.events_received.disconnect(on_events)
        if ui.controller.error:
            raise SystemExit(f"GUI run failed: {ui.controller.error}")
        (t0, s0), (t1, s1) = steps[0], steps[-1]
        # heartbeat only while steps were flowing (excludes process start-up)
        b = [x for x in beats if t0 <= x <= t1]
        late = sorted(max(0.0, (y - x) * 1000 - HEARTBEAT_MS) for x, y in zip(b, b[1:]))
        return {"steps": s1 - s0, "steps_per_s": (s1 - s0) / (t1 - t0),
                "startup_s": t0 - t_start, "late_p50_ms": _pct(late, 50),
                "late_p99_ms": _pct(late, 99), "late_max_ms": late[-1] if late else 0.0,
                "beats": len(late), "redraws": ui.plots.redraw_count,
                "rss_growth_mb": _rss_mb() - rss0,
                # UI process CPU time per second of training (thread mode: includes training)
                "ui_cpu_share": ui_cpu / max(time.perf_counter() - t_start, 1e-9),
                "buffers_kib": ui.plots.store.nbytes / 1024}

    def idle_heartbeat(self, seconds: float = 3.0) -> dict:
        from PySide6.QtCore import Qt, QTimer

        beats: list[float] = []
        heart = QTimer()
        heart.setTimerType(Qt.PreciseTimer)
        heart.setInterval(HEARTBEAT_MS)
        heart.timeout.connect(lambda: beats.append(time.perf_counter()))
        heart.start()
        self._spin(seconds)
        heart.stop()
        late = sorted(max(0.0, (y - x) * 1000 - HEARTBEAT_MS) for x, y in zip(beats, beats[1:]))
        return {"late_p50_ms": _pct(late, 50), "late_p99_ms": _pct(late, 99),
                "late_max_ms": late[-1] if late else 0.0}


def live_state(gui: GuiBench, nodes: int, seconds: float) -> dict:
    """A ``nodes``-node graph on the canvas (fitted, every node on screen) showing live
    training state: a node_stats event with every layer node's figures 10 times a second
    (far more often than a trainer sends them for such a graph: every 50 steps), the
    figures drifting as in training; the UI heartbeat measured."""
    from PySide6.QtCore import Qt, QTimer

    import runtime as rt
    from graphgen import make_graph

    doc = make_graph(rt, nodes)
    gui.window.set_document(doc, None)
    gui._spin(6.0)  # the first analysis (shapes, labels) runs after the document shows
    gui.window.current_view().fit()
    gui._spin(1.0)
    ui, ov = gui.ui, gui.ui.health.overlay
    layer_ids = [n.id for n in doc if not n.spec.is_source and not n.spec.is_loss]
    rng = __import__("random").Random(0)
    level = {nid: rng.uniform(-6, 0) for nid in layer_ids}  # log10 gradient norms
    step = [0]

    def feed():  # every node's figures drift as in training (x10^N(0, 0.1) per event)
        step[0] += 10
        for nid in level:
            level[nid] += rng.gauss(0, 0.1)
        stats = {nid: {"grad_norm": 10 ** level[nid], "update_ratio": 10 ** (level[nid] - 2),
                       "act_mean": rng.random(), "act_std": rng.random(),
                       "dead_fraction": rng.random()} for nid in layer_ids}
        ui._on_events([{"event": "node_stats", "step": step[0], "stats": stats}])

    def measure(fed: bool) -> list[float]:
        beats: list[float] = []
        heart = QTimer()
        heart.setTimerType(Qt.PreciseTimer)
        heart.setInterval(HEARTBEAT_MS)
        heart.timeout.connect(lambda: beats.append(time.perf_counter()))
        source = QTimer()
        source.setInterval(100)
        source.timeout.connect(feed)
        heart.start()
        if fed:
            source.start()
        gui._spin(seconds / 8)
        source.stop()
        heart.stop()
        return [max(0.0, (y - x) * 1000 - HEARTBEAT_MS) for x, y in zip(beats, beats[1:])]

    view = gui.window.current_view()
    late: dict[str, list[float]] = {}
    applied0 = ov.apply_count
    for zoom in ("fit", "100%"):  # the whole graph; and readable, centred on its middle
        if zoom == "100%":
            view.resetTransform()
            view.centerOn(view.scene().itemsBoundingRect().center())
            gui._spin(1.0)
        for block in range(4):  # alternating: the machine's own noise hits both alike
            for fed in ((True, False) if block % 2 == 0 else (False, True)):
                key = f"{zoom}, {'live state' if fed else 'no state'}"
                late.setdefault(key, []).extend(measure(fed))
    # the cost of one canvas update at 100%: apply the figures and repaint the whole view
    costs = []
    for _ in range(15):
        feed()
        t0 = time.perf_counter()
        ov.apply()
        view.viewport().repaint()
        costs.append((time.perf_counter() - t0) * 1000)
    plain = []
    for _ in range(15):
        t0 = time.perf_counter()
        view.viewport().repaint()
        plain.append((time.perf_counter() - t0) * 1000)
    out = {"nodes": len(doc), "badges": len(ov.badges), "events": step[0] // 10,
           "zoom": round(view.transform().m11(), 3),
           "canvas_updates": ov.apply_count - applied0,
           "update_and_repaint_ms": statistics.median(costs),
           "repaint_only_ms": statistics.median(plain)}
    for name, values in late.items():
        values.sort()
        out[name] = {"late_p50_ms": _pct(values, 50), "late_p99_ms": _pct(values, 99),
                     "late_max_ms": values[-1] if values else 0.0}
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def long_run(gui: GuiBench, steps: int) -> dict:
    """mlp_spirals in the GUI for ``steps`` steps: the UI's memory must not grow with it."""
    epochs = max(1, steps // 25)  # 800 training samples, batch 32
    cfg = {**config_for("mlp_spirals", epochs), "batch_size": 32}
    short = gui.run("mlp_spirals", {**cfg, "epochs": max(1, epochs // 10)}, "process")
    long = gui.run("mlp_spirals", cfg, "process")
    return {"steps": long["steps"], "rss_growth_short_mb": short["rss_growth_mb"],
            "rss_growth_long_mb": long["rss_growth_mb"], "buffers_kib": long["buffers_kib"],
            "steps_per_s": long["steps_per_s"], "late_p99_ms": long["late_p99_ms"],
            "late_max_ms": long["late_max_ms"]}


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--graphs", default="mlp_spirals,digits_cnn")
    ap.add_argument("--modes", default="headless,process,thread,headless-all")
    ap.add_argument("--blocks", type=int, default=2, help="alternating A/B blocks")
    ap.add_argument("--seconds", type=float, default=8.0, help="target run length")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--live-state-nodes", type=int, default=0, metavar="N",
                    help="also show live training state on an N-node graph (heartbeat)")
    ap.add_argument("--long-steps", type=int, default=0,
                    help="also train mlp_spirals this many steps in the GUI (memory check)")
    args = ap.parse_args(argv)
    modes = args.modes.split(",")
    gui = GuiBench() if set(modes) - {"headless"} else None
    results: dict = {"platform": os.environ.get("QT_QPA_PLATFORM", "xcb"),
                     "cpus": os.cpu_count(), "graphs": {}}
    if gui is not None:
        results["idle_heartbeat"] = gui.idle_heartbeat()
    if args.live_state_nodes and gui is not None:
        results["live_state"] = live_state(gui, args.live_state_nodes, args.seconds)
        print("live state:", json.dumps(results["live_state"]), flush=True)
    if args.long_steps and gui is not None:
        results["long_run"] = long_run(gui, args.long_steps)
        print("long run:", json.dumps(results["long_run"]), flush=True)
    for graph in [g for g in args.graphs.split(",") if g]:
        probe = run_headless(graph, config_for(graph, 3), UI_THREADS)
        steps_per_epoch = probe["steps"] / 3 + 1
        epochs = max(3, int(args.seconds * probe["steps_per_s"] / steps_per_epoch))
        cfg = config_for(graph, epochs)
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for block in range(args.blocks):
            order = modes if block % 2 == 0 else modes[::-1]
            for mode in order:
                if mode == "headless":  # same torch threads as the GUI's training
                    r = run_headless(graph, cfg, UI_THREADS)
                elif mode == "headless-all":  # torch's default (all cores), as the CLI
                    r = run_headless(graph, cfg, 0)
                else:
                    r = gui.run(graph, cfg, mode)
                runs[mode].append(r)
                print(f"{graph:12s} block {block} {mode:8s} " +
                      " ".join(f"{k}={v:.4g}" for k, v in r.items()), flush=True)
        summary = {}
        for mode, rs in runs.items():
            summary[mode] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            summary[mode]["max_of_max_ms"] = max(r.get("late_max_ms", 0.0) for r in rs)
        if "headless" in summary:
            base = summary["headless"]["steps_per_s"]
            for mode in summary:
                summary[mode]["ratio_vs_headless"] = summary[mode]["steps_per_s"] / base
        results["graphs"][graph] = {"epochs": epochs, "config": cfg, "median": summary,
                                    "runs": runs}
    print(_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if gui is not None:
        gui.ui._on_quit()  # what aboutToQuit does: stop training, delete the plots
        gui.window.close()
    return 0


def _table(results: dict) -> str:
    lines = ["| graph | mode | steps/s (median) | vs headless | start-up s | heartbeat "
             "lateness p50 / p99 / max ms |", "|---|---|---|---|---|---|"]
    for graph, g in results["graphs"].items():
        for mode, s in g["median"].items():
            hb = (f"{s['late_p50_ms']:.1f} / {s['late_p99_ms']:.1f} / {s['max_of_max_ms']:.1f}"
                  if "late_p99_ms" in s else "-")
            start = f"{s['startup_s']:.2f}" if "startup_s" in s else "-"
            lines.append(f"| {graph} | {mode} | {s['steps_per_s']:.0f} | "
                         f"{s.get('ratio_vs_headless', 1.0):.3f} | {start} | {hb} |")
    if "idle_heartbeat" in results:
        h = results["idle_heartbeat"]
        lines.append(f"\nIdle UI heartbeat lateness (no training): p50 {h['late_p50_ms']:.1f}, "
                     f"p99 {h['late_p99_ms']:.1f}, max {h['late_max_ms']:.1f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
