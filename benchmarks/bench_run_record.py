"""What a run's record costs: the same training run into a run folder, side by side,
(a) with the record switched off (checkpoints and final weights only), (b) with the
record (run.json, config.json, graph.json, metrics.jsonl, steps.jsonl), (c) with the
record and TensorBoard event files. Rounds alternate a, b, c; the minimum per mode over
the rounds is the least-disturbed measurement (the machine is shared).

    python benchmarks/bench_run_record.py [--rounds 7] [--epochs 20]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    from runtime.serialization import load_graph
    from runtime.training import TrainConfig, Trainer, record

    doc = load_graph(ROOT / "resources" / "examples" / "mlp_spirals.json")
    cfg = lambda: TrainConfig.from_dict({**doc.training, "epochs": args.epochs,  # noqa: E731
                                         "threads": 1})
    recorder_call = record.RunRecorder.__call__

    def run(mode: str) -> tuple[float, int]:
        os.environ["NETBUILDER_TENSORBOARD"] = "1" if mode == "record+tensorboard" else "0"
        record.RunRecorder.__call__ = ((lambda self, e: self.forward(e)) if mode == "no record"
                                       else recorder_call)
        t = time.perf_counter()
        final = Trainer(doc, cfg(), out_dir=tempfile.mkdtemp()).fit()
        return time.perf_counter() - t, final["steps"]

    modes = ("no record", "record", "record+tensorboard")
    run("record+tensorboard")  # warm-up: imports, first compile
    times = {m: [] for m in modes}
    steps = 0
    for _ in range(args.rounds):
        for m in modes:
            t, steps = run(m)
            times[m].append(t)
    base = min(times["no record"])
    print(f"mlp_spirals, {args.epochs} epochs, {steps} steps, 1 thread, {args.rounds} rounds")
    for m in modes:
        best = min(times[m])
        print(f"{m:20s} min {best:.3f} s  ({best / base:.2f}x)  "
              f"+{1000 * (best - base) / steps:.2f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
