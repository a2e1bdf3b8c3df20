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


def run_training(doc_json: str, config: dict[str, Any], put: Callable[[dict], Any],
                 control: Any) -> None:
    """Build the document and the Trainer, fit, and report any failure as an error event."""
    try:
        from runtime.serialization import loads
        from runtime.training import TrainConfig, Trainer

        doc = loads(doc_json, source="<training document>")
        cfg = TrainConfig.from_dict(config)
        Trainer(doc, cfg, on_event=put, control=control).fit()
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
               torch_threads: int | None = None) -> None:
    """Entry point of the spawned training process."""
    threading.Thread(target=_watch_parent, args=(queue, control), daemon=True,
                     name="watch-parent").start()
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    run_training(doc_json, config, queue.put, control)
    queue.close()
    queue.join_thread()  # flush the last events (the watcher exits if the parent is gone)
