"""Hyper-parameter and structure sweeps with Optuna.

A sweep varies training settings (``lr``, ``batch_size``, ``optimizer``...) and numeric or
choice parameters of nodes (``dense1.units``, ``drop1.p``...; a structure search) of one
graph. Parameters are written as in ``netbuilder sweep``::

    lr=1e-4..1e-1:log        a float range, sampled on a log scale
    dense1.units=16..256:int  a whole-number range (``:int:log`` for both)
    batch_size=32,64,128      a choice among values

Optuna's TPE sampler picks each trial's values; a median pruner stops trials whose
validation loss lags the others' at the same epoch. Trials train in worker processes
(``jobs`` at once), each into its own run folder ``trial-NNNN/`` of the sweep's folder
(so the run index lists them), and the study lives in ``study.db`` (SQLite) beside them:
running the same sweep again resumes it (trials a stopped sweep left unfinished are run
again). A trial that fails (a loss that became NaN, a shape error from a structure change)
is recorded as failed with its reason, and the sweep goes on.

All storage writes happen in the process that runs :meth:`Sweep.run`; workers only train
and write their run folders, which the sweep reads to report each epoch to the pruner.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..serialization import dumps, load_graph, loads
from ..training.config import ConfigError, TrainConfig
from .index import read_jsonl
from .params import ParamSpec, SweepError, apply_values, parse_param  # noqa: F401 (re-exported)

OBJECTIVES = {"val_loss": "minimize", "val_accuracy": "maximize", "train_loss": "minimize",
              "train_accuracy": "maximize"}
STOP_FILE = "STOP"
POLL_S = 0.2


# ---- the worker side ------------------------------------------------------------------
def _worker_init(parent_pid: int) -> None:
    """In each worker: leave when the sweep's process dies (never orphaned)."""
    def watch():
        while True:
            time.sleep(0.5)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except OSError:
                pass
    threading.Thread(target=watch, daemon=True, name="watch-sweep").start()


def run_trial(spec: dict) -> dict:
    """Train one trial (in a worker process) into ``spec['folder']``; returns the final
    metrics dict, with ``status`` and ``error`` on failure. Never raises."""
    folder = Path(spec["folder"])
    try:
        import torch

        from ..training import Control, TrainConfig as Cfg, Trainer
        from ..training.record import read_run_json, write_run_json

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        doc = loads(spec["graph"], source="<sweep trial>")
        control = Control()
        done = threading.Event()

        def watch_stop():
            while not done.wait(POLL_S):
                if (folder / STOP_FILE).exists():
                    control.stop()
                    return
        threading.Thread(target=watch_stop, daemon=True).start()
        try:
            final = Trainer(doc, Cfg.from_dict(spec["config"]), out_dir=folder, control=control,
                            base_dir=spec.get("base_dir")).fit()
        finally:
            done.set()
        info = read_run_json(folder)
        if info:
            info["sweep"] = {"name": spec["sweep"], "trial": spec["number"],
                             "values": spec["values"]}
            write_run_json(folder, info)
        return {k: v for k, v in final.items() if isinstance(v, (int, float, str, type(None)))}
    except BaseException as exc:  # noqa: BLE001 - a trial's failure is data, not a crash
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}


# ---- the sweep ------------------------------------------------------------------------
@dataclass
class TrialInfo:
    """One trial as the CLI and the Sweep dialog show it."""
    number: int
    state: str  # running | complete | pruned | failed
    values: dict
    objective: float | None = None
    params: int | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    epochs: int | None = None
    error: str | None = None
    folder: str | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


