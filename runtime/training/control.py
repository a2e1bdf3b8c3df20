"""Cooperative run control: pause, resume, stop, single step, probe node.

Built on multiprocessing Events and shared memory, so one Control works across threads
and across a spawned training process (pass it as a Process argument). The trainer
calls :meth:`wait` before every step; nothing is interrupted mid-step.
"""
from __future__ import annotations

import multiprocessing as mp


class Control:
    def __init__(self, ctx=None):
        ctx = ctx or mp.get_context("spawn")
        self._running = ctx.Event()
        self._running.set()
        self._stop = ctx.Event()
        self._step = ctx.Event()
        self._probe = ctx.Array("c", 256)
        self._probe_version = ctx.Value("i", 0)

    # ---- called by the UI / controller ----
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused trainer so it can stop

    def step(self) -> None:
        """Run exactly one step while paused."""
        self._step.set()

    def set_probe(self, node_id: str | None) -> None:
        with self._probe_version.get_lock():
            self._probe.value = (node_id or "").encode()[:255]
            self._probe_version.value += 1

    # ---- called by the trainer ----
    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def probe(self) -> tuple[int, str | None]:
        """(version, node id); the version changes whenever set_probe is called."""
        with self._probe_version.get_lock():
            return self._probe_version.value, (self._probe.value.decode() or None)

    def wait(self, poll: float = 0.05) -> bool:
        """Block while paused; True to take the next step, False to stop."""
        while True:
            if self._stop.is_set():
                return False
            if self._running.is_set():
                return True
            if self._step.is_set():
                self._step.clear()
                return True
            parent = mp.parent_process()
            if parent is not None and not parent.is_alive():  # orphaned: stop
                self._stop.set()
                return False
            self._running.wait(poll)
