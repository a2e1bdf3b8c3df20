"""Training: TrainConfig, the Trainer (a flat loop emitting metric events), run Control,
checkpoints and instrumentation. Qt-free; the GUI and the CLI share this code."""
from __future__ import annotations

from .config import ConfigError, TrainConfig
from .control import Control
from .trainer import Trainer, TrainingError

__all__ = ["ConfigError", "Control", "TrainConfig", "Trainer", "TrainingError"]