class Sweep:
    """A sweep over ``params`` of the graph in ``file``; its folder holds ``study.db`` and
    the trials' run folders. Constructing it checks every argument (SweepError)."""

    def __init__(self, file: str | Path, params: list[str], trials: int = 20, jobs: int = 1,
                 name: str | None = None, objective: str | None = None,
                 epochs: int | None = None, seed: int = 0, prune: bool = True,
                 folder: str | Path | None = None, doc=None):
        from ..training.runs import runs_root

        self.file = Path(file)
        if doc is None:
            from ..serialization import GraphFileError

            try:
                doc = load_graph(self.file)
            except GraphFileError as exc:
                first = f": {exc.problems[0]}" if exc.problems else ""
                raise SweepError(f"cannot load {exc.source}{first}") from None
        self.doc = doc
        if trials < 1:
            raise SweepError(f"--trials must be at least 1 (received {trials})")
        if jobs < 1:
            raise SweepError(f"--jobs must be at least 1 (received {jobs})")
        if not params:
            raise SweepError("no --param given: name at least one setting or node parameter "
                             "to vary, e.g. --param lr=1e-4..1e-1:log")
        try:
            self.config = TrainConfig.from_dict(doc.training).to_dict()
        except ConfigError as exc:
            raise SweepError(f"{self.file}: {exc}") from None
        if epochs is not None:
            if epochs < 1:
                raise SweepError(f"--epochs must be at least 1 (received {epochs})")
            self.config["epochs"] = epochs
        self.specs = [parse_param(p, doc, self.config) for p in params]
        dup = [s.name for i, s in enumerate(self.specs) if s.name in [t.name for t in self.specs[:i]]]
        if dup:
            raise SweepError(f"--param {dup[0]} is given twice")
        if objective is None:
            objective = "val_loss" if self.config["val_split"] > 0 else "train_loss"
        if objective not in OBJECTIVES:
            raise SweepError(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
        if objective.startswith("val") and not self.config["val_split"] > 0:
            raise SweepError(f"--objective {objective}: the graph's training settings hold out "
                             "no validation data (val_split is 0)")
        self.objective, self.direction = objective, OBJECTIVES[objective]
        self.trials, self.jobs, self.seed, self.prune = trials, jobs, seed, prune
        self.name = name or time.strftime("%Y%m%d-%H%M%S")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise SweepError(f"--name {self.name!r}: use letters, digits, '.', '_' and '-'")
        root = runs_root(self.file if self.file.exists() else None,
                         (doc.metadata or {}).get("name") or self.file.stem)
        self.folder = Path(folder) if folder else root / "sweeps" / self.name
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self._stop = threading.Event()
        self.study = self._open_study()

    # ---- the study ---------------------------------------------------------------------
    def _open_study(self):
        optuna = _optuna()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepError(f"cannot create the sweep folder {self.folder}: "
                             f"{exc.strerror or exc}") from None
        storage = f"sqlite:///{(self.folder / 'study.db').resolve()}"
        sampler = optuna.samplers.TPESampler(
            seed=self.seed, n_startup_trials=min(10, max(2, self.trials // 3)),
            constant_liar=self.jobs > 1)
        pruner = (optuna.pruners.MedianPruner(n_startup_trials=max(2, self.jobs),
                                              n_warmup_steps=max(1, self.config["epochs"] // 4))
                  if self.prune else optuna.pruners.NopPruner())
        study = optuna.create_study(study_name="sweep", storage=storage, sampler=sampler,
                                    pruner=pruner, direction=self.direction, load_if_exists=True)
        spec = {"params": [s.text for s in self.specs], "objective": self.objective,
                "graph": str(self.file)}
        old = study.user_attrs.get("spec")
        if old is None:
            study.set_user_attr("spec", spec)
        elif old["params"] != spec["params"] or old["objective"] != spec["objective"]:
            raise SweepError(
                f"sweep {self.name!r} ({self.folder}) was started with "
                f"{' '.join('--param ' + p for p in old['params'])} --objective "
                f"{old['objective']}: give the same to resume it, or another --name")
        self.study = study
        self._requeue_running()  # a sweep killed while trials ran
        return study

    def _requeue_running(self) -> None:
        """Trials left running by a stopped sweep: failed as interrupted, and queued to run
        again with the same values."""
        optuna = _optuna()
        storage = self.study._storage
        for t in self.study.get_trials(deepcopy=False):
            if t.state == optuna.trial.TrialState.RUNNING:
                storage.set_trial_user_attr(t._trial_id, "error", "interrupted: the sweep "
                                            "stopped while this trial ran")
                storage.set_trial_user_attr(t._trial_id, "interrupted", True)
                storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
                self.study.enqueue_trial(t.params, skip_if_exists=False)

    def finished(self) -> int:
        """Trials that ran to an end (complete, pruned or failed; not interrupted ones)."""
        optuna = _optuna()
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                optuna.trial.TrialState.FAIL)
        return sum(1 for t in self.study.get_trials(deepcopy=False)
                   if t.state in done and not t.user_attrs.get("interrupted"))

    def trial_infos(self) -> list[TrialInfo]:
        optuna = _optuna()
        names = {optuna.trial.TrialState.COMPLETE: "complete",
                 optuna.trial.TrialState.PRUNED: "pruned", optuna.trial.TrialState.FAIL: "failed",
                 optuna.trial.TrialState.RUNNING: "running",
                 optuna.trial.TrialState.WAITING: "waiting"}
        out = []
        for t in self.study.get_trials(deepcopy=False):
            a = t.user_attrs
            out.append(TrialInfo(
                number=t.number, state=names.get(t.state, str(t.state)), values=dict(t.params),
                objective=t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
                params=a.get("params"), val_accuracy=a.get("val_accuracy"),
                val_loss=a.get("val_loss"), epochs=a.get("epochs"), error=a.get("error"),
                folder=a.get("folder"), duration_s=a.get("duration_s")))
        return out

    def best(self) -> TrialInfo | None:
        done = [t for t in self.trial_infos() if t.state == "complete" and t.objective is not None]
        if not done:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(done, key=lambda t: t.objective)

    def stop(self) -> None:
        """Ask a running sweep to stop: running trials are stopped (and run again on resume)."""
        self._stop.set()

    # ---- running -------------------------------------------------------------------------
    def run(self, on_update: Callable[[TrialInfo], Any] | None = None) -> TrialInfo | None:
        """Run trials until ``trials`` have ended (counting those of earlier sessions);
        ``on_update`` gets each trial as it starts, reports an epoch and ends. Returns the
        best trial."""
        notify = on_update or (lambda info: None)
        ctx = mp.get_context("spawn")
        pool = cf.ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_worker_init,
                                      initargs=(os.getpid(),))
        running: dict[cf.Future, dict] = {}
        try:
            while True:
                while (len(running) < self.jobs and not self._stop.is_set()
                       and self.finished() + len(running) < self.trials):
                    job = self._launch(pool, notify)
                    if job is not None:
                        running[job["future"]] = job
                if not running:
                    break
                done, _ = cf.wait(list(running), timeout=POLL_S,
                                  return_when=cf.FIRST_COMPLETED)
                for job in running.values():
                    self._report(job, notify)
                for fut in done:
                    self._end(running.pop(fut), fut, notify)
                if self._stop.is_set():
                    for job in running.values():
                        (job["folder"] / STOP_FILE).touch()
        except BaseException:
            for job in running.values():
                try:
                    (job["folder"] / STOP_FILE).touch()
                except OSError:
                    pass
            pool.shutdown(wait=True, cancel_futures=True)
            self._requeue_running()
            raise
        pool.shutdown(wait=True)
        self._requeue_running()  # trials stopped on request run again on resume
        return self.best()

    def _launch(self, pool, notify) -> dict | None:
        optuna = _optuna()
        trial = self.study.ask()
        values = {s.name: s.suggest(trial) for s in self.specs}
        info = TrialInfo(number=trial.number, state="running", values=values)
        doc, config = apply_values(self.doc, self.config, self.specs, values)
        if "threads" not in values:
            config["threads"] = self.threads
        problem = self._check_trial(doc, config, trial)
        if problem is not None:
            trial.set_user_attr("error", problem)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            info.state, info.error = "failed", problem
            info.params = trial.user_attrs.get("params")
            notify(info)
            return None
        folder = self.folder / f"trial-{trial.number:04d}"
        if folder.exists():  # a trial run again after an interruption: its old files aside
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        trial.set_user_attr("folder", str(folder))
        base = self.file.resolve().parent if self.file.exists() else None
        spec = {"folder": str(folder), "graph": dumps(doc), "config": config,
                "base_dir": str(base) if base else None, "threads": config.get("threads"),
                "sweep": self.name, "number": trial.number, "values": values}
        info.params, info.folder = trial.user_attrs.get("params"), str(folder)
        notify(info)
        return {"future": pool.submit(run_trial, spec), "trial": trial, "folder": folder,
                "info": info, "seen": 0, "pruned": False, "t0": time.time()}

    def _check_trial(self, doc, config, trial) -> str | None:
        """Why this trial cannot train (a refused value, a shape error), else None; records
        the parameter count."""
        from ..pipeline import check

        try:
            TrainConfig.from_dict(config)
        except ConfigError as exc:
            return str(exc)
        try:
            analysis, diags = check(doc)
        except Exception as exc:  # noqa: BLE001 - a structure the analysis cannot handle
            return f"{type(exc).__name__}: {exc}"
        if analysis is not None and analysis.total_params is not None:
            trial.set_user_attr("params", int(analysis.total_params))
        errors = [str(d) for d in diags if d.is_error]
        return "; ".join(errors[:3]) if errors else None

    def _report(self, job: dict, notify) -> None:
        """Epochs the trial finished since the last look: to the pruner (validation loss;
        negated in a maximising study, so that higher is better there too)."""
        rows = read_jsonl(job["folder"] / "metrics.jsonl")
        new = rows[job["seen"]:]
        if not new or job["pruned"]:
            return
        job["seen"] = len(rows)
        trial, info = job["trial"], job["info"]
        for r in new:
            loss = r.get("val_loss", r.get("train_loss"))
            if isinstance(loss, (int, float)) and math.isfinite(loss) and isinstance(r.get("epoch"), int):
                trial.report(-loss if self.direction == "maximize" else loss, r["epoch"])
        last = new[-1]
        info.epochs, info.val_loss, info.val_accuracy = (last.get("epoch"), last.get("val_loss"),
                                                         last.get("val_accuracy"))
        if self.prune and trial.should_prune():
            job["pruned"] = True
            (job["folder"] / STOP_FILE).touch()
        notify(info)

    def _end(self, job: dict, fut: cf.Future, notify) -> None:
        optuna = _optuna()
        trial, info = job["trial"], job["info"]
        try:
            final = fut.result()
        except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory)
            final = {"status": "error", "error": f"the trial's process ended: {exc}"}
        self._report(job, lambda i: None)
        (job["folder"] / STOP_FILE).unlink(missing_ok=True)
        attrs = {"val_accuracy": final.get("val_accuracy"), "val_loss": final.get("val_loss"),
                 "train_loss": final.get("train_loss"), "epochs": final.get("epochs"),
                 "duration_s": round(time.time() - job["t0"], 3)}
        for k, v in attrs.items():
            if v is not None:
                trial.set_user_attr(k, v)
        info.duration_s, info.epochs = attrs["duration_s"], final.get("epochs")
        info.val_accuracy, info.val_loss = final.get("val_accuracy"), final.get("val_loss")
        status = final.get("status")
        value = final.get(self.objective)
        if job["pruned"] and status == "stopped":
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            info.state = "pruned"
        elif status == "stopped":  # the sweep was stopped: left to run again on resume
            info.state = "stopped"
        elif status == "error" or not isinstance(value, (int, float)) or not math.isfinite(value):
            reason = final.get("error") or f"the run ended without a {self.objective}"
            trial.set_user_attr("error", reason)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            info.state, info.error = "failed", reason
        else:
            self.study.tell(trial, float(value))
            info.state, info.objective = "complete", float(value)
        self._mark_run(job["folder"], info)
        notify(info)

    def _mark_run(self, folder: Path, info: TrialInfo) -> None:
        """The trial's state in its run folder's run.json (the run index shows it)."""
        from ..training.record import read_run_json, write_run_json

        run = read_run_json(folder)
        if not run:
            return
        run["sweep"] = {**(run.get("sweep") or {}), "name": self.name, "trial": info.number,
                        "values": info.values, "state": info.state}
        if info.state == "pruned":
            run["status"] = "pruned"
        try:
            write_run_json(folder, run)
        except OSError:
            pass


def summary_json(sweep: Sweep) -> dict:
    best = sweep.best()
    return {"sweep": sweep.name, "folder": str(sweep.folder), "objective": sweep.objective,
            "direction": sweep.direction, "best": best.to_dict() if best else None,
            "trials": [t.to_dict() for t in sweep.trial_infos()]}
