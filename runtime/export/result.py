"""What every export shares: the formats, the result it returns and the error it raises."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

FORMATS = ("bundle", "torchscript", "pt2", "onnx", "python")
FORMAT_TITLES = {
    "bundle": "Netbuilder bundle (graph JSON + safetensors weights)",
    "torchscript": "TorchScript (.pt)",
    "pt2": "torch.export program (.pt2)",
    "onnx": "ONNX (.onnx)",
    "python": "PyTorch code (model.py + train.py + weights)",
}
DEFAULT_SUFFIX = {"bundle": ".zip", "torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx",
                  "python": ""}
Progress = Callable[[float, str], None]


class ExportError(Exception):
    """An export that could not be written or did not pass its check (plain message)."""


@dataclass
class ExportResult:
    format: str
    path: Path
    files: list[Path] = field(default_factory=list)
    verified: bool = False
    max_abs_diff: float = 0.0
    checks: list[str] = field(default_factory=list)  # what was compared, one line each
    notes: list[str] = field(default_factory=list)  # limits the user should know
    seconds: float = 0.0

    def summary(self) -> str:
        head = (f"{self.format}: wrote {self.path} - verified, max abs difference "
                f"{self.max_abs_diff:.3g}" if self.verified else f"{self.format}: wrote {self.path}")
        return "\n".join([head] + [f"  check: {c}" for c in self.checks]
                         + [f"  note: {n}" for n in self.notes])


@dataclass
class Capability:
    supported: bool
    reason: str = ""  # why not (or a limit when supported)


