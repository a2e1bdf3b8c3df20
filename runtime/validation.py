"""Structural validation with networkx: parameters, ports, wiring, cycles, reachability,
and the id-range checks that need an analysis.

These are the checks of one document without blocks; ``runtime.validate`` (in
runtime/pipeline.py) expands blocks, runs them, then the shape analysis.
"""
from __future__ import annotations

import weakref
from collections import defaultdict

import networkx as nx

from .catalog import kinds_compatible
from .diagnostics import ERROR, WARNING, Diagnostic
from .graph import GraphDocument
from .recurrent.checks import check_recurrent
from .topology import RECURRENT_TAGS, feedforward_graph, is_delay
from .tracking import ChangeTracker


def structural_diagnostics(doc: GraphDocument) -> list[Diagnostic]:
    """Every check but shapes (``validate_structure``), incremental when the document
    keeps derived state: after an edit only what the edit can change is checked again.
    Blocks are not expanded here: runtime/pipeline.py does that first."""
    derived = getattr(doc, "derived", None)
    if derived is None:
        return validate_structure(doc)
    validator = derived.get("validator")
    if validator is None or validator._doc() is not doc:  # (a deepcopy of a document)
        validator = derived["validator"] = _Validator(doc)
    return validator.run()


# (type, parameter) that says how many ids an index-valued output can carry
_ID_SOURCES = {"TokenInput": "vocab_size", "Target": "num_classes"}
# (type, parameter) that says how many ids an index-valued input accepts
_ID_SINKS = {"Embedding": "num_embeddings", "OneHot": "num_classes"}


def check_id_ranges(doc: GraphDocument, analysis) -> list[Diagnostic]:
    """Ids out of range fail only at run time (IndexError), so catch them here: a token
    vocabulary larger than an Embedding or One-hot, or class ids a loss's scores lack."""
    out = []
    nodes = doc.nodes
    for e in doc.edges:
        src, dst = nodes[e.source], nodes[e.target]
        param = _ID_SOURCES.get(src.type)
        if param is None or (src.type == "Target" and src.params.get("kind") != "class"):
            continue
        count = src.params.get(param)
        if not isinstance(count, int):
            continue
        if dst.type in _ID_SINKS:
            cap = dst.params.get(_ID_SINKS[dst.type])
            if isinstance(cap, int) and count > cap:
                out.append(Diagnostic(
                    dst.id, ERROR, f"{_ID_SINKS[dst.type]} is {cap} but {src.display_name} "
                    f"gives ids up to {count - 1} ({param} {count})", port=e.target_port,
                    param=_ID_SINKS[dst.type], code="id_range", nodes=(dst.id, src.id)))
        elif dst.spec.is_loss and src.type == "Target":
            pred = next((x for x in doc.in_edges(dst.id) if x.target_port == "pred"), None)
            shape = analysis.edge_shape(pred) if pred is not None else None
            if shape and shape[-1] != count:
                out.append(Diagnostic(
                    dst.id, ERROR, f"target {src.display_name} has {count} classes but the "
                    f"scores from {pred.source} have {shape[-1]}", port=e.target_port,
                    code="id_range", nodes=(dst.id, src.id, pred.source)))
    return out


def validate_structure(doc: GraphDocument) -> list[Diagnostic]:
    """Every check but shapes, from scratch."""
    return check_params(doc) + check_ports(doc) + check_cycles(doc) + check_reachability(doc)


class _Validator:
    """Incremental ``validate_structure`` for one document (kept in ``doc.derived``).

    Re-checks the parameters of edited nodes only; the port check when edges, labels or
    the parameters of a node with parameter-dependent ports changed; cycles and
    reachability when edges (or, for the messages, labels) changed. Same result as
    ``validate_structure``.
    """

    def __init__(self, doc: GraphDocument):
        self._doc = weakref.ref(doc)  # no reference cycle: the document owns this object
        self._tracker = ChangeTracker(doc)
        self._params: dict[str, list[Diagnostic]] = {}
        self._ports: list[Diagnostic] = []
        self._cycles: list[Diagnostic] = []
        self._reach: list[Diagnostic] = []
        self._tagged = False  # the document has recurrent (tagged) nodes

    def run(self) -> list[Diagnostic]:
        doc = self._doc()
        ch = self._tracker.take()
        nodes = doc.nodes
        cache = self._params
        ports_dirty = ch.structure or ch.labels
        for nid in ch.params:
            node = nodes.get(nid)
            if node is None:
                cache.pop(nid, None)
                continue
            cache[nid] = param_diagnostics(node)
            spec = node.spec
            if callable(spec.inputs) or callable(spec.outputs):
                ports_dirty = True
        if ch.structure and len(cache) > len(nodes):
            for nid in [n for n in cache if n not in nodes]:
                del cache[nid]
        if ports_dirty:
            self._ports = check_ports(doc)
        if ch.structure:
            self._tagged = any(n.spec.tags for n in nodes.values())
        # Recurrent checks (part of check_cycles) also read parameters and labels.
        if ch.structure or (self._tagged and (ch.params or ch.labels)):
            self._cycles = check_cycles(doc)
        if ch.structure or ch.labels:
            self._reach = check_reachability(doc)
        out = [d for nid in nodes for d in cache[nid]]
        return out + self._ports + self._cycles + self._reach


def param_diagnostics(node) -> list[Diagnostic]:
    """The node's parameter problems (values out of range, wrong types...)."""
    return [Diagnostic(node.id, ERROR, f"{name}: {msg}", param=name, code="param",
                       nodes=(node.id,)) for name, msg in node.spec.param_problems(node.params)]


