"""Block node types: a Block holds an inner graph; BlockInput/BlockOutput mark its ports.

These types live in ``HIDDEN`` (not in the palette, the catalog harness or docs/catalog.md):
Blocks are made by grouping a selection (runtime/blocks.py), never dragged from the
palette. A Block's ports are derived from its inner graph: one input port per BlockInput
node, one output port per BlockOutput node, named after those nodes' ids.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ._util import short_repr
from .spec import ANY, FLOAT, INDEX, LayerSpec, Param, Port

CAT = "Blocks"


@dataclass(frozen=True)
class GraphParam(Param):
    """A parameter whose value is an inner graph: {"nodes": [...], "edges": [...]}."""

    def check(self, value: Any) -> str | None:
        if not isinstance(value, dict) or not isinstance(value.get("nodes"), list) \
                or not isinstance(value.get("edges"), list):
            return "expected an inner graph {nodes: [...], edges: [...]}"
        for n in value["nodes"]:
            if not isinstance(n, dict) or not isinstance(n.get("id"), str) \
                    or not isinstance(n.get("type"), str):
                return f"inner node {short_repr(n)} needs an id and a type"
            if not isinstance(n.get("params", {}), dict):
                return f"inner node {n['id']!r}: params must be an object, not {short_repr(n['params'])}"
            if not isinstance(n.get("label", ""), str):
                return f"inner node {n['id']!r}: label must be text, not {short_repr(n['label'])}"
        for e in value["edges"]:
            if not isinstance(e, dict) or not all(
                    isinstance(e.get(k), str) for k in ("source", "source_port", "target",
                                                         "target_port")):
                return f"inner edge {short_repr(e)} needs source, source_port, target, target_port"
        return None


@lru_cache(maxsize=512)
def _ports(text: str) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
    graph = json.loads(text)
    ins, outs = [], []
    for n in graph.get("nodes", []) if isinstance(graph, dict) else []:
        if not isinstance(n, dict):
            continue
        if n.get("type") == "BlockInput":
            params = n.get("params")
            kind = params.get("kind", FLOAT) if isinstance(params, dict) else FLOAT
            ins.append(Port(str(n.get("id")), INDEX if kind == INDEX else FLOAT))
        elif n.get("type") == "BlockOutput":
            outs.append(Port(str(n.get("id")), ANY))
    return tuple(ins), tuple(outs)


def block_ports(params) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
    try:
        return _ports(json.dumps(params.get("graph"), sort_keys=True))
    except (TypeError, ValueError):
        return (), ()


SPECS = (
    LayerSpec(
        type="Block", title="Block", category=CAT,
        doc="A reusable block: an inner graph shown as one node. Its inputs and outputs are "
            "the inner graph's Block input and Block output nodes. Before validation, "
            "analysis and compilation it is expanded in place (inner ids prefixed by the "
            "block id), so it computes exactly what its inner nodes compute.",
        inputs=lambda p: block_ports(p)[0], outputs=lambda p: block_ports(p)[1],
        params=(GraphParam("graph", "graph", {"nodes": [], "edges": []},
                           "the inner graph (nodes and edges)"),),
    ),
    LayerSpec(
        type="BlockInput", title="Block input", category=CAT,
        doc="An input port of the enclosing Block. The shape is what feeds it (used when "
            "the inner graph is analysed on its own).",
        inputs=(), outputs=lambda p: (Port("out", INDEX if p["kind"] == INDEX else FLOAT),),
        params=(Param("shape", "ints", [1], "per-sample shape of the block input"),
                Param("kind", "choice", FLOAT, "float values or integer ids",
                      choices=(FLOAT, INDEX))),
        source_shape=lambda p: tuple(p["shape"]), source_kind="input",
    ),
    LayerSpec(
        type="BlockOutput", title="Block output", category=CAT,
        doc="An output port of the enclosing Block.",
        inputs=(Port("x", ANY),), outputs=(), is_output=True,
    ),
)
