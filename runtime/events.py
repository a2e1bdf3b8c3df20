"""A tiny event: connect callbacks, emit to all of them (ryvencore-style, no Qt)."""
from __future__ import annotations

from typing import Any, Callable


class Event:
    """Callbacks run in connection order; a callback may disconnect itself while running."""

    __slots__ = ("name", "_callbacks")

    def __init__(self, name: str = ""):
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def emit(self, *args: Any) -> None:
        for cb in list(self._callbacks):
            cb(*args)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self._callbacks)} callbacks)"
