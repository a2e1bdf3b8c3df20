"""Training benchmarks without a GUI, CPU.

1. Instrumentation overhead: the digits CNN (resources/examples/digits_cnn.json) and a
   small MLP, trained with instrumentation off (per-node statistics, feature maps,
   filters and histograms never sampled), at the defaults (node statistics: gradient and
   weight norms, update ratios, activation statistics, every 10 steps; probes every 50)
   and at every step. Also the cost of each instrument timed directly beside one step. Alternating A/B blocks in one process (the machines
   are noisy); medians of the training-loop throughput (steps/s between the "started"
   event and the last step event, so compile and evaluation are excluded) and ratios.
2. Memory after a long run: a tiny MLP for N steps (default 20,000); resident set size
   after the first 1,000 steps and at the end.

    python benchmarks/bench_training.py [--blocks 7] [--long-steps 20000] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from runtime.graph import GraphDocument  # noqa: E402
from runtime.serialization import load_graph  # noqa: E402
from runtime.training import TrainConfig, Trainer  # noqa: E402

VARIANTS = {
    "off": dict(instrument_every=10**9, visualize_every=10**9),
    "default": dict(instrument_every=10, visualize_every=50),
    "every step": dict(instrument_every=1, visualize_every=1),
}


def mlp() -> GraphDocument:
    d = GraphDocument("mlp")
    d.add_node("VectorInput", {"features": 2}, node_id="x")
    prev = "x"
    for i in (1, 2):
        d.add_node("Dense", {"units": 64}, node_id=f"h{i}")
        d.add_node("Tanh", node_id=f"t{i}")
        d.connect(prev, "out", f"h{i}", "x")
        d.connect(f"h{i}", "out", f"t{i}", "x")
        prev = f"t{i}"
    d.add_node("Dense", {"units": 2}, node_id="logits")
    d.add_node("Target", {"kind": "class", "num_classes": 2}, node_id="y")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect(prev, "out", "logits", "x")
    d.connect("logits", "out", "loss", "pred")
    d.connect("y", "out", "loss", "target")
    return d


def loop_rate(doc, cfg: TrainConfig) -> float:
    marks = {}

    def on_event(e):
        if e["event"] == "started":
            marks["t0"] = time.perf_counter()
        elif e["event"] == "step":
            marks["t1"], marks["n"] = time.perf_counter(), e["step"] + 1

    Trainer(doc, cfg, on_event=on_event).fit()
    return marks["n"] / (marks["t1"] - marks["t0"])


def overhead(name, doc, base: dict, blocks: int) -> dict:
    rates = {v: [] for v in VARIANTS}
    for b in range(blocks):
        order = list(VARIANTS) if b % 2 == 0 else list(reversed(VARIANTS))
        for v in order:
            rates[v].append(loop_rate(doc, TrainConfig(**base, **VARIANTS[v])))
    med = {v: statistics.median(r) for v, r in rates.items()}
    return {"model": name, "median_steps_per_s": med,
            "ratio_default_vs_off": med["default"] / med["off"],
            "ratio_every_step_vs_off": med["every step"] / med["off"],
            "blocks": blocks}


def components(name, doc, base: dict, reps: int = 200) -> dict:
    """Cost of each sampled instrument next to one training step (ms, medians of 5 runs)."""
    t = Trainer(doc, TrainConfig(**base))
    t.setup()
    xs = [x[:t.cfg.batch_size] for x in t.train_x]
    ys = [y[:t.cfg.batch_size] for y in t.train_y]

    def step():
        t.optimizer.zero_grad()
        t.module(*xs, *ys)["loss"].backward()
        t.optimizer.step()

    step()
    _, norms = t.norms.total()

    def ms(fn, n):
        fn()
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter() - t0) / n * 1000)
        return statistics.median(runs)

    def health_step():  # a step with node statistics (runtime/training/health.py)
        t.health.arm()
        t.optimizer.zero_grad()
        loss = t.module(*xs, *ys)["loss"]
        loss.backward()
        t.health.grads(t.norms.total()[1])
        t.optimizer.step()
        t.health.finish(1, loss)

    t.health.emit = lambda *a, **k: None
    out = {"model": name, "step_ms": ms(step, reps // 4),
           "total_grad_norm_ms": ms(t.norms.total, reps),
           "per_node_grad_norms_ms": ms(lambda: t.norms.per_node(norms), reps),
           "health_step_ms": ms(health_step, reps // 4),
           "probe_maps_filters_histograms_ms": ms(lambda: t._visualize(1), reps // 4)}
    out["node_stats_extra_ms"] = max(0.0, out["health_step_ms"] - out["step_ms"])
    c = TrainConfig()
    out["amortised_default_percent"] = 100 * (
        out["per_node_grad_norms_ms"] / c.instrument_every
        + out["node_stats_extra_ms"] / c.visualize_every
        + out["probe_maps_filters_histograms_ms"] / c.visualize_every) / out["step_ms"]
    out["throughput_default_vs_off"] = 1 / (1 + out["amortised_default_percent"] / 100)
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def long_run(steps: int, threads: int) -> dict:
    spe = 80  # xor with 3,200 samples, 20% validation, batch 32
    epochs = max(1, steps // spe)
    marks = {}

    def on_event(e):
        if e["event"] == "step" and e["step"] + 1 in (1000, spe * epochs):
            marks[e["step"] + 1] = rss_mb()

    t0 = time.perf_counter()
    cfg = TrainConfig(dataset="xor?n=3200", batch_size=32, epochs=epochs, lr=0.003,
                      threads=threads)
    final = Trainer(mlp(), cfg, on_event=on_event).fit()
    after_1k, end = marks[1000], marks[spe * epochs]
    return {"steps": final["steps"], "seconds": time.perf_counter() - t0,
            "rss_mb_after_1000": after_1k, "rss_mb_end": end, "growth_mb": end - after_1k}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--long-steps", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(threads=args.threads, seed=0)
    results = {"python": platform.python_version(), "torch": torch.__version__,
               "threads": args.threads, "cpus": __import__("os").cpu_count()}
    digits = load_graph(ROOT / "resources" / "examples" / "digits_cnn.json")
    results["components"] = [
        components("digits CNN, batch 64", digits, dict(base, dataset="digits", batch_size=64)),
        components("MLP 2-64-64-2, batch 32", mlp(), dict(base, dataset="spirals", batch_size=32)),
    ]
    results["overhead"] = [] if not args.blocks else [
        overhead("digits CNN (batch 64, 10 epochs = 230 steps)", digits,
                 dict(base, dataset="digits", epochs=10, batch_size=64), args.blocks),
        overhead("MLP 2-64-64-2 (batch 32, 12 epochs = 300 steps)", mlp(),
                 dict(base, dataset="spirals", epochs=12, batch_size=32), args.blocks),
    ]
    if args.long_steps:
        results["long_run"] = long_run(args.long_steps, args.threads)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
