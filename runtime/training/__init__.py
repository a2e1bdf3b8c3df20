"""Training: TrainConfig, the Trainer (a flat loop emitting metric events), run Control,
checkpoints and instrumentation. Qt-free; the GUI and the CLI share this code.

Names load on first use (PEP 562): the editor reads TrainConfig without importing torch.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {"ConfigError": "config", "TrainConfig": "config", "Control": "control",
            "Trainer": "trainer", "TrainingError": "trainer", "probe": "probing",
            "time_gradients": "probing", "check_gradients": "debugging",
            "overfit_tiny": "debugging", "correlated_units": "debugging"}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
