"""Export a graph to files other tools open, each verified as it is written; import
PyTorch modules and ONNX files back into graphs. See docs/export.md."""
from __future__ import annotations

from .core import (ATOL, FORMAT_TITLES, FORMATS, Capability, ExportError, ExportResult,
                   capabilities, export, export_prepared, load_bundle, prepare)
from .weights import WeightsError, load_weights

__all__ = ["FORMATS", "FORMAT_TITLES", "ATOL", "Capability", "ExportError", "ExportResult",
           "capabilities", "export", "export_prepared", "load_bundle", "prepare", "WeightsError", "load_weights"]
