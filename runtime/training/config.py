"""TrainConfig: everything that makes a training run reproducible, stored in the graph
document (``doc.training``) so a file is a complete experiment.

``TrainConfig.from_dict`` checks every field and raises ConfigError naming the field.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "plateau", "linear", "cosine", "warmup")
DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """A training setting is invalid; ``field`` names it."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"training setting {field_name!r}: {message}")


class TrainingError(Exception):
    """A run cannot start or continue; the message says why in plain words."""


@dataclass
class TrainConfig:
    # ---- data ----
    dataset: str = "spirals"  # dataset spec: 'digits', 'csv:file.csv?label=y', ... (runtime.data)
    val_split: float = 0.2  # fraction held out for validation (early stopping, val metrics)
    test_split: float = 0.0  # fraction held out for a final test
    normalize: bool = True  # standardise float inputs with training-split mean/std
    augment: list[str] = field(default_factory=list)  # image augmentations: flip crop jitter affine
    # ---- optimisation ----
    optimizer: str = "adam"  # sgd | momentum | nesterov | adagrad | adadelta | rmsprop | adam | adamw
    lr: float = 1e-3  # base learning rate eps_0
    momentum: float = 0.9  # alpha for momentum / nesterov, and rmsprop's momentum (0 = plain RMSprop)
    weight_decay: float = 0.0  # L2 penalty on weights (not biases); decoupled for adamw
    l1: float = 0.0  # L1 penalty lambda * sum |w| on weights (not biases), added to the loss
    batch_size: int = 64  # mini-batch size m
    epochs: int = 10
    # ---- learning-rate schedule ----
    schedule: str = "constant"  # constant | step | plateau | linear | cosine | warmup (+cosine)
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.1  # step and plateau: multiply lr by gamma (0.2 = "divide by 5")
    plateau_patience: int = 2  # plateau: epochs without improvement before decaying
    decay_steps: int = 0  # linear: tau (steps to reach final_lr); cosine: length; 0 = whole run
    final_lr: float = 0.0  # linear: eps_tau; cosine / warmup: the minimum lr
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps (any schedule)
    # ---- gradient clipping ----
    clip_norm: float = 0.0  # if ||g|| > clip_norm: g <- clip_norm g / ||g||  (0 = off)
    clip_value: float = 0.0  # element-wise clip to [-clip_value, clip_value]  (0 = off)
    # ---- control ----
    early_stopping: int = 0  # patience: stop after this many epochs without val improvement (0 = off)
    seed: int = 0  # same seed, same losses
    device: str = "auto"  # auto (cuda, mps, cpu) | cpu | cuda | mps
    threads: int = 0  # CPU threads for torch (0 = torch's default); 1 is fastest for tiny nets on busy machines
    amp: bool = False  # mixed precision (CUDA only; bfloat16 where supported, else float16)
    compile: bool = False  # torch.compile the model (falls back, with a warning, where it fails)
    channels_last: bool = False  # NHWC memory format for convolutions (faster on GPUs with amp)
    cudnn_benchmark: bool = True  # let cuDNN pick the fastest convolution algorithm (CUDA)
    frozen: list[str] = field(default_factory=list)  # node ids whose parameters do not train
    init_weights: str | None = None  # safetensors file: load tensors of matching nodes (transfer)
    # ---- instrumentation (sampled; no device sync on other steps) ----
    log_every: int = 10  # steps per flush of step metrics (one device sync per flush)
    instrument_every: int = 10  # steps between per-node gradient norms
    visualize_every: int = 50  # steps between feature maps, filters, histograms, node statistics
    probe_node: str | None = None  # node whose feature maps / histograms are shown (None: first conv)
    sample_length: int = 200  # characters of sampled text per epoch (character models)
    temperature: float = 0.8  # sampling temperature for text
    keep_checkpoints: int = 2  # per-epoch checkpoints kept on disk (the newest)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TrainConfig":
        data = dict(data or {})
        names = {f.name: f for f in fields(cls)}
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                raise ConfigError(key, "unknown setting" + (f" (did you mean {close[0]!r}?)"
                                                            if close else ""))
        cfg = cls()
        for key, value in data.items():
            setattr(cfg, key, _coerce(key, value, getattr(cfg, key), names[key].type))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def choice(name, allowed):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, f"expected one of {', '.join(allowed)}, received "
                                        f"{getattr(self, name)!r}")

        choice("optimizer", OPTIMIZERS)
        choice("schedule", SCHEDULES)
        choice("device", DEVICES)
        positive = ("lr", "batch_size", "epochs", "step_size", "log_every", "instrument_every",
                    "visualize_every", "temperature", "keep_checkpoints")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(name, f"must be greater than 0, received {getattr(self, name)}")
        for name in ("momentum", "weight_decay", "l1", "final_lr", "clip_norm", "clip_value",
                     "gamma", "warmup_steps", "decay_steps", "early_stopping", "plateau_patience", "threads",
                     "sample_length"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must not be negative, received {getattr(self, name)}")
        for name in ("val_split", "test_split"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(name, f"must be in [0, 1), received {getattr(self, name)}")
        if self.val_split + self.test_split >= 1:
            raise ConfigError("val_split", "validation and test fractions leave no training data")
        from ..data.augment import AUGMENTATIONS

        for a in self.augment:
            if a not in AUGMENTATIONS:
                raise ConfigError("augment", f"unknown augmentation {a!r}; choose from "
                                             f"{', '.join(AUGMENTATIONS)}")


def _coerce(name: str, value: Any, default: Any, annotation: str) -> Any:
    """Check one value against the field's type (JSON gives ints for floats, etc.)."""
    optional = "None" in str(annotation)
    if optional and isinstance(value, str) and not value.strip():
        value = None  # an emptied text box
    if value is None:
        if optional:
            return None
        raise ConfigError(name, "must not be empty")
    if "list" in str(annotation):
        if isinstance(value, str):  # "flip, crop" (a text box) -> ["flip", "crop"]
            value = [v.strip(" '\"") for v in value.strip("[] ").split(",") if v.strip(" '\"")]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(name, f"expected a list of names, received {value!r}")
        return list(value)
    kind = "str" if optional else type(default).__name__
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(name, f"expected true or false, received {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ConfigError(name, f"expected a whole number, received {value!r}")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, f"expected a number, received {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(name, f"expected text, received {value!r}")
    return value


# Settings a resumed run may change without breaking exact continuation: how long it runs,
# where, and what it reports. Every other setting is the checkpoint's.
FREE_ON_RESUME = ("epochs", "early_stopping", "device", "threads", "log_every", "compile",
                  "channels_last", "cudnn_benchmark",
                  "instrument_every", "visualize_every", "probe_node", "sample_length",
                  "temperature", "keep_checkpoints", "init_weights")


def resume_config(current: TrainConfig, saved: dict[str, Any]) -> tuple[TrainConfig, list[str]]:
    """The config of a resumed run: the checkpoint's settings (``saved``), with only the
    FREE_ON_RESUME settings taken from ``current``; and, for each other setting where
    ``current`` differs, a line saying it was ignored (``lr 0.5 (the checkpoint's 0.01)``).
    Raises ConfigError when the saved config is unreadable."""
    base = TrainConfig.from_dict({k: v for k, v in (saved or {}).items()
                                  if k in {f.name for f in fields(TrainConfig)}})
    ignored = []
    for f in fields(TrainConfig):
        mine, theirs = getattr(current, f.name), getattr(base, f.name)
        if f.name in FREE_ON_RESUME:
            setattr(base, f.name, mine)
        elif mine != theirs:
            ignored.append(f"{f.name} {mine!r} (the checkpoint's {theirs!r} is kept)")
    base.validate()
    return base, ignored
