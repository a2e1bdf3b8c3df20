"""Diagnostics: what validation and analysis say about a graph, pinned to a node and port."""
from __future__ import annotations

from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    node_id: str | None  # None for whole-graph findings
    severity: str  # "error" or "warning"
    message: str  # plain words, names the place, says expected vs received
    port: str | None = None
    param: str | None = None
    code: str = ""  # stable machine-readable kind, e.g. "cycle", "shape"
    nodes: tuple[str, ...] = ()  # every node involved (a cycle names all of them)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def where(self) -> str:
        if self.node_id is None:
            return "graph"
        out = f"node '{self.node_id}'"
        if self.port:
            out += f" port '{self.port}'"
        if self.param:
            out += f" parameter '{self.param}'"
        return out

    def __str__(self) -> str:
        return f"{self.severity}: {self.where()}: {self.message}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["nodes"] = list(self.nodes)
        return d


def has_errors(diagnostics) -> bool:
    return any(d.is_error for d in diagnostics)


class CompileError(Exception):
    """The graph cannot be compiled; ``diagnostics`` say where and why."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.is_error]
        super().__init__("the graph has errors:\n" + "\n".join(f"  {d}" for d in errors))


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message, at most 300 characters (its
    type name when it has no message): for one-line error reports."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__
