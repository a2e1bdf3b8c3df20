"""Recurrent structure checks (part of structural validation; every message names the
nodes involved): Delays sit inside a region with a time axis; a per-step value never
reaches a loss, an output or a whole-sequence input directly; the region's steps agree on
direction and truncation; the region does not depend on its own result."""
from __future__ import annotations

import networkx as nx

from ..diagnostics import ERROR, WARNING, Diagnostic
from ..graph import GraphDocument
from ..topology import (DELAY, SEQ_IN, SEQ_OUT, find_regions, has_recurrent_nodes,
                        inner_edge, tags)


def check_recurrent(doc: GraphDocument) -> list[Diagnostic]:
    """The recurrent checks of ``doc`` (none without recurrent nodes)."""
    if not has_recurrent_nodes(doc):
        return []
    regions, S = find_regions(doc)
    nodes = doc.nodes
    out: list[Diagnostic] = []
    region_of = {nid: r for r in regions for nid in r.nodes}

    def err(nid, msg, involved, port=None, code="recurrent"):
        out.append(Diagnostic(nid, ERROR, msg, port=port, code=code, nodes=tuple(involved)))

    for n in doc:
        if SEQ_OUT in tags(n) and n.id not in S and doc.in_edges(n.id):
            err(n.id, f"{n.display_name} takes a per-step value, but its input comes from "
                "outside any recurrent region: put a 'For each time step' (SequenceStep) "
                "node before the cell it ends", [n.id], port="x")
    for e in doc.edges:
        if e.source not in S or SEQ_OUT in tags(nodes[e.source]):
            continue
        src, dst = nodes[e.source], nodes[e.target]
        r = region_of.get(e.source)
        if r is not None and not r.steps:
            continue  # a Delay without a time axis: reported once below
        where = f"the recurrent region of {r.describe(doc)}" if r else "a recurrent region"
        if SEQ_IN in tags(dst):
            err(dst.id, f"input 'seq' takes a whole sequence, but {src.display_name} gives a "
                f"per-step value (it runs inside {where}): Collect the steps first",
                [dst.id, src.id], port=e.target_port)
        elif DELAY in tags(dst) and e.target_port == "init":
            err(dst.id, f"input 'init' is the state before the first step and must come "
                f"from outside the recurrent region, but {src.display_name} gives a "
                "per-step value", [dst.id, src.id], port="init")
        elif dst.spec.is_loss or dst.spec.is_output or dst.spec.is_source \
                or "recurrent" in tags(dst):
            err(dst.id, f"{dst.display_name} receives a per-step value from "
                f"{src.display_name} (inside {where}); put a Collect (every step) or Last "
                "(final step) node between", [dst.id, src.id], port=e.target_port)
    for d in (n for n in doc if DELAY in tags(n)):  # a state is computed by its own cell
        e = next((x for x in doc.in_edges(d.id) if x.target_port == "x"), None)
        if e is None or (e.source in S and region_of.get(e.source) is region_of.get(d.id)
                         and SEQ_OUT not in tags(nodes[e.source])):
            continue
        err(d.id, f"input 'x' is the next state, computed at every step inside the "
            f"recurrent region, but {nodes[e.source].display_name} is not part of it (a "
            "whole-sequence value or a constant): wire it from a node of the cell",
            [d.id, e.source], port="x")
    for r in regions:
        if not r.steps:
            names = ", ".join(r.delays or r.nodes)
            err((r.delays or r.nodes)[0], f"Delay {names} is not inside a recurrent region: "
                "a state is updated once per time step, so its cycle must start at a 'For "
                "each time step' (SequenceStep) node and end at a Collect or Last node",
                r.nodes)
            continue
        for key in ("reverse", "tbptt"):
            vals = {nodes[s].params.get(key) for s in r.steps}
            if len(vals) > 1:
                err(r.steps[1], f"the steps of one recurrent region must agree on {key}: "
                    + ", ".join(f"{s}={nodes[s].params.get(key)}" for s in r.steps),
                    r.steps, code="time_axis")
        if not r.outputs:
            out.append(Diagnostic(r.steps[0], WARNING, f"the recurrent region of "
                                  f"{r.describe(doc)} has no Collect or Last node: its "
                                  "result is never used", code="dead_end",
                                  nodes=tuple(r.nodes)))
    # A region must not depend on its own result through outside nodes.
    g = nx.DiGraph()
    rep = {nid: r.name for r in regions for nid in r.nodes}
    delays = {n.id for n in doc if DELAY in tags(n)}
    for e in doc.edges:
        if e.source in delays and inner_edge(doc, e, S):
            continue
        a, b = rep.get(e.source, e.source), rep.get(e.target, e.target)
        if a != b:
            g.add_edge(a, b)
    try:
        cycle = [u for u, _ in nx.find_cycle(g)]
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        r = next(x for x in regions if x.name in cycle)
        names = " -> ".join(c if c != r.name else f"[region of {r.describe(doc)}]"
                            for c in cycle + [cycle[0]])
        err(r.steps[0] if r.steps else r.nodes[0], "the recurrent region feeds its own input "
            f"through nodes outside it: {names}. Use a Delay inside the region for feedback",
            [c for c in cycle if c in nodes] + r.nodes, code="cycle")
    return out

