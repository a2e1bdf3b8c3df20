"""The shape of a graph, without shapes of tensors: networkx views, Delay helpers and
recurrent regions.

A *recurrent region* is what runs once per time step: the nodes reached from
``SequenceStep`` nodes (x_t) and ``Delay`` nodes (the previous step's state), up to and
including the ``Collect`` / ``Last`` nodes that turn per-step values back into a sequence
or a final value. A value from outside the region (e.g. an encoder's summary) enters
every step unchanged. Everything else is the ordinary feed-forward graph.

Validation, analysis, the compiler and the editor's layout all read the graph through
these functions.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from .graph import GraphDocument

SEQ_IN, SEQ_OUT, DELAY = "sequence_in", "sequence_out", "delay"
RECURRENT_TAGS = frozenset({SEQ_IN, SEQ_OUT, DELAY})


def to_networkx(doc: GraphDocument) -> nx.MultiDiGraph:
    """Every node and edge (ports as edge attributes)."""
    g = nx.MultiDiGraph()
    g.add_nodes_from(doc.nodes)
    for e in doc.edges:
        g.add_edge(e.source, e.target, source_port=e.source_port, target_port=e.target_port)
    return g


def tags(node) -> tuple[str, ...]:
    return node.spec.tags


def is_delay(node) -> bool:
    return DELAY in node.spec.tags


def feedforward_graph(doc: GraphDocument) -> nx.DiGraph:
    """The graph with every edge leaving a Delay node cut: acyclic when the graph is legal."""
    g = nx.DiGraph()
    g.add_nodes_from(doc.nodes)
    delays = {n.id for n in doc if is_delay(n)}
    g.add_edges_from((e.source, e.target) for e in doc.edges if e.source not in delays)
    return g


def has_recurrent_nodes(doc: GraphDocument) -> bool:
    return any(RECURRENT_TAGS & set(tags(n)) for n in doc)


@dataclass
class Region:
    name: str  # the compiled submodule's name
    nodes: list[str] = field(default_factory=list)  # every node, in document order
    steps: list[str] = field(default_factory=list)  # SequenceStep nodes (x_t)
    delays: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # Collect / Last nodes
    inner: list[str] = field(default_factory=list)  # the cell's computing nodes

    def describe(self, doc: GraphDocument) -> str:
        return ", ".join(doc.nodes[s].display_name for s in self.steps) or \
            ", ".join(doc.nodes[d].display_name for d in self.delays)

    def constants(self, doc: GraphDocument) -> list[tuple[str, str]]:
        """(node, port) of the values from outside that every step reads unchanged (a
        Delay's ``init`` is no constant: it is the state before the first step)."""
        inside = set(self.nodes)
        out: list[tuple[str, str]] = []
        for nid in self.inner + self.delays + self.outputs:
            for e in doc.in_edges(nid):
                if e.source not in inside and not (nid in self.delays and e.target_port == "init"):
                    if (e.source, e.source_port) not in out:
                        out.append((e.source, e.source_port))
        return out


def stepwise_nodes(doc: GraphDocument) -> set[str]:
    """Nodes that run once per step: reached from a SequenceStep or a Delay, stopping
    after Collect / Last (whose outputs are whole-sequence values)."""
    out_edges = defaultdict(list)
    for e in doc.edges:
        out_edges[e.source].append(e)
    start = [n.id for n in doc if {SEQ_IN, DELAY} & set(tags(n))]
    seen, stack = set(start), list(start)
    while stack:
        u = stack.pop()
        if SEQ_OUT in tags(doc.nodes[u]):
            continue
        for e in out_edges[u]:
            if e.target not in seen:
                seen.add(e.target)
                stack.append(e.target)
    return seen


def inner_edge(doc: GraphDocument, e, stepwise: set[str]) -> bool:
    """Whether edge ``e`` joins two nodes of the same region (carries a per-step value)."""
    if e.source not in stepwise or e.target not in stepwise:
        return False
    src, dst = doc.nodes[e.source], doc.nodes[e.target]
    if SEQ_OUT in tags(src) or SEQ_IN in tags(dst):
        return False
    return not (DELAY in tags(dst) and e.target_port == "init")


def find_regions(doc: GraphDocument) -> tuple[list[Region], set[str]]:
    """The recurrent regions (connected groups of per-step nodes) and the per-step set."""
    S = stepwise_nodes(doc)
    if not S:
        return [], S
    g = nx.Graph()
    g.add_nodes_from(S)
    g.add_edges_from((e.source, e.target) for e in doc.edges if inner_edge(doc, e, S))
    index = {nid: i for i, nid in enumerate(doc.nodes)}
    comps = sorted((sorted(c, key=index.get) for c in nx.connected_components(g)),
                   key=lambda c: index[c[0]])
    used = set(doc.nodes)
    regions = []
    for comp in comps:
        r = Region("")
        for nid in comp:
            t = tags(doc.nodes[nid])
            r.nodes.append(nid)
            (r.steps if SEQ_IN in t else r.delays if DELAY in t
             else r.outputs if SEQ_OUT in t else r.inner).append(nid)
        stem = f"{(r.steps or r.nodes)[0]}_loop"
        name, i = stem, 2
        while name in used:
            name, i = f"{stem}{i}", i + 1
        used.add(name)
        r.name = name
        regions.append(r)
    return regions, S
