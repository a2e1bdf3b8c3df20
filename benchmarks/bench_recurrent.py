"""Hand-drawn LSTM cell vs torch's fused nn.LSTM: one training step, on CPU (and CUDA).

    python benchmarks/bench_recurrent.py [--reps 3] [--device cpu|cuda] [--quick]

Three compiled graphs of the same model (sequence (T, 64) -> LSTM with H units, every
step -> squared-error-like loss), built with runtime.build_module:
  fused    the 'LSTM' node (nn.LSTM)
  cell     the LSTM cell drawn by hand (Dense, Sigmoid, Tanh, Multiply, Add, Concat, Delay),
           run by the plain per-step loop (lowering disabled)
  lowered  the same hand-drawn cell, lowered by the compiler to torch's fused kernel with
           the cell's own weights (the default)
A train step = forward, backward, SGD update. Per configuration the variants run in
alternating blocks in one process, the order rotated every repetition (the machines are noisy); medians and ratios to fused
are printed as a Markdown table, from wall-clock time and from the process's CPU time
(less disturbed when other jobs share the cores).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime import GraphDocument, build_module  # noqa: E402
from runtime import recurrent  # noqa: E402
from runtime.cells import add_lstm_cell  # noqa: E402

FEATURES = 64
CONFIGS = [(h, t, b) for h in (128, 512) for t in (64, 100) for b in (32, 64)]


def fused_doc(hidden: int, steps: int) -> GraphDocument:
    d = GraphDocument("fused")
    d.add_node("SequenceInput", {"steps": steps, "features": FEATURES}, node_id="x")
    d.add_node("LSTM", {"hidden_size": hidden}, node_id="lstm")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "lstm", "x")
    d.connect("lstm", "out", "y", "x")
    return d


def cell_doc(hidden: int, steps: int) -> GraphDocument:
    d = GraphDocument("cell")
    d.add_node("SequenceInput", {"steps": steps, "features": FEATURES}, node_id="x")
    ids = add_lstm_cell(d, ("x", "out"), hidden)
    d.add_node("Output", node_id="y")
    d.connect(ids["seq_out"], "out", "y", "x")
    return d


def build(kind: str, hidden: int, steps: int, device: str):
    if kind == "fused":
        m = build_module(fused_doc(hidden, steps), mode="predict")
    else:
        with recurrent.lowering(kind == "lowered"):
            m = build_module(cell_doc(hidden, steps), mode="predict")
        expect = recurrent.LoweredLSTM if kind == "lowered" else recurrent.RecurrentLoop
        assert isinstance(m.step_loop, expect), type(m.step_loop)
    return m.to(device)


def train_step(model, opt, x):
    opt.zero_grad(set_to_none=True)
    loss = model(x).pow(2).mean()
    loss.backward()
    opt.step()
    return loss


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def bench(hidden, steps, batch, device, reps, kinds):
    torch.manual_seed(0)
    x = torch.randn(batch, steps, FEATURES, device=device)
    models = {k: build(k, hidden, steps, device) for k in kinds}
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, m in models.items()}
    for k in kinds:  # warm-up
        train_step(models[k], opts[k], x)
    sync(device)
    times = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    for i in range(reps):
        for k in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:  # alternating, rotated
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            train_step(models[k], opts[k], x)
            sync(device)
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in times.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="only the smallest configuration")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    kinds = ["fused", "cell", "lowered"]
    configs = CONFIGS[:1] if args.quick else CONFIGS
    dev = torch.cuda.get_device_name() if args.device == "cuda" else \
        f"CPU, {args.threads} threads"
    print(f"torch {torch.__version__}, {dev}, {args.reps} alternating reps, median ms "
          "per train step")
    print()
    print("| H | T | batch | fused ms | hand-drawn loop ms | ratio wall / CPU | "
          "hand-drawn lowered ms | ratio wall / CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for h, t, b in configs:
        r, c = bench(h, t, b, args.device, args.reps, kinds)
        f, fc = r["fused"], c["fused"]
        print(f"| {h} | {t} | {b} | {f * 1e3:.1f} | {r['cell'] * 1e3:.1f} | "
              f"{r['cell'] / f:.2f}x / {c['cell'] / fc:.2f}x | {r['lowered'] * 1e3:.1f} | "
              f"{r['lowered'] / f:.2f}x / {c['lowered'] / fc:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
