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
