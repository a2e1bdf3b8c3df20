"""TrainingController: runs a Trainer outside the UI thread and turns its events into signals.

By default the Trainer runs in a spawned process (see docs/decisions.md, "Training runs in
a separate process"): a crash, an out-of-memory kill or a hung step there cannot take the
editor down, and the GIL is not shared with the UI. ``mode="thread"`` runs it in a QThread
instead, for comparison. Either way events land in a queue and a ~30 Hz QTimer drains the
queue in the UI thread and emits them in one batch: the UI never handles a message per step.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import time
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from .worker import DONE, BatchSender, child_main, run_training

IDLE, STARTING, RUNNING, PAUSED, STOPPING, FINISHED, STOPPED, FAILED = (
    "idle", "starting", "running", "paused", "stopping", "finished", "stopped", "failed")
ACTIVE_STATES = (STARTING, RUNNING, PAUSED, STOPPING)


def _make_control(ctx: Any = None) -> Any:
    from runtime.training import Control

    if ctx is not None:
        try:
            return Control(ctx=ctx)
        except TypeError:
            pass
    return Control()


class _TrainerThread(QThread):
    def __init__(self, doc_json: str, config: dict, put, control, threads=None, parent=None,
                 out_dir: str | None = None, base_dir: str | None = None):
        super().__init__(parent)
        self._args = (doc_json, config, put, control)
        self._threads = threads
        self._dirs = (out_dir, base_dir)

    def run(self) -> None:  # noqa: D401 - Qt override
        if self._threads:
            import torch

            torch.set_num_threads(self._threads)  # process-wide: the UI shares these cores
        doc_json, config, put, control = self._args
        sender = BatchSender(put)
        run_training(doc_json, config, sender.put, control, *self._dirs)
        sender.close()


class TrainingController(QObject):
    """Start/pause/resume/stop/step one training run and report what it does.

    Signals: ``events_received(list)`` with every event drained in one timer tick (in
    order); ``state_changed(str)``; ``failed(str)`` with a message a user can read.
    """

    events_received = Signal(list)
    state_changed = Signal(str)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None, mode: str = "process",
                 poll_hz: float = 30.0, max_batch: int = 20000,
                 torch_threads: int | None = -1):
        super().__init__(parent)
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', not {mode!r}")
        self.mode = mode
        self.max_batch = max_batch
        # -1: one core fewer than the machine has, so the UI keeps a core (on a busy
        # 2-core machine, torch's OpenMP threads spinning against the UI thread cost 10x;
        # see docs/decisions.md). None: torch's default.
        self.torch_threads = (max(1, (os.cpu_count() or 2) - 1) if torch_threads == -1
                              else torch_threads)
        self.state = IDLE
        self.error: str | None = None
        self.last_started: dict | None = None
        self.out_dir: str | None = None  # the current (or last) run's folder
        self._queue: Any = None
        self._control: Any = None
        self._process: Any = None
        self._thread: _TrainerThread | None = None
        self._done = False
        self._stop_deadline: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, int(1000 / poll_hz)))
        self._timer.timeout.connect(self.poll)

    # ---- commands --------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def start(self, document: Any, config: dict | None = None, out_dir: str | None = None,
              base_dir: str | None = None) -> None:
        """Start training ``document`` with ``config`` (default: ``document.training``).
        ``out_dir``: the run folder (checkpoints, final weights); ``base_dir``: the folder
        relative data paths resolve against (the graph file's)."""
        if self.active:
            raise RuntimeError("a training run is already active; stop it first")
        from runtime.serialization import dumps

        doc_json = dumps(document)
        config = dict(document.training if config is None else config)
        self.error = None
        self._done = False
        self._stop_deadline = None
        self.last_started = None
        self.out_dir = out_dir
        if self.mode == "process":
            ctx = mp.get_context("spawn")
            self._queue = ctx.Queue()
            self._control = _make_control(ctx)
            self._process = ctx.Process(
                target=child_main, name="netbuilder-training", daemon=True,
                args=(doc_json, config, self._queue, self._control, self.torch_threads,
                      out_dir, base_dir))
            self._process.start()
        else:
            self._queue = queue_mod.SimpleQueue()
            self._control = _make_control()
            self._thread = _TrainerThread(doc_json, config, self._queue.put, self._control,
                                          self.torch_threads, self, out_dir, base_dir)
            self._thread.start()
        self._set_state(STARTING)
        self._timer.start()

    def pause(self) -> None:
        if self.state in (STARTING, RUNNING):
            self._control.pause()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self.state == PAUSED:
            self._control.resume()
            self._set_state(RUNNING)

    def step(self) -> None:
        """One optimisation step while paused."""
        if self.state == PAUSED:
            self._control.step()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the run to stop; a process that does not stop in ``timeout_s`` is terminated."""
        if not self.active or self.state == STOPPING:
            return
        self._control.stop()
        self._stop_deadline = time.monotonic() + timeout_s
        self._set_state(STOPPING)

    def set_probe(self, node_id: str | None) -> None:
        if self._control is not None and hasattr(self._control, "set_probe"):
            self._control.set_probe(node_id)

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Stop and wait (used when the window closes); never leaves a child behind."""
        if self._control is not None and self.active:
            self._control.stop()
        if self._process is not None:
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(1.0)
        if self._thread is not None:
            self._thread.wait(int(timeout_s * 1000))
        self._timer.stop()

    # ---- polling ---------------------------------------------------------------------
    def poll(self) -> None:
        """Drain the queue (bounded per tick), emit the batch, then check the worker lives."""
        batch: list[dict] = []
        q = self._queue
        if q is None:
            return
        while len(batch) < self.max_batch:
            try:
                msg = q.get_nowait() if self.mode == "thread" else q.get(block=False)
            except (queue_mod.Empty, EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001 - a corrupt message must not kill the UI
                self._fail(f"could not read a message from the training process: {exc}")
                break
            self._accept(msg if isinstance(msg, list) else [msg], batch)
        if batch:
            self.events_received.emit(batch)
        if self.error is not None and self.state != FAILED:
            self._fail(self.error)
        self._check_worker()

    def _accept(self, events: list, batch: list[dict]) -> None:
        for ev in events:
            if not isinstance(ev, dict):
                continue
            kind = ev.get("event")
            if kind == DONE:
                self._done = True
                continue
            if kind == "started":
                self.last_started = ev
                if self.state == STARTING:
                    self._set_state(RUNNING)
            elif kind == "error" and self.error is None:
                self.error = _error_text(ev)
            batch.append(ev)

    def _check_worker(self) -> None:
        alive = (self._process.is_alive() if self._process is not None
                 else self._thread is not None and self._thread.isRunning())
        if alive and not self._done:  # (after DONE the process only tears down: not waited)
            if self._stop_deadline is not None and time.monotonic() > self._stop_deadline \
                    and self._process is not None:
                self._process.terminate()
                self._stop_deadline = None
            return
        if not self._done:
            # The worker is gone; its last events may have arrived after this tick's drain.
            if self._drain_rest():
                return
            if self._process is not None:
                code = self._process.exitcode
                why = (f"was killed by signal {-code}" if code is not None and code < 0
                       else f"exited with code {code}")
                hint = " (probably out of memory)" if code == -9 else ""
            else:  # (run_training reports every exception, so this is unexpected)
                why, hint = "ended", ""
            if self.state == STOPPING:
                self._finish(STOPPED)
            else:
                what = "process" if self._process is not None else "thread"
                self._fail(f"the training {what} {why}{hint} before finishing; "
                           "the document is unchanged")
            return
        if self.state == FAILED:
            self._finish(FAILED)
        elif self.state == STOPPING:
            self._finish(STOPPED)
        else:
            self._finish(FINISHED)

    def _drain_rest(self) -> bool:
        """After the process ended: read what it left in the pipe; True if anything."""
        try:
            msg = self._queue.get(timeout=0.05)
        except Exception:  # noqa: BLE001
            return False
        batch: list[dict] = []
        self._accept(msg if isinstance(msg, list) else [msg], batch)
        if batch:
            self.events_received.emit(batch)
        if self.error is not None and self.state != FAILED:
            self._fail(self.error)
        return True

    def _fail(self, message: str) -> None:
        self.error = message
        if self.state != FAILED:
            self._set_state(FAILED)
            self.failed.emit(message)

    def _finish(self, state: str) -> None:
        self._timer.stop()
        if self._process is not None:
            self._process.join(0.05)  # exits on its own; multiprocessing reaps it later
            self._process = None
        self._thread = None
        self._queue = None
        self._stop_deadline = None
        if self.state != state:
            self._set_state(state)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)


def _error_text(ev: dict) -> str:
    msg = str(ev.get("message") or "training failed")
    if ev.get("step") is not None:
        msg += f" (at step {ev['step']})"
    if ev.get("checkpoint"):
        msg += f"; last good checkpoint: {ev['checkpoint']}"
    return msg
