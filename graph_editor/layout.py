"""Auto-layout: layered, left to right, from networkx's topological generations."""
from __future__ import annotations

import networkx as nx

from runtime.graph import GraphDocument
from runtime.topology import feedforward_graph

from .items import FOOT_H, HEAD_H, NODE_W, ROW_H

COLUMN_GAP = 80.0
ROW_GAP = 36.0


def node_height(doc: GraphDocument, node_id: str) -> float:
    node = doc.node(node_id)
    rows = max(len(node.input_ports()), len(node.output_ports()), 1)
    return HEAD_H + rows * ROW_H + FOOT_H


def layered_positions(doc: GraphDocument, node_ids=None) -> dict[str, tuple[float, float]]:
    """New positions for ``node_ids`` (all nodes by default): one column per generation.

    The block keeps the top-left corner of the nodes it lays out, so laying out a
    selection does not throw it across the canvas. Within a column nodes keep their
    vertical order (barycentre of their parents breaks ties), which keeps wires short.
    """
    ids = list(doc.nodes) if node_ids is None else [n for n in node_ids if n in doc]
    if not ids:
        return {}
    g = feedforward_graph(doc).subgraph(ids)
    try:
        generations = [list(gen) for gen in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:  # an illegal cycle: fall back to one column per node
        generations = [[n] for n in ids]
    else:  # a source that feeds only late layers (a loss's Target) sits just before them
        layer = {n: i for i, gen in enumerate(generations) for n in gen}
        for n in list(layer):
            succ = list(g.successors(n))
            if g.in_degree(n) == 0 and succ and layer[n] == 0:
                layer[n] = max(0, min(layer[s] for s in succ) - 1)
        generations = [[n for n in ids if layer[n] == i] for i in range(max(layer.values()) + 1)]
        generations = [gen for gen in generations if gen]
    x0 = min(doc.node(n).position[0] for n in ids)
    y0 = min(doc.node(n).position[1] for n in ids)
    out: dict[str, tuple[float, float]] = {}
    rank: dict[str, float] = {}
    heights = [sum(node_height(doc, n) for n in gen) + ROW_GAP * (len(gen) - 1)
               for gen in generations]
    tallest = max(heights)
    for col, gen in enumerate(generations):
        def key(n):
            parents = [rank[p] for p in g.predecessors(n) if p in rank]
            return (sum(parents) / len(parents) if parents else 0.0, doc.node(n).position[1])
        gen.sort(key=key)
        y = y0 + (tallest - heights[col]) / 2
        for i, n in enumerate(gen):
            rank[n] = i
            out[n] = (round(x0 + col * (NODE_W + COLUMN_GAP), 1), round(y, 1))
            y += node_height(doc, n) + ROW_GAP
    return out
