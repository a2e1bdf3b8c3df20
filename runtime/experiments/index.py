"""The run index: every run of a graph, read from its run folders.

A run folder is any folder that holds a run's files (``run.json``, ``metrics.jsonl``,
``checkpoints/``, ``weights.safetensors``...; see :mod:`runtime.training.record`): the
editor's ``runs/<graph>/<timestamp>/``, the CLI's ``--out`` folder and the older runs it
moved to ``previous/<timestamp>/``, sweep trials ``sweeps/<name>/trial-NNNN/``, a DDP
run's ``<graph>_ddp/``. Runs written before ``run.json`` existed are still listed, with
what their files tell.

Each run says what changed since the run before it (training settings and node
parameters, nodes added or removed). Rename and note edit ``run.json``; delete moves the
folder into ``<root>/.trash/`` so :func:`restore` can undo it.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..training.record import RUN_JSON, read_run_json, write_run_json
from ..training.runs import RUN_FILES, runs_root

TRASH = ".trash"
SKIP_DIRS = {"checkpoints", "tensorboard", TRASH, "__pycache__"}
MAX_DEPTH = 5
METRIC_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
               "test_accuracy")


class RunError(ValueError):
    """A run cannot be found or changed; the message says why."""


@dataclass
class Run:
    path: Path
    id: str  # the folder relative to the root it was found under
    name: str
    note: str = ""
    started: float = 0.0  # unix time
    duration_s: float | None = None
    device: str | None = None
    status: str = "unknown"
    error: str | None = None
    params: int | None = None
    epochs: int = 0
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    sweep: dict | None = None
    changes: list[str] = field(default_factory=list)  # versus the run before it

    def to_dict(self) -> dict:
        return {"id": self.id, "path": str(self.path), "name": self.name, "note": self.note,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
                "duration_s": self.duration_s, "device": self.device, "status": self.status,
                "error": self.error, "params": self.params, "epochs": self.epochs,
                "metrics": self.metrics, "changes": self.changes, "sweep": self.sweep}

    @property
    def weights(self) -> Path | None:
        """The run's final weights, else its newest checkpoint's weights."""
        w = self.path / "weights.safetensors"
        if w.exists():
            return w
        from ..training.checkpoint import list_checkpoints

        found = list_checkpoints(self.path / "checkpoints")
        return found[-1].with_suffix(".safetensors") if found else None

    def graph(self) -> dict | None:
        """The graph as trained (``graph.json``) as plain JSON data, or None."""
        return _read_json(self.path / "graph.json")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a run that is still writing
        if isinstance(row, dict):
            rows.append(row)
    return rows


def is_run_folder(path: Path) -> bool:
    return any((path / f).exists() for f in RUN_FILES) or (path / "trained.safetensors").exists()


def _alive(pid: Any, host: Any) -> bool:
    if host != socket.gethostname() or not isinstance(pid, int):
        return True  # cannot tell from here: believe the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def read_run(path: str | Path, root: str | Path | None = None) -> Run:
    """One run folder as a :class:`Run` (whatever it holds)."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    try:
        rid = path.relative_to(root).as_posix() or "."
    except ValueError:
        rid = str(path)
    info = read_run_json(path)
    rows = read_jsonl(path / "metrics.jsonl")
    config = _read_json(path / "config.json") or {}
    default = path.name if rid == "." else rid  # (a run without a name of its own)
    run = Run(path=path, id=rid, name=str(info.get("name") or default),
              note=str(info.get("note") or ""), config=config if isinstance(config, dict) else {})
    if info:
        run.started = float(info.get("started_unix") or 0.0)
        run.duration_s = info.get("duration_s")
        run.device, run.status, run.error = info.get("device"), info.get("status", "unknown"), info.get("error")
        run.params, run.epochs = info.get("params"), int(info.get("epochs") or 0)
        run.metrics = dict(info.get("metrics") or {})
        run.sweep = info.get("sweep")
        if run.status == "running" and not _alive(info.get("pid"), info.get("host")):
            run.status = "interrupted"
    else:  # a run from before run.json (or a DDP train.py run): what its files say
        files = [p for p in (path / "config.json", path / "metrics.jsonl",
                             path / "weights.safetensors", path / "trained.safetensors")
                 if p.exists()]
        times = [p.stat().st_mtime for p in files] or [path.stat().st_mtime]
        run.started = min(times)
        run.duration_s = round(max(times) - min(times), 3) if len(times) > 1 else None
        done = (path / "weights.safetensors").exists() or (path / "trained.safetensors").exists()
        run.status = "completed" if done else "unknown"
        run.epochs = int(rows[-1].get("epoch", len(rows))) if rows else 0
    if rows and (not run.metrics or run.status in ("running", "interrupted")):
        run.metrics = {k: rows[-1][k] for k in METRIC_KEYS if rows[-1].get(k) is not None}
        if isinstance(rows[-1].get("epoch"), int):
            run.epochs = max(run.epochs, rows[-1]["epoch"])
    return run


