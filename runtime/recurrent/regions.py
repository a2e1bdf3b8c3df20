"""Compiling recurrent regions: each region becomes ONE submodule that owns the cell (an
fx.GraphModule of one step whose submodules are named after the nodes) and loops over
time with that one parameter set: any sequence length at run time, optional truncated
BPTT, reversed time. A standard cell drawn by hand is lowered to torch's fused kernel
(runtime/recurrent/fused.py). The compiler calls :func:`compile_plan`."""
from __future__ import annotations

import contextlib
import operator

import networkx as nx
from torch import fx, nn

from ..fxemit import emit_layers, graph_module, incoming_edges
from ..graph import GraphDocument
from ..topology import Region, find_regions, has_recurrent_nodes
from .loop import RecurrentLoop
from .fused import lower_cell

_LOWER = [True]


@contextlib.contextmanager
def lowering(enabled: bool):
    """Within the block, build_module lowers (True) or never lowers (False) standard
    hand-drawn cells to torch's fused kernels."""
    old = _LOWER[0]
    _LOWER[0] = enabled
    try:
        yield
    finally:
        _LOWER[0] = old


def compile_plan(doc: GraphDocument, analysis, needed: set | None = None):
    """(order, regions): the compile order with each region as one item (its name), and
    each region's emitter (a :class:`RegionCompiler`) by name. Feed-forward graphs:
    (analysis.order, {})."""
    if not has_recurrent_nodes(doc):
        return analysis.order, {}
    regions, _ = find_regions(doc)
    regions = [r for r in regions if r.steps]
    if not regions:
        return analysis.order, {}
    rep = {nid: r.name for r in regions for nid in r.nodes}
    pos = {nid: i for i, nid in enumerate(analysis.order)}
    g = nx.DiGraph()
    for nid in analysis.order:
        g.add_node(rep.get(nid, nid))
    for e in doc.edges:
        a, b = rep.get(e.source, e.source), rep.get(e.target, e.target)
        if a != b:
            g.add_edge(a, b)
    first = {}
    for nid, i in pos.items():
        k = rep.get(nid, nid)
        first[k] = min(first.get(k, i), i)
    order = list(nx.lexicographical_topological_sort(g, key=lambda k: first[k]))
    return order, {r.name: RegionCompiler(doc, analysis, r, needed) for r in regions}


class RegionCompiler:
    """Emits one region as one call_module of a :class:`RecurrentLoop` (or of a lowered
    fused-kernel loop). ``needed``: the nodes the compiled mode returns or depends on (a
    region none of whose outputs is needed is left out); None: every region."""

    def __init__(self, doc, analysis, region: Region, needed: set | None = None):
        self.doc, self.analysis, self.region, self.needed = doc, analysis, region, needed

    def __call__(self, graph: fx.Graph, modules: dict, values: dict) -> None:
        doc, r = self.doc, self.region
        if self.needed is not None and not any(o in self.needed for o in r.outputs):
            return
        inc = incoming_edges(doc)
        seq_args = [values[_src(inc[(s, "seq")])] for s in r.steps]
        consts = r.constants(doc)
        init_args = [values[_src(inc[(d, "init")])] for d in r.delays
                     if doc.nodes[d].params.get("init") == "input"]
        cell = self.build_cell(consts, inc)
        p0 = doc.nodes[r.steps[0]].params
        loop = None
        a = self.analysis
        vectors = all(len(a.nodes[n].output_shape or ()) == 1 for n in r.steps + r.delays)
        if _LOWER[0] and not consts and not p0.get("tbptt") and vectors:
            loop = lower_cell(doc, r, cell, inc)
        if loop is None:
            loop = RecurrentLoop(cell, self.build_states(), len(r.steps), len(consts),
                                 [doc.nodes[o].type for o in r.outputs],
                                 bool(p0.get("reverse")), int(p0.get("tbptt") or 0))
        modules[r.name] = loop
        args = tuple(seq_args + [values[c] for c in consts] + init_args)
        call = graph.create_node("call_module", r.name, args, {}, name=r.name)
        for i, o in enumerate(r.outputs):
            values[(o, "out")] = graph.create_node("call_function", operator.getitem,
                                                   (call, i), {}, name=o)

    def build_cell(self, consts: list[tuple[str, str]] | None = None,
                   inc: dict | None = None) -> fx.GraphModule:
        """One step as an fx.GraphModule: (x_t..., states..., consts...) ->
        (new states..., per-step outputs...). ``consts``: the region's constants (default
        :meth:`Region.constants`)."""
        doc, a, r = self.doc, self.analysis, self.region
        consts = r.constants(doc) if consts is None else consts
        inc = incoming_edges(doc) if inc is None else inc
        g = fx.Graph()
        vals: dict[tuple[str, str], fx.Node] = {}
        for s in r.steps:
            vals[(s, "out")] = g.placeholder(s)
        for d in r.delays:
            vals[(d, "out")] = g.placeholder(d)
        for src, port in consts:
            vals[(src, port)] = g.placeholder(src if port == doc.nodes[src].output_ports()[0].name
                                              else f"{src}_{port}")
        mods: dict[str, nn.Module] = {}
        inner = set(r.inner)
        emit_layers(g, doc, a, a.order, vals, mods, include=inner.__contains__, incoming=inc)
        results = [vals[_src(inc[(d, "x")])] for d in r.delays]
        results += [vals[_src(inc[(o, "x")])] for o in r.outputs]
        g.output(tuple(results))
        return graph_module(mods, g, "Cell")

    def build_states(self) -> nn.ModuleDict:
        """The Delay modules (initial states, learned ones included), by node id."""
        doc, a = self.doc, self.analysis
        return nn.ModuleDict({d: doc.nodes[d].spec.build(doc.nodes[d].params,
                                                         a.input_shapes(doc, d))
                              for d in self.region.delays})


def _src(e) -> tuple[str, str]:
    return (e.source, e.source_port)
