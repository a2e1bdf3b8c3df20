"""Training in the application: panel, controller (process or thread) and live plots.

``install(window)`` is called by MainWindow; it adds the Train menu and the Training and
Plots docks through the window's public API. This package's ``__init__`` imports nothing
heavy (and no Qt): the spawned training process imports ``app.training.worker`` through it.
"""
from __future__ import annotations

from typing import Any


def install(window: Any) -> Any:
    """Add the training UI to ``window``; returns the TrainingUI object (kept on the window)."""
    from .ui import TrainingUI

    ui = TrainingUI(window)
    window.training_ui = ui
    return ui
