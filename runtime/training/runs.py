"""Run folders: where a training run writes its checkpoints, metrics and final weights.

A run folder holds ``checkpoints/epochNNNN.{pt,safetensors}``, ``metrics.jsonl``,
``config.json`` and ``weights.safetensors``. Two runs never mix in one folder:

- a new (not resumed) run into a folder that holds a previous run moves that run's files
  to ``previous/<timestamp>/`` first (:func:`archive_previous_run`), so the newest
  checkpoint is always this run's and metrics.jsonl has only this run's epochs;
- a resumed run continues the folder: checkpoints and metrics rows *after* the resumed
  epoch (an abandoned continuation) are moved aside the same way (:func:`trim_after`).

The editor gives every run a fresh timestamped folder (:func:`new_run_dir`): beside a
saved graph ``runs/<stem>/<timestamp>/``, for an untitled graph under the user data
folder (``platformdirs``; ``NETBUILDER_RUNS_DIR`` overrides it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from .checkpoint import checkpoint_epoch, list_checkpoints

EXAMPLES_DIR = (Path(__file__).resolve().parents[2] / "resources" / "examples").resolve()
RUN_FILES = ("checkpoints", "metrics.jsonl", "config.json", "weights.safetensors",
             "run.json", "graph.json", "steps.jsonl", "tensorboard",  # (record.py writes these four)
             "node_stats.jsonl")
ARCHIVE = "previous"


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _fresh(parent: Path, name: str) -> Path:
    """``parent/name`` or ``parent/name-2``, ``-3``...: a folder that does not exist yet."""
    path, k = parent / name, 2
    while path.exists():
        path, k = parent / f"{name}-{k}", k + 1
    return path


def has_run(out: str | Path) -> bool:
    out = Path(out)
    return any((out / f).exists() for f in RUN_FILES)


def archive_previous_run(out: str | Path) -> Path | None:
    """Move the run files in ``out`` (see RUN_FILES) to ``out/previous/<timestamp>/``;
    returns that folder, or None when ``out`` held no run."""
    out = Path(out)
    present = [out / f for f in RUN_FILES if (out / f).exists()]
    if not present:
        return None
    dest = _fresh(out / ARCHIVE, _stamp())
    dest.mkdir(parents=True)
    for p in present:
        shutil.move(str(p), str(dest / p.name))
    return dest


def trim_after(out: str | Path, epoch: int) -> Path | None:
    """For a run resumed at ``epoch`` into ``out``: move checkpoints of later epochs and
    metrics rows of later epochs to ``out/previous/<timestamp>/``; returns that folder,
    or None when nothing was later."""
    out = Path(out)
    later = [p for p in list_checkpoints(out / "checkpoints") if checkpoint_epoch(p) > epoch]
    metrics = out / "metrics.jsonl"
    keep, drop = [], []
    if metrics.exists():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            try:
                row_epoch = int(json.loads(line).get("epoch", 0))
            except (ValueError, AttributeError, TypeError):
                row_epoch = 0
            (drop if row_epoch > epoch else keep).append(line)
    if not later and not drop:
        return None
    dest = _fresh(out / ARCHIVE, _stamp())
    (dest / "checkpoints").mkdir(parents=True)
    for p in later:
        for f in (p, p.with_suffix(".safetensors")):
            if f.exists():
                shutil.move(str(f), str(dest / "checkpoints" / f.name))
    if drop:
        (dest / "metrics.jsonl").write_text("\n".join(drop) + "\n", encoding="utf-8")
        metrics.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
    return dest


def continues_in(out: str | Path, checkpoint: str | Path) -> bool:
    """Whether ``checkpoint`` lies in run folder ``out`` (a resume continues that run)."""
    parent = Path(checkpoint).resolve().parent
    out = Path(out).resolve()
    return parent in (out, out / "checkpoints")


def runs_root(file_path: str | Path | None, name: str | None = None) -> Path:
    """Where the editor keeps the runs of a graph: ``<graph folder>/runs/<stem>`` for a
    saved graph; ``<user data>/runs/<name>`` for an untitled one, a gallery example opened
    by its path, or a graph in a folder we may not write to."""
    if file_path:
        p = Path(file_path).resolve()
        if p.parent != EXAMPLES_DIR and os.access(p.parent, os.W_OK):
            return p.parent / "runs" / p.stem
        name = name or p.stem  # a shipped example or a read-only folder: keep runs elsewhere
    base = os.environ.get("NETBUILDER_RUNS_DIR")
    if not base:
        import platformdirs

        base = str(Path(platformdirs.user_data_dir("Netbuilder", appauthor=False)) / "runs")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", (name or "").strip()).strip("._") or "untitled"
    return Path(base) / safe


def new_run_dir(root: str | Path) -> Path:
    """A fresh, empty, timestamped folder under ``root`` (created)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        path = _fresh(root, _stamp())
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another run took the name between the check and mkdir
            continue


def discard_if_unused(out: str | Path) -> bool:
    """Remove run folder ``out`` when the run in it never trained a step (it failed while
    starting): no checkpoint, no weights, no metric or step rows; only files the start
    wrote (config.json, an empty record). Returns whether it was removed."""
    out = Path(out)
    if not out.is_dir() or (out / ARCHIVE).exists() or list_checkpoints(out / "checkpoints"):
        return False
    if (out / "weights.safetensors").exists():
        return False
    for name in ("metrics.jsonl", "steps.jsonl"):
        f = out / name
        if f.exists() and f.stat().st_size > 0:
            return False
    shutil.rmtree(out, ignore_errors=True)
    return not out.exists()


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a full disk leaves
    the old file (or none), never a truncated one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
