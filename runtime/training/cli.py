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
import os
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
    f = p.add_argument_group("fast path (GPUs)")
    f.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model (falls back with a warning where it fails)")
    f.add_argument("--amp", action="store_true", default=None,
                   help="mixed precision on CUDA (bfloat16 where supported, else float16)")
    f.add_argument("--channels-last", action="store_true", default=None,
                   help="NHWC memory format for convolutions")
    from .debugging import add_habit_arguments

    add_habit_arguments(p)
    d = p.add_argument_group(
        "several processes (DistributedDataParallel under torchrun)",
        "--nproc N trains with N processes on this machine, each taking 1/N of every batch "
        "(the same trajectory as one process); the run folder, checkpoints, metrics and "
        "JSON lines are those of a single run. For several machines, start the same "
        "command on each with --nnodes, its own --node-rank (0 on the first) and the "
        "first machine's --master-addr and --master-port.")
    d.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="processes on this machine (default 1)")
    d.add_argument("--nnodes", type=int, default=1, metavar="M", help="machines (default 1)")
    d.add_argument("--node-rank", type=int, default=0, metavar="K",
                   help="this machine's number, 0 .. M-1 (0 writes the run folder)")
    d.add_argument("--master-addr", metavar="HOST", help="address of machine 0 (with --nnodes)")
    d.add_argument("--master-port", type=int, metavar="PORT",
                   help="a free TCP port on machine 0 (with --nnodes; default 29500)")


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
    """Progress on stderr: a bar redrawn in place on a terminal; in a log file (stderr not a
    terminal) a plain line every 5% instead of carriage returns."""

    def __init__(self, metrics_file, quiet: bool, stream=None):
        self.metrics, self.quiet = metrics_file, quiet
        self.err = stream or sys.stderr
        self.tty = bool(getattr(self.err, "isatty", lambda: False)())
        self.total, self.last, self.next_pct = 1, 0.0, 5
        self.first: tuple[float, int] | None = None  # (time, step) of the first step shown

    def _eta(self, now: float, done_steps: int) -> str:
        """From the rate since the first step (set-up and the first step's warm-up left
        out); none until a few steps have been timed."""
        if self.first is None or done_steps - self.first[1] < 2 or now - self.first[0] < 0.5:
            return "ETA ?"
        rate = (done_steps - self.first[1]) / (now - self.first[0])
        return f"ETA {(self.total - done_steps) / rate:4.0f}s"

    def __call__(self, e: dict) -> None:
        kind = e["event"]
        if kind == "started":
            self.total = e["total_steps"]
            full = e["epochs"] * e["steps_per_epoch"]
            plan = (f"{e['epochs']} epochs of {e['steps_per_epoch']} steps" if self.total >= full
                    else f"{self.total} steps (--max-steps; a full run is {e['epochs']} epochs "
                    f"of {e['steps_per_epoch']} steps)")
            print(f"training on {e['device']}: {e['params']:,} parameters, {plan}", file=self.err)
        elif kind == "step" and not self.quiet:
            now, done_steps = time.perf_counter(), e["step"] + 1
            if self.first is None:
                self.first = (now, done_steps)
            done = done_steps / self.total
            line = (f"epoch {e['epoch']} step {done_steps}/{self.total} loss {e['loss']:.4f} "
                    f"{e['samples_per_s']:,.0f} samples/s {self._eta(now, done_steps)}")
            if not self.tty:
                if done * 100 >= self.next_pct or done_steps == self.total:
                    while self.next_pct <= done * 100:
                        self.next_pct += 5
                    print(f"{done * 100:3.0f}% {line}", file=self.err, flush=True)
            elif now - self.last > 0.2 or done_steps == self.total:
                self.last = now
                bar = "#" * int(28 * done)
                self.err.write(f"\r[{bar:<28}] {line} ")
                self.err.flush()
        elif kind == "epoch":
            row = {k: v for k, v in e.items() if k not in ("event", "confusion", "misclassified")}
            line = json.dumps(_clean(row))
            if self.metrics is not None:
                self.metrics.write(line + "\n")
                self.metrics.flush()
            if not self.quiet and self.tty:
                self.err.write("\n")
            print(line, flush=True)
        elif kind == "sample_text" and not self.quiet:
            print(f"sample: {e['text'][:120]!r}", file=self.err)
        elif kind == "status":
            print(e["message"], file=self.err)
        elif kind in ("warning", "error"):
            print(f"\n{kind}: {e['message']}", file=self.err)


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

    from . import distributed

    if (args.nproc != 1 or args.nnodes != 1) and not distributed.is_worker():
        return _train_distributed(args)
    if getattr(args, "overfit_tiny", False) or getattr(args, "check_gradients", False) \
            or getattr(args, "correlated_units", None):
        from .debugging import run_habits

        return run_habits(args, _error, _print_final)
    main = int(os.environ.get("RANK", "0") or 0) == 0  # under torchrun: only rank 0 reports
    if not main:
        args.quiet = True
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
        for name in ("epochs", "seed", "batch_size", "lr", "device", "threads", "compile", "amp",
                     "channels_last"):
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
        if not main:  # another rank of a DDP run: rank 0 alone tidies the folder
            pass
        elif runs.continues_in(out, ckpt_path):
            moved = runs.trim_after(out, int(state["epoch"]))
            if moved is not None:
                notes.append(f"{out} had epochs after {state['epoch']}: moved them to {moved}")
        elif (moved := runs.archive_previous_run(out)) is not None:
            notes.append(f"{out} held another run: moved its files to {moved}")
    elif main:
        moved = runs.archive_previous_run(out)
        if moved is not None:
            notes.append(f"{out} held a previous run: moved its files to {moved} "
                         "(a new run never mixes with an old one; --resume continues one)")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    if not main:  # another rank of a DDP run: trains its part, rank 0 writes and reports
        trainer = Trainer(doc, cfg, out_dir=out, resume=args.resume,
                          base_dir=Path(args.file).resolve().parent, max_steps=args.max_steps)
        final = trainer.fit()
        return _end_worker(trainer, 1 if final.get("status") == "error" else 0)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        runs.write_atomic(out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
    except OSError as exc:
        if created:
            runs.discard_if_unused(out)
        return _error(f"cannot write to {out}: {exc.strerror or exc}")
    progress = _Progress(None, args.quiet)  # metrics.jsonl: the Trainer's run record
    trainer = Trainer(doc, cfg, out_dir=out, on_event=progress, resume=args.resume,
                      base_dir=Path(args.file).resolve().parent, max_steps=args.max_steps)
    final = trainer.fit()
    if final.get("status") == "error" and created and not final.get("steps") \
            and runs.discard_if_unused(out):
        final["out_dir"] = None  # it failed while starting: no folder is left behind
    final["processes"] = trainer.group.world
    _print_final(final)
    return _end_worker(trainer, 1 if final.get("status") == "error" else 0)


def _end_worker(trainer, code: int) -> int:
    """Leave the process group of a DDP run (all ranks together); a single run returns."""
    if not trainer.group.active:
        return code
    try:
        trainer.group.close()
    finally:
        # gloo's threads could abort the process in C++ teardown at exit ("terminate called
        # without an active exception"); everything is written and flushed by now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _train_distributed(args) -> int:
    """--nproc N / --nnodes M: this same command as N processes under torchrun (see
    runtime/training/distributed.py); rank 0 writes the run folder and prints."""
    from . import distributed

    if args.nproc < 1 or args.nnodes < 1:
        return _error("--nproc and --nnodes must be at least 1")
    if not 0 <= args.node_rank < args.nnodes:
        return _error(f"--node-rank must be in 0..{args.nnodes - 1}")
    if args.max_steps is not None and args.max_steps < 1:
        return _error("--max-steps must be at least 1")
    # the processes run in this folder: the same paths mean the same files as in one run
    argv = ["train", args.file] + (["--out", args.out] if args.out else [])
    for name in ("data", "epochs", "device", "seed", "batch_size", "lr", "threads", "resume",
                 "max_steps"):
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    for flag in ("quiet", "compile", "amp", "channels_last"):
        if getattr(args, flag):
            argv.append(f"--{flag.replace('_', '-')}")
    code, last = distributed.launch(args.nproc, argv, args.nnodes, args.node_rank,
                                    args.master_addr, args.master_port)
    if code != 0 and args.node_rank == 0 and not last.startswith("{"):
        return _error(f"torchrun exited with code {code} (see the messages above)")
    return 1 if code else 0