def check_params(doc: GraphDocument) -> list[Diagnostic]:
    out = []
    for node in doc:
        out += param_diagnostics(node)
    return out


def check_ports(doc: GraphDocument) -> list[Diagnostic]:
    out = []
    incoming: dict[tuple[str, str], list] = defaultdict(list)
    nodes = doc.nodes
    out_ports: dict[str, dict] = {}  # node id -> port name -> Port, built once per node
    in_ports: dict[str, dict] = {}
    in_tuples: dict[str, tuple] = {}

    def in_tuple(node):
        t = in_tuples.get(node.id)
        if t is None:
            t = in_tuples[node.id] = node.input_ports()
        return t
    for e in doc.edges:
        src, dst = nodes[e.source], nodes[e.target]
        outs = out_ports.get(src.id)
        if outs is None:
            outs = out_ports[src.id] = {p.name: p for p in src.output_ports()}
        ins = in_ports.get(dst.id)
        if ins is None:
            ins = in_ports[dst.id] = {p.name: p for p in in_tuple(dst)}
        if e.source_port not in outs:
            out.append(Diagnostic(src.id, ERROR, f"edge {e} leaves output '{e.source_port}', which "
                                  f"{src.type} no longer has", port=e.source_port, code="port",
                                  nodes=(src.id, dst.id)))
            continue
        if e.target_port not in ins:
            out.append(Diagnostic(dst.id, ERROR, f"edge {e} enters input '{e.target_port}', which "
                                  f"{dst.type} no longer has", port=e.target_port, code="port",
                                  nodes=(src.id, dst.id)))
            continue
        incoming[(e.target, e.target_port)].append(e)
        ok, ik = outs[e.source_port].kind, ins[e.target_port].kind
        if not kinds_compatible(ok, ik):
            out.append(Diagnostic(dst.id, ERROR, f"input '{e.target_port}' takes {ik} values but "
                                  f"{src.display_name}.{e.source_port} gives {ok} values",
                                  port=e.target_port, code="kind", nodes=(src.id, dst.id)))
    for (nid, port), edges in incoming.items():
        if len(edges) > 1:
            srcs = ", ".join(f"{e.source}.{e.source_port}" for e in edges)
            out.append(Diagnostic(nid, ERROR, f"input '{port}' has {len(edges)} incoming edges "
                                  f"({srcs}); an input takes one (use Add or Concatenate to "
                                  "combine)", port=port, code="fan_in",
                                  nodes=(nid,) + tuple(e.source for e in edges)))
    for node in doc:
        for p in in_tuple(node):
            if not p.optional and (node.id, p.name) not in incoming:
                out.append(Diagnostic(node.id, ERROR, f"input '{p.name}' is not connected",
                                      port=p.name, code="unconnected", nodes=(node.id,)))
    return out


def _feedforward_acyclic(doc: GraphDocument) -> bool:
    """Kahn's algorithm on the feed-forward graph (O(nodes + edges), no networkx)."""
    nodes = doc.nodes
    delays = {nid for nid, n in nodes.items() if is_delay(n)}
    succ: dict[str, set[str]] = {}
    indeg = dict.fromkeys(nodes, 0)
    for e in doc.edges:
        if e.source in delays:
            continue
        s = succ.setdefault(e.source, set())
        if e.target not in s:
            s.add(e.target)
            indeg[e.target] += 1
    ready = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for m in succ.get(n, ()):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return seen == len(nodes)


def check_cycles(doc: GraphDocument) -> list[Diagnostic]:
    out = []
    if not _feedforward_acyclic(doc):  # the usual case needs no component search
        g = feedforward_graph(doc)
        for comp in nx.strongly_connected_components(g):
            if len(comp) == 1:
                (n,) = comp
                if not g.has_edge(n, n):
                    continue
            cycle = [u for u, _ in nx.find_cycle(g.subgraph(comp))]
            names = " -> ".join(cycle + [cycle[0]])
            out.append(Diagnostic(cycle[0], ERROR, f"cycle without a Delay node: {names}. A "
                                  "recurrent connection must pass through a Delay node",
                                  code="cycle", nodes=tuple(cycle)))
    if not out and any(RECURRENT_TAGS & set(n.spec.tags) for n in doc):
        out += check_recurrent(doc)  # legal cycles: Delays in recurrent regions
    return out


def _closure(starts: list[str], step) -> set[str]:
    """``starts`` and every node reachable from them along ``step(node) -> edges``."""
    seen = set(starts)
    todo = list(starts)
    while todo:
        for nxt in step(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def check_reachability(doc: GraphDocument) -> list[Diagnostic]:
    sources = [n.id for n in doc if n.spec.source_kind == "input"]
    sinks = [n.id for n in doc if n.spec.is_loss or n.spec.is_output]
    out = []
    if not sources and len(doc):
        out.append(Diagnostic(None, WARNING, "the graph has no input node", code="no_input"))
    if not sinks and len(doc):
        out.append(Diagnostic(None, WARNING, "the graph has no loss or output node: nothing to "
                              "train or export", code="no_sink"))
    reached = _closure(sources, lambda n: [e.target for e in doc.out_edges(n)])
    feeds = _closure(sinks, lambda n: [e.source for e in doc.in_edges(n)])
    for node in doc:
        if node.spec.source_kind == "target":
            continue
        if sources and node.id not in reached:
            out.append(Diagnostic(node.id, WARNING, f"{node.display_name} is not reached from "
                                  "any input", code="unreachable", nodes=(node.id,)))
        if sinks and node.id not in feeds:
            out.append(Diagnostic(node.id, WARNING, f"{node.display_name} feeds no loss or "
                                  "output: its result is unused", code="dead_end",
                                  nodes=(node.id,)))
    return out
