"""Netbuilder's headless core: catalog, graph document, validation, analysis, compiler.

Importable without Qt or plotting libraries (a test enforces it)::

    from runtime import load_graph, save_graph, validate, analyze, build_module
"""
from __future__ import annotations

from .analysis import Analysis, NodeInfo, analyze
from .catalog import CATALOG, get_spec
from .compiler import CompileError, Signature, build_module, example_inputs, signature
from .diagnostics import Diagnostic
from .graph import Edge, GraphDocument, GraphError, Node
from .serialization import GraphFileError, LoadProblem, dumps, load_graph, loads, save_graph
from .validation import validate

__version__ = "0.1.0"

__all__ = [
    "load_graph", "save_graph", "loads", "dumps", "validate", "analyze", "build_module",
    "GraphDocument", "Node", "Edge", "GraphError", "GraphFileError", "LoadProblem",
    "Diagnostic", "Analysis", "NodeInfo", "CompileError", "Signature", "signature",
    "example_inputs", "CATALOG", "get_spec", "__version__",
]
