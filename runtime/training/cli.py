"""``netbuilder train FILE [--data SPEC] [--epochs N] [--device cpu|cuda] [--out DIR]``.

Same Trainer as the GUI. A progress bar goes to stderr; every epoch's metrics go to
``OUT/metrics.jsonl`` and, as one JSON line each, to stdout; checkpoints to
``OUT/checkpoints/``; final weights to ``OUT/weights.safetensors``. The last line on
stdout is a JSON object with the final metrics (train_loss, val_loss, val_accuracy...).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from ..cli import _load, subcommand


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json); its training section is the config")
    p.add_argument("--data", metavar="SPEC", help="dataset spec, e.g. digits, spirals, "
                   "csv:data.csv?label=y, idx:images.gz,labels.gz, text:book.txt?steps=64")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/<file name>)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--batch-size", type=int, help="mini-batch size")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint (.pt file "
                   "or a run folder: its newest checkpoint)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=1, help="processes: above 1 trains with "
                   "DistributedDataParallel under torchrun through the exported train.py "
                   "(same as 'netbuilder train-dist')")


def _clean(value):
    """JSON-safe: NaN/inf become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class _Progress:
    def __init__(self, metrics_file, quiet: bool):
        self.metrics, self.quiet = metrics_file, quiet
        self.total, self.t0, self.last = 1, time.perf_counter(), 0.0

    def __call__(self, e: dict) -> None:
        kind = e["event"]
        if kind == "started":
            self.total = e["total_steps"]
            print(f"training on {e['device']}: {e['params']:,} parameters, {e['epochs']} epochs "
                  f"of {e['steps_per_epoch']} steps", file=sys.stderr)
        elif kind == "step" and not self.quiet:
            now = time.perf_counter()
            if now - self.last > 0.2 or e["step"] + 1 == self.total:
                self.last = now
                done = (e["step"] + 1) / self.total
                eta = (now - self.t0) * (1 - done) / max(done, 1e-9)
                bar = "#" * int(28 * done)
                sys.stderr.write(f"\r[{bar:<28}] epoch {e['epoch']} step {e['step'] + 1}/"
                                 f"{self.total} loss {e['loss']:.4f} "
                                 f"{e['samples_per_s']:,.0f} samples/s ETA {eta:4.0f}s ")
                sys.stderr.flush()
        elif kind == "epoch":
            row = {k: v for k, v in e.items() if k not in ("event", "confusion", "misclassified")}
            line = json.dumps(_clean(row))
            self.metrics.write(line + "\n")
            self.metrics.flush()
            if not self.quiet:
                sys.stderr.write("\n")
            print(line, flush=True)
        elif kind == "sample_text" and not self.quiet:
            print(f"sample: {e['text'][:120]!r}", file=sys.stderr)
        elif kind in ("warning", "error"):
            print(f"\n{kind}: {e['message']}", file=sys.stderr)


@subcommand("train", "train a graph on a dataset (headless; same trainer as the editor)", _args)
def cmd_train(args) -> int:
    from . import ConfigError, TrainConfig, Trainer

    if args.nproc != 1:
        return _train_distributed(args)

    doc = _load(args.file)
    if doc is None:
        return 1
    try:
        cfg = TrainConfig.from_dict(doc.training)
        for name in ("epochs", "seed", "batch_size", "lr", "device", "threads"):
            value = getattr(args, name)
            if value is not None:
                setattr(cfg, name, value)
        if args.data:
            cfg.dataset = args.data
        cfg.validate()
    except ConfigError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out or Path("runs") / Path(args.file).stem)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as metrics:
        progress = _Progress(metrics, args.quiet)
        trainer = Trainer(doc, cfg, out_dir=out, on_event=progress, resume=args.resume,
                          base_dir=Path(args.file).resolve().parent)
        final = trainer.fit()
    if trainer.module is not None and final.get("status") != "error":
        final["weights"] = str(trainer.save_weights(out / "weights.safetensors"))
    print(json.dumps(_clean(final)), flush=True)
    return 1 if final.get("status") == "error" else 0


def _train_distributed(args) -> int:
    """--nproc N: DDP under torchrun, through the standalone train.py the export writes."""
    import argparse as _argparse

    from runtime.export.cli import cmd_train_dist

    unsupported = [f"--{n.replace('_', '-')}" for n in ("data", "device", "seed", "batch_size",
                                                         "lr", "resume")
                   if getattr(args, n) is not None]
    if unsupported:
        print(f"error: {', '.join(unsupported)} cannot be combined with --nproc; set them in "
              "the graph's training section", file=sys.stderr)
        return 1
    ns = _argparse.Namespace(file=args.file, nproc=args.nproc, out=args.out, weights=None,
                             epochs=args.epochs, max_steps=None, loss_log=None)
    return cmd_train_dist(ns)
