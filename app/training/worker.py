"""What runs on the training side: Qt-free, so a spawned child imports no GUI code.

The child receives the document as JSON text (the same format as a saved file, so nothing
is pickled but plain data), builds the Trainer and sends every event dict to a queue. It
watches its parent and stops when the parent dies, so it is never orphaned.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any, Callable

DONE = "_done"  # sentinel event: the training function has returned (sent last)
FLUSH_S = 0.02  # events travel in batches at most this old: one pickle + write per batch


class BatchSender:
    """Collects event dicts and sends them as lists: per-step messages would cost a pickle,
    a pipe write and a GIL hand-off each, on both sides. A daemon thread flushes a batch
    that has waited ``FLUSH_S`` even when no new event comes (e.g. while paused)."""

    def __init__(self, send: Callable[[list], Any], flush_s: float = FLUSH_S):
        self._send = send
        self._flush_s = flush_s
        self._lock = threading.Lock()
        self._batch: list[dict] = []
        self._since = 0.0
        self._closed = False
        threading.Thread(target=self._flusher, daemon=True, name="event-flusher").start()

    def put(self, event: dict) -> None:
        now = time.monotonic()
        with self._lock:  # sending under the lock keeps batches in order (DONE last)
            if not self._batch:
                self._since = now
            self._batch.append(event)
            if now - self._since < self._flush_s and event.get("event") not in (DONE, "error"):
                return
            batch, self._batch = self._batch, []
            self._send(batch)

    def flush(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, []
            if batch:
                self._send(batch)

    def close(self) -> None:
        self.flush()
        self._closed = True

    def _flusher(self) -> None:
        while not self._closed:
            time.sleep(self._flush_s)
            with self._lock:
                stale = self._batch and time.monotonic() - self._since >= self._flush_s
            if stale:
                self.flush()


def run_training(doc_json: str, config: dict[str, Any], put: Callable[[dict], Any],
                 control: Any, out_dir: str | None = None, base_dir: str | None = None) -> None:
    """Build the document and the Trainer, fit, and report any failure as an error event.

    ``out_dir``: the run folder (per-epoch checkpoints, final weights.safetensors);
    ``base_dir``: the graph file's folder, against which relative data and init_weights
    paths resolve."""
    try:
        from runtime.serialization import loads
        from runtime.training import TrainConfig, Trainer

        doc = loads(doc_json, source="<training document>")
        cfg = TrainConfig.from_dict(config)
        Trainer(doc, cfg, on_event=put, control=control, out_dir=out_dir,
                base_dir=base_dir).fit()
    except MemoryError:
        put({"event": "error", "step": None, "checkpoint": None,
             "message": "training ran out of memory; try a smaller batch size or model"})
    except BaseException as exc:  # noqa: BLE001 - everything must reach the UI as a message
        put({"event": "error", "step": None, "checkpoint": None,
             "message": f"{type(exc).__name__}: {exc}",
             "traceback": traceback.format_exc(limit=8)})
    finally:
        put({"event": DONE})


def _watch_parent(queue: Any, control: Any, period_s: float = 0.5) -> None:
    import multiprocessing as mp

    parent = mp.parent_process()
    while parent is not None:
        time.sleep(period_s)
        if not parent.is_alive():
            try:
                control.stop()
            except Exception:  # noqa: BLE001
                pass
            queue.cancel_join_thread()  # nobody will read: never block on a full pipe
            time.sleep(2.0)  # let a cooperative stop finish, then leave regardless
            os._exit(3)


def child_main(doc_json: str, config: dict[str, Any], queue: Any, control: Any,
               torch_threads: int | None = None, out_dir: str | None = None,
               base_dir: str | None = None) -> None:
    """Entry point of the spawned training process."""
    threading.Thread(target=_watch_parent, args=(queue, control), daemon=True,
                     name="watch-parent").start()
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    sender = BatchSender(queue.put)
    run_training(doc_json, config, sender.put, control, out_dir, base_dir)
    sender.close()
    queue.close()
    queue.join_thread()  # flush the last events (the watcher exits if the parent is gone)
