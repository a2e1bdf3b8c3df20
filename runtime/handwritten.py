"""Warnings for mistakes that are legal but rarely meant, typical of graphs written by
hand: a Dense layer on an image-shaped tensor (no Flatten before it) applies to the last
axis only, with the same weights at every position, and the network still validates."""
from __future__ import annotations

from .catalog import fmt_shape
from .diagnostics import WARNING, Diagnostic

# Layers that map the last axis and broadcast over the others
_LAST_AXIS = ("Dense", "Perceptron", "Maxout")


def check_last_axis_layers(doc, analysis) -> list[Diagnostic]:
    """A warning on the first Dense (Perceptron, Maxout) fed a (C, H, W) sample on each
    path (the layers after it inherit the extra axes: one warning says it)."""
    out = []
    after: set[str] = set()  # nodes downstream of a warned one
    for nid in analysis.order:
        node = doc.nodes.get(nid)
        if node is None:
            continue
        if any(e.source in after for e in doc.in_edges(nid)):
            after.add(nid)
            continue
        if node.type not in _LAST_AXIS:
            continue
        edge = next((e for e in doc.in_edges(node.id) if e.target_port == "x"), None)
        shape = analysis.edge_shape(edge) if edge is not None else None
        if shape is None or len(shape) < 3:
            continue
        after.add(nid)
        positions = "x".join(str(d) for d in shape[:-1])
        out.append(Diagnostic(
            node.id, WARNING,
            f"{node.type} applies to the last axis of {fmt_shape(shape)} from "
            f"{edge.source}.{edge.source_port}: the same weights at each of the {positions} "
            f"positions, {shape[-1]} features each; add a Flatten before it for one vector "
            "per sample?", port="x", code="last_axis", nodes=(node.id, edge.source)))
    return out
