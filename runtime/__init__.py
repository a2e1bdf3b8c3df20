"""Netbuilder's headless core: catalog, graph document, validation, analysis, compiler.

Importable without Qt or plotting libraries (a test enforces it)::

    from runtime import load_graph, save_graph, validate, analyze, build_module
"""
from __future__ import annotations

from .lazy import lazy_exports

# Public names -> the module defining them. Loaded on first use (PEP 562), so that
# `import runtime.catalog` or `runtime.graph` (the editor's needs) does not import torch.
_EXPORTS = {
    "Analysis": "analysis", "NodeInfo": "analysis", "analyze": "pipeline",
    "CATALOG": "catalog", "get_spec": "catalog",
    "CompileError": "compiler", "Signature": "compiler", "build_module": "compiler",
    "example_inputs": "compiler", "signature": "compiler",
    "Diagnostic": "diagnostics",
    "Edge": "graph", "GraphDocument": "graph", "GraphError": "graph", "Node": "graph",
    "GraphFileError": "serialization", "LoadProblem": "serialization", "dumps": "serialization",
    "load_graph": "serialization", "loads": "serialization", "save_graph": "serialization",
    "validate": "pipeline", "check": "pipeline",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__version__ = "0.1.0"

__all__ = [
    "load_graph", "save_graph", "loads", "dumps", "validate", "analyze", "build_module",
    "GraphDocument", "Node", "Edge", "GraphError", "GraphFileError", "LoadProblem",
    "check", "Diagnostic", "Analysis", "NodeInfo", "CompileError", "Signature", "signature",
    "example_inputs", "CATALOG", "get_spec", "__version__",
]
