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


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--max-steps", type=int, metavar="N", help="end the run after N steps "
                   "(a quick check; the last epoch is cut short)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from .debugging import add_habit_arguments

    add_habit_arguments(p)
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


def _print_final(final: dict) -> None:
    print(json.dumps(_clean(final)), flush=True)


def _error(message: str, **extra) -> int:
    """Report a failure: the message on stderr, then the JSON line (always the last)."""
    print(f"error: {message}", file=sys.stderr)
    _print_final({"status": "error", "error": message, **extra})
    return 1


def cmd_train(args) -> int:
    try:
        return _train(args)
    except Exception as exc:  # noqa: BLE001 - the last resort: a message, never a traceback
        return _error(f"unexpected {type(exc).__name__}: {exc}")


RESUME_FLAGS = {"data": "dataset", "seed": "seed", "batch_size": "batch_size", "lr": "lr"}


def _train(args) -> int:
    from runtime.serialization import GraphFileError, load_graph

    from . import ConfigError, TrainConfig, Trainer
    from . import checkpoint as ckpt
    from . import runs
    from .config import resume_config

    if args.nproc != 1:
        return _train_distributed(args)
    if getattr(args, "overfit_tiny", False) or getattr(args, "check_gradients", False) \
            or getattr(args, "correlated_units", None):
        from .debugging import run_habits

        return run_habits(args, _error, _print_final)
    try:
        doc = load_graph(args.file)
    except GraphFileError as exc:
        print(f"error: cannot load {exc.source}", file=sys.stderr)
        for prob in exc.problems:
            print(f"  {prob}", file=sys.stderr)
        first = f": {exc.problems[0]}" if exc.problems else ""
        _print_final({"status": "error", "error": f"cannot load {exc.source}{first}"})
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
        return _error(f"{args.file}: {exc}")
    if args.max_steps is not None and args.max_steps < 1:
        return _error("--max-steps must be at least 1")
    out = Path(args.out or Path("runs") / Path(args.file).stem)
    notes = []
    if args.resume:
        try:
            ckpt_path, state = ckpt.read_state(args.resume)
            saved = TrainConfig.from_dict({k: v for k, v in dict(state["config"]).items()
                                           if k in TrainConfig().to_dict()})
        except (ckpt.CheckpointError, ConfigError, TypeError) as exc:
            return _error(f"cannot resume from {args.resume}: {exc}")
        clash = [(f"--{flag.replace('_', '-')}", getattr(cfg, key), getattr(saved, key))
                 for flag, key in RESUME_FLAGS.items()
                 if getattr(args, flag) is not None and getattr(cfg, key) != getattr(saved, key)]
        if clash:
            said = ", ".join(f"{f} {mine!r} (the checkpoint has {theirs!r})"
                             for f, mine, theirs in clash)
            return _error(f"cannot resume from {ckpt_path} with {said}: an exact continuation "
                          "needs the checkpoint's settings. Drop these options, or start a new "
                          "run without --resume")
        cfg, ignored = resume_config(cfg, saved.to_dict())
        if ignored:
            notes.append(f"resuming with the checkpoint's settings; the graph's differ and "
                         f"are ignored: {'; '.join(ignored)}")
        if runs.continues_in(out, ckpt_path):
            moved = runs.trim_after(out, int(state["epoch"]))
            if moved is not None:
                notes.append(f"{out} had epochs after {state['epoch']}: moved them to {moved}")
        elif (moved := runs.archive_previous_run(out)) is not None:
            notes.append(f"{out} held another run: moved its files to {moved}")
    else:
        moved = runs.archive_previous_run(out)
        if moved is not None:
            notes.append(f"{out} held a previous run: moved its files to {moved} "
                         "(a new run never mixes with an old one; --resume continues one)")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        metrics = open(out / "metrics.jsonl", "a", encoding="utf-8")
    except OSError as exc:
        return _error(f"cannot write to {out}: {exc.strerror or exc}")
    with metrics:
        progress = _Progress(metrics, args.quiet)
        trainer = Trainer(doc, cfg, out_dir=out, on_event=progress, resume=args.resume,
                          base_dir=Path(args.file).resolve().parent, max_steps=args.max_steps)
        final = trainer.fit()
    _print_final(final)
    return 1 if final.get("status") == "error" else 0


def _train_distributed(args) -> int:
    """--nproc N: DDP under torchrun, through the standalone train.py the export writes."""
    import argparse as _argparse

    from runtime.export.cli import cmd_train_dist

    unsupported = [f"--{n.replace('_', '-')}" for n in ("data", "device", "seed", "batch_size",
                                                         "lr", "resume")
                   if getattr(args, n) is not None]
    if unsupported:
        return _error(f"{', '.join(unsupported)} cannot be combined with --nproc; set them in "
                      "the graph's training section")
    ns = _argparse.Namespace(file=args.file, nproc=args.nproc, out=args.out, weights=None,
                             epochs=args.epochs, max_steps=args.max_steps, loss_log=None,
                             json_result=True)
    return cmd_train_dist(ns)
