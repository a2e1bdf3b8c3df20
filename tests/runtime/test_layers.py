"""runtime/ is layered: no import cycle among its modules, counting imports inside
functions, and no module imports one of a layer above it (the layers of pyproject.toml's
import-linter contract, drawn in docs/architecture.md). Read from the source with ast;
checked with networkx, so this holds without import-linter too."""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import networkx as nx
import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "runtime"



def runtime_layers() -> list[list[str]]:
    """The runtime's layers, bottom to top, from the import-linter contract in
    pyproject.toml (one source for both checks)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"]
                    if c.get("containers") == ["runtime"])
    return [[f"runtime.{m.strip()}" for m in re.split(r"[|:]", layer)]
            for layer in reversed(contract["layers"])]


LAYERS = runtime_layers()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@functools.lru_cache(maxsize=1)
def _import_graph() -> nx.DiGraph:
    """module -> every runtime module it imports, wherever the import statement is."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(files)
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".")
                    keep = len(parts) - node.level + (1 if is_pkg else 0)
                    base = ".".join(parts[:keep] + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            if isinstance(node, ast.ImportFrom) and all(n in files for n in names[:-1]):
                names = names[:-1]  # "from . import module": the modules, not the package
            for name in names:
                while name not in files and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in files and name != mod and name != "runtime":
                    g.add_edge(mod, name)
    return g


def import_graph() -> nx.DiGraph:
    return _import_graph().copy()


def layer_of(mod: str) -> int | None:
    best = None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if mod == prefix or mod.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    return best[0] if best else None


def within_package(a: str, b: str) -> bool:
    """An import between a package's __init__ and its own modules (registration into the
    package, re-exports): the package is one unit of the layering."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_no_import_cycle_in_runtime():
    g = import_graph()
    g.remove_edges_from([(a, b) for a, b in list(g.edges) if within_package(a, b)])
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert cycles == []


def test_no_module_imports_a_layer_above_it():
    g = import_graph()
    upward = [(a, b) for a, b in g.edges
              if layer_of(a) is not None and layer_of(b) is not None
              and layer_of(b) > layer_of(a) and not within_package(a, b)]
    assert upward == []
