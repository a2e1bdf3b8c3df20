"""The trainer's fast path on GPUs: torch.compile, channels-last memory format, cuDNN
autotuning; and the device's name and memory use for the reports.

- ``compile``: the training forward goes through ``torch.compile``. Compilation happens at
  the first step; where it fails (no C++ compiler, an operation it cannot trace...) the run
  continues uncompiled and a warning says why (:class:`Compiled`).
- ``channels_last``: 4-D weights and image batches in NHWC order, which tensor cores
  prefer for convolutions (with ``amp``).
- ``cudnn_benchmark``: cuDNN times its convolution algorithms once per input shape and
  keeps the fastest (fixed shapes: every batch but perhaps the last).
"""
from __future__ import annotations

import sys
from typing import Callable

import torch

from ..diagnostics import first_line


def setup(module: torch.nn.Module, cfg, device: torch.device) -> torch.nn.Module:
    """Apply channels_last and cudnn_benchmark to ``module`` (in place); returns it."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.cudnn_benchmark)
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    if cfg.channels_last:
        module.to(memory_format=torch.channels_last)
    return module


def channels_last(xs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [x.contiguous(memory_format=torch.channels_last)
            if x.dim() == 4 and x.is_floating_point() else x for x in xs]


class Compiled:
    """Calls ``torch.compile(model)``; on the first failure, warns once through ``warn``
    and calls the model itself from then on."""

    def __init__(self, model: torch.nn.Module, warn: Callable[[str], None]):
        self.model, self.warn = model, warn
        try:
            self.compiled = torch.compile(model)
        except Exception as exc:  # noqa: BLE001 - e.g. unsupported Python version
            self.compiled = None
            warn(f"torch.compile is not available here ({_why(exc)}); training "
                 "uncompiled")

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except torch.OutOfMemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - compilation errors come in many types
                self.compiled = None
                self.warn(f"torch.compile failed ({_why(exc)}); training uncompiled")
        return self.model(*args)

    def __getattr__(self, name):  # parameters(), named_parameters()...: the model's
        return getattr(self.__dict__["model"], name)

    def train(self, mode: bool = True):
        self.model.train(mode)
        return self

    def eval(self):
        return self.train(False)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"


def describe(device: torch.device) -> str:
    """'cpu', or 'cuda:0 (NVIDIA H200, 139 GB)'."""
    if device.type == "cuda":
        i = device.index if device.index is not None else torch.cuda.current_device()
        p = torch.cuda.get_device_properties(i)
        return f"cuda:{i} ({p.name}, {p.total_memory / 2**30:.0f} GB)"
    return str(device)


def memory_mb(device: torch.device) -> float | None:
    """The run's peak memory: on a GPU the tensors' peak allocation there; elsewhere the
    process's peak resident memory."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
