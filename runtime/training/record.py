"""The record a training run leaves in its run folder, whoever started it (editor, CLI,
sweep trial): the Trainer passes its events through a :class:`RunRecorder` when it has an
``out_dir``.

- ``run.json``: name, note, start and end time, active duration, device, status, error,
  parameter count and final metrics (``status`` is ``running`` while it trains; a run whose
  process died stays ``running`` on disk and is shown as ``interrupted``);
- ``config.json``: the training settings in force; ``graph.json``: the graph as trained
  (what :mod:`runtime.experiments.index` compares to say what changed between runs);
- ``metrics.jsonl``: one row per epoch (losses, accuracies, the learning rate at the end
  of the epoch); ``steps.jsonl``: step, loss and learning rate, thinned to at most
  ``MAX_STEP_ROWS`` rows for long runs;
- ``tensorboard/``: TensorBoard event files when the ``tensorboard`` package is installed
  (see :mod:`runtime.training.tboard`).

A failure to write the record never stops training: it is reported once as a warning.
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

RUN_JSON = "run.json"
MAX_STEP_ROWS = 20_000
EPOCH_SKIP = ("event", "confusion", "misclassified")


def json_safe(value: Any) -> Any:
    """NaN and infinities become null, recursively (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def read_run_json(folder: str | Path) -> dict:
    """``run.json`` of a run folder as a dict; {} when missing or unreadable."""
    try:
        data = json.loads((Path(folder) / RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_run_json(folder: str | Path, data: dict) -> None:
    from ..serialization import atomic_write_text

    atomic_write_text(Path(folder) / RUN_JSON, json.dumps(json_safe(data), indent=2) + "\n")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


def _trim_jsonl(path: Path, keep: Callable[[dict], bool]) -> None:
    """Keep only the rows of a JSON-lines file for which ``keep`` is true."""
    if not path.exists():
        return
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if keep(json.loads(line)):
                rows.append(line)
        except (ValueError, TypeError, AttributeError):
            continue
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")


class RunRecorder:
    """An ``on_event`` callable: records the event in the run folder, then forwards it."""

    def __init__(self, trainer: Any, forward: Callable[[dict], Any]):
        self.trainer = trainer
        self.forward = forward
        self.out = Path(trainer.out_dir)
        self.t0 = time.time()
        self.info: dict | None = None
        self.files: dict[str, Any] = {}
        self.stride = 1
        self.lr: float | None = None
        self.error: str | None = None
        self.broken = False
        self.tb = None

    def __call__(self, event: dict) -> Any:
        if not self.broken:
            try:
                self._record(event)
            except OSError as exc:
                self.broken = True
                self._close()
                self.forward({"event": "warning", "node": None, "message": (
                    f"cannot write the run record in {self.out}: {exc.strerror or exc}; "
                    "training goes on")})
        return self.forward(event)

    # ---- events ----------------------------------------------------------------------
    def _record(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "started":
            self._started(e)
        elif kind == "step":
            self.lr = e.get("lr")
            if "steps" in self.files and e["step"] % self.stride == 0:
                g = e.get("grad_norm")  # (loss is finite: the trainer stops before a NaN)
                self.files["steps"].write(json.dumps(
                    {"step": e["step"], "epoch": e["epoch"], "loss": e["loss"], "lr": e["lr"],
                     "grad_norm": g if g is None or math.isfinite(g) else None}) + "\n")
        elif kind == "epoch":
            row = {k: v for k, v in e.items() if k not in EPOCH_SKIP}
            if self.lr is not None:
                row["lr"] = self.lr
            if "metrics" in self.files:
                self._row("metrics", row)
                for f in self.files.values():
                    f.flush()
            # (run.json is written at the start and the end only: an fsync per epoch cost
            # more than the epoch of a small model; the index reads a live run's
            # metrics.jsonl)
        elif kind == "error" and self.error is None:
            self.error = e.get("message")
        elif kind == "finished":
            self._finished(e.get("metrics") or {})
        if self.tb is not None:
            self.tb.event(e)

    def _started(self, e: dict) -> None:
        tr = self.trainer
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = getattr(tr, "_resume_state", None) is not None
        step0 = int(tr.state["step"]) if resumed else 0
        from ..serialization import atomic_write_text, dumps

        atomic_write_text(self.out / "config.json", json.dumps(tr.cfg.to_dict(), indent=2) + "\n")
        atomic_write_text(self.out / "graph.json", dumps(tr.doc))
        old = read_run_json(self.out) if resumed else {}
        if resumed:  # metrics.jsonl was trimmed by runs.trim_after; steps the same way
            _trim_jsonl(self.out / "steps.jsonl", lambda r: int(r.get("step", 0)) < step0)
        else:
            for name in ("metrics.jsonl", "steps.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        total = int(e.get("total_steps") or 0)
        self.stride = max(1, math.ceil(total / MAX_STEP_ROWS))
        self.files = {"metrics": open(self.out / "metrics.jsonl", "a", encoding="utf-8"),
                      "steps": open(self.out / "steps.jsonl", "a", encoding="utf-8")}
        self.info = {
            "format": "netbuilder-run", "version": 1,
            "name": old.get("name"), "note": old.get("note", ""),
            "graph": tr.doc.metadata.get("name") if tr.doc.metadata else None,
            "started": old.get("started") or _iso(self.t0),
            "started_unix": old.get("started_unix") or self.t0,
            "ended": None, "duration_s": old.get("duration_s", 0.0),
            "status": "running", "error": None, "device": e.get("device"),
            "params": e.get("params"), "epochs_planned": e.get("epochs"),
            "total_steps": total, "steps_per_epoch": e.get("steps_per_epoch"),
            "epochs": old.get("epochs", 0),
            "metrics": old.get("metrics", {}),
            "resumed_at_step": step0 if resumed else None,
            "pid": os.getpid(), "host": socket.gethostname(),
            **{k: v for k, v in old.items() if k in ("sweep", "trial")},
        }
        self._prior_s = float(old.get("duration_s") or 0.0)
        write_run_json(self.out, self.info)
        from . import tboard

        self.tb = tboard.open_writer(self.out, tr, purge_step=step0 if resumed else None)

    def _finished(self, final: dict) -> None:
        now = time.time()
        metrics = _final_metrics(final)
        info = self.info or {  # setup failed: no "started" event, still a record
            "format": "netbuilder-run", "version": 1, "name": None, "note": "",
            "graph": self.trainer.doc.metadata.get("name") if self.trainer.doc.metadata else None,
            "started": _iso(self.t0), "started_unix": self.t0, "device": None, "params": None,
            "epochs": 0, "pid": os.getpid(), "host": socket.gethostname()}
        if self.info is None:
            self.out.mkdir(parents=True, exist_ok=True)
            self._prior_s = 0.0
        info.update(status=final.get("status", "completed"),
                    error=final.get("error") or (self.error if final.get("status") == "error"
                                                 else None),
                    ended=_iso(now), duration_s=round(self._prior_s + now - self.t0, 3),
                    metrics=metrics or info.get("metrics", {}),
                    epochs=final.get("epochs", info.get("epochs", 0)))
        self.info = info
        write_run_json(self.out, info)
        self._close(final)

    def _row(self, name: str, row: dict) -> None:
        self.files[name].write(json.dumps(json_safe(row)) + "\n")

    def _close(self, final: dict | None = None) -> None:
        for f in self.files.values():
            try:
                f.close()
            except OSError:
                pass
        self.files = {}
        if self.tb is not None:
            self.tb.close(final)
            self.tb = None


def _final_metrics(row: dict) -> dict:
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
            "test_accuracy")
    return {k: row[k] for k in keys if row.get(k) is not None}