def find_runs(root: str | Path) -> list[Run]:
    """Every run folder under ``root`` (``root`` itself included), oldest first, each with
    what changed since the one before it."""
    root = Path(root)
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if is_run_folder(folder):
            found.append(folder)
        if depth >= MAX_DEPTH:
            return
        try:
            subs = sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in SKIP_DIRS)
        except OSError:
            return
        for sub in subs:
            walk(sub, depth + 1)

    if root.is_dir():
        walk(root, 0)
    runs = [read_run(p, root) for p in found]
    runs.sort(key=lambda r: (r.started, r.id))
    previous: Run | None = None
    for run in runs:
        run.changes = differences(previous, run) if previous is not None else []
        previous = run
    return runs


def graph_roots(file: str | Path) -> list[Path]:
    """Where the runs of graph ``file`` may be: the editor's runs folder for it, ``runs/
    <stem>`` in the current folder (``netbuilder train``'s default) and ``<stem>_ddp``
    (``netbuilder train --nproc``'s default)."""
    file = Path(file)
    candidates = [runs_root(file), Path.cwd() / "runs" / file.stem,
                  file.resolve().with_name(file.stem + "_ddp")]
    out: list[Path] = []
    for c in candidates:
        c = c.resolve()
        if c not in out and not any(c.is_relative_to(o) for o in out):
            out.append(c)
    return out


def runs_of(file: str | Path, roots: list[Path] | None = None) -> list[Run]:
    """Every run of graph ``file`` found under its run roots (see :func:`graph_roots`)."""
    runs: list[Run] = []
    for root in roots or graph_roots(file):
        runs.extend(find_runs(root))
    runs.sort(key=lambda r: (r.started, r.id))
    for i, run in enumerate(runs):
        run.changes = differences(runs[i - 1], run) if i else []
    return runs


# ---- what changed between two runs ----------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "none"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _nodes(graph: Any) -> dict[str, dict]:
    if not isinstance(graph, dict):
        return {}
    return {str(n.get("id")): n for n in graph.get("nodes", []) if isinstance(n, dict)}


def differences(before: Run, after: Run) -> list[str]:
    """Plain lines naming what ``after`` changed against ``before``: ``lr 0.01 -> 0.001``,
    ``hidden1.units 32 -> 64``, ``+dense3 (Dense)``, ``-drop1 (Dropout)``."""
    out = []
    a, b = before.config or {}, after.config or {}
    for key in sorted(set(a) | set(b)):
        if key in a and key in b and a[key] != b[key]:
            out.append(f"{key} {_fmt(a[key])} -> {_fmt(b[key])}")
    na, nb = _nodes(before.graph()), _nodes(after.graph())
    if na and nb:
        for nid in sorted(set(na) | set(nb)):
            if nid not in na:
                out.append(f"+{nid} ({nb[nid].get('type')})")
            elif nid not in nb:
                out.append(f"-{nid} ({na[nid].get('type')})")
            elif na[nid].get("type") != nb[nid].get("type"):
                out.append(f"{nid} {na[nid].get('type')} -> {nb[nid].get('type')}")
            else:
                pa, pb = na[nid].get("params") or {}, nb[nid].get("params") or {}
                for p in sorted(set(pa) | set(pb)):
                    if pa.get(p) != pb.get(p) and p in pa and p in pb:
                        out.append(f"{nid}.{p} {_fmt(pa[p])} -> {_fmt(pb[p])}")
    return out


