"""``netbuilder runs FILE [--json]``: the runs of a graph, with what changed between them;
``--rename RUN NAME``, ``--note RUN TEXT``, ``--delete RUN`` (to a trash folder; the
command prints how to ``--restore`` it).

RUN is a run's number in the listing, its name or its folder (relative to its runs folder
as listed, or a path).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import index


def runs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json), or a folder of runs")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--rename", nargs=2, metavar=("RUN", "NAME"), help="give a run a name")
    p.add_argument("--note", nargs=2, metavar=("RUN", "TEXT"), help="attach a note to a run")
    p.add_argument("--delete", metavar="RUN", help="move a run's folder to the trash")
    p.add_argument("--restore", metavar="FOLDER", help="put a deleted run back (the trash "
                   "folder --delete printed)")


def _fmt_duration(s) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (
        f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


def _fmt_metric(v, pct=False) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.4f}"


def pick(runs: list[index.Run], key: str) -> index.Run:
    """The run named by ``key``: its number (1-based), id, name or folder path."""
    if key.isdigit() and 1 <= int(key) <= len(runs):
        return runs[int(key) - 1]
    for r in runs:
        if key in (r.id, r.name):
            return r
    p = Path(key).resolve()
    for r in runs:
        if r.path.resolve() == p:
            return r
    if p.is_dir() and index.is_run_folder(p):
        return index.read_run(p)
    names = ", ".join(r.name for r in runs[-8:]) or "none"
    raise index.RunError(f"no run {key!r} (give its number, name or folder; recent runs: {names})")


def cmd_runs(args) -> int:
    target = Path(args.file)
    if not target.exists():
        print(f"error: {target}: no such file or folder", file=sys.stderr)
        return 1
    try:
        if args.restore:
            back = index.restore(args.restore)
            print(f"restored {back}")
            return 0
        runs = index.find_runs(target) if target.is_dir() else index.runs_of(target)
        if args.rename:
            run = pick(runs, args.rename[0])
            index.rename(run.path, args.rename[1])
            print(f"renamed {run.id} to {args.rename[1].strip()!r}")
            return 0
        if args.note:
            run = pick(runs, args.note[0])
            index.set_note(run.path, args.note[1])
            print(f"noted {run.name}")
            return 0
        if args.delete:
            run = pick(runs, args.delete)
            dest = index.delete(run.path)
            print(f"moved {run.path} to {dest}\nundo with: netbuilder runs {args.file} "
                  f"--restore {dest}")
            return 0
    except index.RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        where = target if target.is_dir() else ", ".join(str(r) for r in index.graph_roots(target))
        print(f"no runs yet (looked in {where})")
        return 0
    print_table(runs)
    return 0


def print_table(runs: list[index.Run]) -> None:
    rows = []
    for i, r in enumerate(runs, 1):
        m = r.metrics
        rows.append([str(i), r.name, time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started)),
                     _fmt_duration(r.duration_s), r.device or "-", r.status, str(r.epochs),
                     _fmt_metric(m.get("val_accuracy"), pct=True), _fmt_metric(m.get("val_loss")),
                     f"{r.params:,}" if isinstance(r.params, int) else "-",
                     "; ".join(r.changes) if r.changes else ("" if i == 1 else "(same)")])
    head = ["#", "run", "started", "took", "device", "status", "epochs", "val acc", "val loss",
            "params", "changed since the run before"]
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(head[:-1])]
    right = {0, 3, 6, 7, 8, 9}

    def line(cells):
        parts = [c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts + [cells[-1]]).rstrip()

    print(line(head))
    for row in rows:
        print(line(row))
    for i, r in enumerate(runs, 1):
        if r.note:
            print(f"  note {i} ({r.name}): {r.note}")
        if r.error and r.status in ("error", "failed"):
            print(f"  error {i} ({r.name}): {r.error}")


# ---- netbuilder sweep -----------------------------------------------------------------
def sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json); its training section is the base")
    p.add_argument("--param", action="append", default=[], metavar="SPEC",
                   help="a setting or node parameter to vary: lr=1e-4..1e-1:log, "
                        "batch_size=32,64,128, dense1.units=16..256:int (repeatable)")
    p.add_argument("--trials", type=int, default=20, help="trials in all (default 20); a "
                   "resumed sweep counts the trials it already ran")
    p.add_argument("--jobs", type=int, default=1, help="trials trained at once, each in its "
                   "own process (default 1)")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: the graph's)")
    p.add_argument("--objective", help="what to optimise: val_loss (default with validation "
                   "data), val_accuracy, train_loss, train_accuracy")
    p.add_argument("--name", help="the sweep's name (its folder and study); the same name "
                   "again resumes it (default: a timestamp)")
    p.add_argument("--out", metavar="DIR", help="the sweep's folder (default: "
                   "runs/<graph>/sweeps/<name> beside the graph)")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    p.add_argument("--no-prune", action="store_true", help="train every trial to the end")
    p.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    p.add_argument("--apply-best", metavar="OUT", help="write the graph with the best trial's "
                   "values set (node parameters and training settings) to OUT (.json)")


def _fmt_values(values: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in values.items())


def cmd_sweep(args) -> int:
    from .sweep import Sweep, SweepError, summary_json

    try:
        sweep = Sweep(args.file, args.param, trials=args.trials, jobs=args.jobs,
                      name=args.name, objective=args.objective, epochs=args.epochs,
                      seed=args.seed, prune=not args.no_prune, folder=args.out)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    before = sweep.finished()
    print(f"sweep {sweep.name} in {sweep.folder}: {args.trials} trials"
          + (f" ({before} done before: resuming)" if before else "")
          + f", {args.jobs} at once, {sweep.direction} {sweep.objective}", file=sys.stderr)
    for s in sweep.specs:
        print(f"  {s.name}: {s.describe()}", file=sys.stderr)

    def update(t):
        if t.state in ("running", "stopped") and t.epochs is None:
            return
        if t.state == "running":
            return
        what = {"complete": f"{sweep.objective} {t.objective:.4f}" if t.objective is not None else "",
                "pruned": f"pruned at epoch {t.epochs}",
                "failed": f"failed: {t.error}",
                "stopped": "stopped"}.get(t.state, t.state)
        acc = (f", val acc {100 * t.val_accuracy:.1f}%" if isinstance(t.val_accuracy, (int, float))
               and t.state == "complete" else "")
        params = f", {t.params:,} parameters" if isinstance(t.params, int) else ""
        print(f"trial {t.number}: {_fmt_values(t.values)} -> {what}{acc}{params}",
              file=sys.stderr, flush=True)

    best = sweep.run(update)
    if best is not None and args.apply_best:
        from ..serialization import save_graph
        from .sweep import apply_values

        base = dict(sweep.doc.training or {})  # the graph's own epochs, not --epochs
        doc, _ = apply_values(sweep.doc, base, sweep.specs, best.values)
        try:
            save_graph(doc, args.apply_best)
        except OSError as exc:
            print(f"error: cannot write {args.apply_best}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.apply_best}: {_fmt_values(best.values)}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary_json(sweep), indent=2))
    elif best is not None:
        print(f"best: trial {best.number}: {_fmt_values(best.values)} -> {sweep.objective} "
              f"{best.objective:.4f}" + (f", val acc {100 * best.val_accuracy:.1f}%"
                                          if isinstance(best.val_accuracy, (int, float)) else ""))
        print(f"its run folder: {best.folder}")
    else:
        print("no trial completed", file=sys.stderr)
    return 0 if best is not None else 1
