"""Load torch and the kernels shape analysis needs, off the UI thread.

The first live analysis of a session imports torch (about 0.7 s here) and, at the first
convolution on a meta tensor, torch._dynamo (another 0.8-1.1 s). Done on the UI thread
that froze the window for 1.5-2 s right after it appeared. A background thread does
those imports once instead (a tiny analysis of a graph with the common layer kinds);
the scheduled live analysis waits for it, so the window keeps repainting and taking
input meanwhile. Python threads share the GIL, so the UI still loses some time slices,
but no long stall (docs/benchmarks.md, "Editor").

An explicit ``GraphEditor.run_analysis()`` call stays synchronous (it imports on the
caller's thread if the warm-up has not finished), so scripts and tests are unaffected.
"""
from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal


class _Notifier(QObject):
    ready = Signal()


_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_notifier: _Notifier | None = None


def _warm() -> None:
    try:
        from runtime.analysis import analyze
        from runtime.graph import GraphDocument

        doc = GraphDocument("warm-up")
        doc.add_node("ImageInput", {"channels": 1, "height": 8, "width": 8}, node_id="x")
        doc.add_node("Conv2d", {"filters": 2, "kernel_size": 3}, node_id="c")
        doc.add_node("MaxPool", node_id="p")
        doc.add_node("Flatten", node_id="f")
        doc.add_node("Dense", {"units": 2}, node_id="d")
        for a, b in (("x", "c"), ("c", "p"), ("p", "f"), ("f", "d")):
            doc.connect(a, "out", b, "x")
        analyze(doc)
    except Exception:  # a warm-up only: the real analysis reports any problem
        pass
    finally:
        _done.set()
        if _notifier is not None:
            _notifier.ready.emit()


def start() -> None:
    """Begin the warm-up (once per process). Call from the UI thread."""
    global _thread, _notifier
    with _lock:
        if _thread is not None:
            return
        _notifier = _Notifier()
        _thread = threading.Thread(target=_warm, name="netbuilder-warmup", daemon=True)
        _thread.start()


def is_ready() -> bool:
    return _done.is_set()


def when_ready(callback: Callable[[], None]) -> None:
    """Run ``callback`` on the UI thread once the warm-up has finished (now if it has)."""
    start()
    if _done.is_set():
        callback()
        return
    _notifier.ready.connect(callback, Qt.QueuedConnection)
    if _done.is_set():  # finished between the check and the connection: run it anyway
        callback()