# ---- curves ---------------------------------------------------------------------------
def curves(run: Run | str | Path) -> dict[str, tuple[list[float], list[float]]]:
    """The run's curves as ``name -> (x, y)``: per epoch ``train_loss``, ``val_loss``,
    ``train_accuracy``, ``val_accuracy``, ``lr``; per step ``step_loss`` and ``step_lr``
    (x is the epoch, fractional for steps, so both share one axis)."""
    path = run.path if isinstance(run, Run) else Path(run)
    rows = read_jsonl(path / "metrics.jsonl")
    out: dict[str, tuple[list[float], list[float]]] = {}
    for key in METRIC_KEYS[:4] + ("lr",):
        pts = [(float(r["epoch"]), float(r[key])) for r in rows
               if isinstance(r.get(key), (int, float)) and isinstance(r.get("epoch"), (int, float))]
        if pts:
            out[key] = ([p[0] for p in pts], [p[1] for p in pts])
    steps = read_jsonl(path / "steps.jsonl")
    spe = read_run_json(path).get("steps_per_epoch")
    if steps and isinstance(spe, int) and spe > 0:
        for key, name in (("loss", "step_loss"), ("lr", "step_lr")):
            pts = [((int(r["step"]) + 1) / spe, float(r[key])) for r in steps
                   if isinstance(r.get(key), (int, float)) and isinstance(r.get("step"), int)]
            if pts:
                out[name] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


# ---- rename, note, delete -------------------------------------------------------------
def _check(path: Path) -> Path:
    path = Path(path)
    if not path.is_dir() or not is_run_folder(path):
        raise RunError(f"{path}: not a run folder")
    return path


def _edit(path: Path, **fields) -> None:
    path = _check(path)
    info = read_run_json(path)
    if not info:  # an older run: start its run.json from what its files say
        r = read_run(path)
        info = {"format": "netbuilder-run", "version": 1, "name": r.name, "note": r.note,
                "started_unix": r.started, "status": r.status, "epochs": r.epochs,
                "metrics": r.metrics, "duration_s": r.duration_s}
    info.update(fields)
    try:
        write_run_json(path, info)
    except OSError as exc:
        raise RunError(f"cannot write {path / RUN_JSON}: {exc.strerror or exc}") from None


def rename(path: str | Path, name: str) -> None:
    name = str(name).strip()
    if not name:
        raise RunError("a run's name cannot be empty")
    _edit(Path(path), name=name)


def set_note(path: str | Path, note: str) -> None:
    _edit(Path(path), note=str(note))


def trash_dir(path: Path) -> Path:
    """The trash folder for a run: ``.trash`` beside the runs root it lies under."""
    path = Path(path).resolve()
    for parent in path.parents:
        if parent.name == "runs" or (parent / TRASH).is_dir():
            return parent / TRASH
    return path.parent / TRASH


def delete(path: str | Path) -> Path:
    """Move the run folder into the trash; returns where it went (for :func:`restore`)."""
    path = _check(Path(path)).resolve()
    trash = trash_dir(path)
    dest = trash / f"{path.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    k = 2
    while dest.exists():
        dest, k = trash / f"{path.name}-{time.strftime('%Y%m%d-%H%M%S')}-{k}", k + 1
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        (dest.parent / (dest.name + ".from")).write_text(str(path), encoding="utf-8")
        shutil.move(str(path), str(dest))
    except OSError as exc:
        raise RunError(f"cannot move {path} to the trash: {exc.strerror or exc}") from None
    return dest


def restore(trashed: str | Path) -> Path:
    """Put a deleted run back where it was; returns its folder."""
    trashed = Path(trashed)
    origin_file = trashed.parent / (trashed.name + ".from")
    try:
        origin = Path(origin_file.read_text(encoding="utf-8").strip())
    except OSError:
        raise RunError(f"{trashed}: not a deleted run (no record of where it came from)") from None
    if origin.exists():
        raise RunError(f"cannot restore {trashed}: {origin} exists again")
    try:
        origin.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(trashed), str(origin))
        origin_file.unlink(missing_ok=True)
    except OSError as exc:
        raise RunError(f"cannot restore {trashed}: {exc.strerror or exc}") from None
    return origin
