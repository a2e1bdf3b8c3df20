"""Import a PyTorch ``nn.Module`` (by torch.fx symbolic tracing) or an ONNX file into an
editable graph document, with its weights, when its layers map to the catalog.

Whatever cannot be mapped is reported (node and reason) rather than guessed; the
partial document is still returned so the caller can show it.

Importing a *Python file* executes that file: it is explicit and user-initiated, like
running it. Importing ONNX reads a protobuf and never runs code.

- ``common``: the result, input nodes, ids, the check against the source;
- ``layers``: torch.nn (and Netbuilder's own) layer classes -> catalog nodes;
- ``fx_import``: tracing a module and mapping its calls;
- ``python_file``: running a Python file, finding the class and its input shapes;
- ``onnx_import`` and ``onnx_ops``: the ONNX walk and its table of operator converters.
"""
from __future__ import annotations

from .common import DEFAULT_STEPS, ImportError_, ImportProblem, ImportResult, verify_import
from .fx_import import import_module
from .layers import CATALOG_MODULES, TORCH_MODULES
from .onnx_import import import_onnx
from .onnx_ops import OPS as ONNX_OPS
from .python_file import import_python_file, infer_input_shapes, load_python_module

__all__ = ["CATALOG_MODULES", "DEFAULT_STEPS", "ImportError_", "ImportProblem", "ImportResult",
           "ONNX_OPS", "TORCH_MODULES", "import_module", "import_onnx", "import_python_file",
           "infer_input_shapes", "load_python_module", "verify_import"]
