"""Lazy module proxies, so that importing the catalog (and the editor that shows it)
does not import torch: torch loads on the first builder call, after the window shows."""
from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


nn = LazyModule("torch.nn")
M = LazyModule("runtime.catalog.modules")
R = LazyModule("runtime.catalog.recurrent_modules")
