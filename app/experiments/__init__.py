"""Experiments in the application: the Runs panel and the Sweep dialog.

``install(window)`` adds a "Runs" dock (built on the first event-loop turns; it imports
pyqtgraph) and Train > Runs / Sweep… through the window's public API. The runs listed are
those of the current document (its runs folder, see runtime/training/runs.py); the list
is refreshed when a document is opened and when a training run ends.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def install(window: Any) -> Any:
    from .ui import RunsUI

    ui = RunsUI(window)
    window.runs_ui = ui
    return ui
