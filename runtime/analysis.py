"""Analysis: per-node output shapes, parameters, MACs, receptive field, activation memory.

Each node is evaluated by runtime/evaluation.py (its torch builder on ``meta`` tensors,
memoised per type, parameters and input shapes) in topological order; recurrent regions
add their per-step bookkeeping (runtime/recurrent/steps.py). Analysis is incremental: a
document keeps an :class:`Analyzer` that re-evaluates only the nodes an edit can change.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import networkx as nx

from .catalog import fmt_shape
from .diagnostics import ERROR, Diagnostic
from .evaluation import Result, clear_cache, epoch, evaluate
from .graph import GraphDocument, Node
from .recurrent.steps import delay_shape, per_step
from .topology import feedforward_graph, is_delay
from .tracking import ChangeTracker

__all__ = ["NodeInfo", "Analysis", "analyze", "analyze_full", "Analyzer", "describe",
           "clear_cache"]


@dataclass
class NodeInfo:
    """What analysis knows about one node. Shapes are per sample (batch excluded)."""

    output_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    output_kinds: dict[str, str] = field(default_factory=dict)  # port -> "float"/"index"
    params: int = 0  # trainable parameters
    macs: int = 0  # multiply-accumulates per sample
    activation_bytes: int = 0  # bytes of this node's outputs per sample
    receptive_field: tuple[int, ...] | None = None  # input pixels seen, per spatial axis
    jump: tuple[int, ...] | None = None  # input pixels between neighbouring outputs
    error: str | None = None  # this node could not be analysed (message names the cause)
    steps: int | None = None  # a per-step value of a recurrent region: its sequence length T

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return next(iter(self.output_shapes.values()), None)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.output_shapes or not self.output_kinds)


@dataclass
class Analysis:
    nodes: dict[str, NodeInfo]
    order: list[str]
    diagnostics: list[Diagnostic]

    @property
    def total_params(self) -> int:
        return sum(i.params for i in self.nodes.values())

    @property
    def total_macs(self) -> int:
        return sum(i.macs for i in self.nodes.values())

    @property
    def total_activation_bytes(self) -> int:
        return sum(i.activation_bytes for i in self.nodes.values())

    def edge_shape(self, edge) -> tuple[int, ...] | None:
        info = self.nodes.get(edge.source)
        return info.output_shapes.get(edge.source_port) if info else None

    def input_shapes(self, doc: GraphDocument, node_id: str) -> dict[str, tuple[int, ...]]:
        out = {}
        for e in doc.in_edges(node_id):
            shape = self.edge_shape(e)
            if shape is not None:
                out[e.target_port] = shape
        return out



def analyze(doc: GraphDocument) -> Analysis:
    """Analyse every node in topological order; errors become diagnostics, never raise.

    Incremental: the document keeps an :class:`Analyzer` (in ``doc.derived``) that re-uses
    the previous results of nodes whose parameters, inputs and upstream results did not
    change, so the answer always equals :func:`analyze_full`. Unchanged nodes' NodeInfo
    objects are shared between successive results: treat them as read-only.

    This is the analysis of a document without blocks; ``runtime.analyze`` (in
    runtime/pipeline.py) analyses any document, expanding its blocks first.
    """
    try:
        return _analyze(doc)
    except Exception as exc:  # noqa: BLE001 - the promise above; the cause is named
        derived = getattr(doc, "derived", None)
        if derived is not None:
            derived.pop("analyzer", None)  # (its state may be half-updated: start afresh)
        first = (str(exc).splitlines() or [""])[0][:200]
        return Analysis({}, [], [Diagnostic(None, ERROR, "the graph cannot be analysed "
                                            f"({type(exc).__name__}: {first}); run validate "
                                            "for its problems", code="analysis")])


def _analyze(doc: GraphDocument) -> Analysis:
    derived = getattr(doc, "derived", None)
    if derived is None:
        return analyze_full(doc)
    analyzer = derived.get("analyzer")
    if analyzer is None or analyzer._doc() is not doc:  # (a copy.deepcopy of a document)
        analyzer = derived["analyzer"] = Analyzer(doc)
    return analyzer.analyze()


def _delay_info(node) -> NodeInfo | None:
    """A Delay's output, known from its parameters (its consumers come first)."""
    shape = delay_shape(node)
    if shape is None:
        return None
    return NodeInfo(output_shapes={"out": shape}, output_kinds={"out": "float"})


def _cycle_analysis() -> Analysis:
    return Analysis({}, [], [Diagnostic(None, ERROR, "the graph has a cycle without a "
                                        "Delay node; run validate for details", code="cycle")])


def _incoming(doc: GraphDocument) -> dict[str, dict[str, tuple[str, str]]]:
    incoming: dict[str, dict[str, tuple[str, str]]] = {n: {} for n in doc.nodes}
    for e in doc.edges:
        incoming[e.target][e.target_port] = (e.source, e.source_port)
    return incoming


def analyze_full(doc: GraphDocument) -> Analysis:
    """Analyse every node from scratch (only the per-node memo is shared)."""
    g = feedforward_graph(doc)
    try:
        order = list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        return _cycle_analysis()
    incoming = _incoming(doc)
    infos: dict[str, NodeInfo] = {}
    diags: list[Diagnostic] = []
    for nid in order:
        diag = _analyse_one(doc, doc.nodes[nid], incoming[nid], infos)
        if diag is not None:
            diags.append(diag)
    return Analysis(infos, order, diags)


def _analyse_one(doc: GraphDocument, node: Node, incoming: dict[str, tuple[str, str]],
                 infos: dict[str, NodeInfo]) -> Diagnostic | None:
    """Analyse one node from its upstream results in ``infos``; adds its NodeInfo there."""
    nid = node.id
    info = NodeInfo()
    infos[nid] = info
    ins, ups, ready = {}, {}, True
    for port in node.input_ports():
        src = incoming.get(port.name)
        if src is None:
            if not port.optional:
                ready = False
            continue
        up = infos.get(src[0])
        if up is None and is_delay(doc.nodes[src[0]]):  # known from its params: comes later
            up = _delay_info(doc.nodes[src[0]])
        if up is None or src[1] not in up.output_shapes:
            ready = False  # upstream failed or not yet known: no second report
            continue
        ups[port.name] = up
        ins[port.name] = (up.output_shapes[src[1]], up.output_kinds[src[1]])
    if not ready:
        info.error = "inputs unknown"
        return None
    try:
        res = evaluate(node, ins)
    except Exception as exc:  # noqa: BLE001 - analyze never raises (see _unanalysable)
        res = _unanalysable(node, exc)
    info.output_shapes, info.output_kinds = dict(res.shapes), dict(res.kinds)
    info.params, info.macs, info.activation_bytes = res.params, res.macs, res.bytes
    if res.error:
        info.error = res.error
        return _shape_diag(doc, node, res, incoming)
    if any(u.steps for u in ups.values()) or "sequence_in" in node.spec.tags:
        diag = per_step(node, info, ins, ups)  # T, per-sequence MACs, Collect
        if diag is not None:
            return diag
    _receptive(node, info, [ups[p] for p in ins])
    return None


class Analyzer:
    """Incremental analysis of one document (``analyze(doc)`` keeps one per document).

    After an edit it re-analyses only the nodes whose parameters or incoming edges
    changed, and downstream nodes whose upstream results changed; everything else keeps
    its previous NodeInfo. Changes are learnt from the document's events (see
    runtime/tracking.py), so the result is always that of :func:`analyze_full`.
    """

    def __init__(self, doc: GraphDocument):
        self._doc = weakref.ref(doc)  # no reference cycle: the document owns this object
        self._tracker = ChangeTracker(doc)
        self._epoch = -1
        self._order: list[str] | None = None
        self._incoming: dict[str, dict[str, tuple[str, str]]] = {}
        self._after_delay: set[str] = set()
        self._infos: dict[str, NodeInfo] = {}
        self._diags: dict[str, Diagnostic] = {}

    def analyze(self) -> Analysis:
        doc = self._doc()
        changes = self._tracker.take()
        full = self._epoch != epoch() or self._order is None
        if full or changes.structure:
            try:
                self._order = list(nx.topological_sort(feedforward_graph(doc)))
            except nx.NetworkXUnfeasible:
                self._order = None
                return _cycle_analysis()
            self._incoming = _incoming(doc)
            nodes = doc.nodes
            # A node fed by a Delay may come before it in the order (it then reads the
            # Delay's seed from its parameters): always re-analyse such nodes (memo hits).
            self._after_delay = {e.target for e in doc.edges if is_delay(nodes[e.source])}
        if full:
            self._infos, self._diags, self._epoch = {}, {}, epoch()
        dirty = changes.params | changes.inputs | self._after_delay
        order, incoming, nodes = self._order, self._incoming, doc.nodes
        old_infos, old_diags = self._infos, self._diags
        infos: dict[str, NodeInfo] = {}
        diags: dict[str, Diagnostic] = {}
        changed: set[str] = set()  # nodes whose NodeInfo differs from the previous one
        for nid in order:
            old = old_infos.get(nid)
            if old is not None and nid not in dirty and (
                    not changed or not any(src in changed for src, _ in incoming[nid].values())):
                infos[nid] = old
                diag = old_diags.get(nid)
            else:
                diag = _analyse_one(doc, nodes[nid], incoming[nid], infos)
                if old is not None and infos[nid] == old:
                    infos[nid] = old  # same result: downstream nodes need no second look
                else:
                    changed.add(nid)
            if diag is not None:
                diags[nid] = diag
        self._infos, self._diags = infos, diags
        return Analysis(dict(infos), list(order), list(diags.values()))


def _unanalysable(node: Node, exc: Exception) -> Result:
    """The result for a node whose analysis raised: parameters validation refuses (say
    ``steps: null``, which validate reports) reach code that assumes valid ones."""
    res = Result()
    problems = node.spec.param_problems(node.params)
    if problems:
        res.error_param, msg = problems[0]
        res.error = f"{res.error_param}: {msg}"
    else:
        res.error = f"cannot analyse this {node.type}: {type(exc).__name__}: " \
                    f"{(str(exc).splitlines() or [''])[0]}"
    return res


def _shape_diag(doc, node: Node, res: Result, incoming) -> Diagnostic:
    port = res.error_port
    msg = res.error
    involved = (node.id,)
    if not (port and port in incoming) and len(incoming) == 1:
        port = next(iter(incoming))
    if port and port in incoming:
        src, sport = incoming[port]
        if msg.startswith(f"{port}: "):  # (the builder's own prefix: said below)
            msg = msg[len(port) + 2:]
        if res.error_param:  # a parameter that conflicts with the input: say it first
            msg = f"{msg} (input '{port}' from {src}.{sport})"
        else:
            msg = f"input '{port}' from {src}.{sport}: {msg}"
        involved = (node.id, src)
    return Diagnostic(node.id, ERROR, msg, port=port, param=res.error_param, code="shape",
                      nodes=involved)



def _receptive(node: Node, info: NodeInfo, ups: list[NodeInfo]) -> None:
    """Receptive field r and jump j per spatial axis (r' = r + (k - 1) d j, j' = j s)."""
    spec = node.spec
    if spec.is_source:
        if node.type in ("ImageInput", "SequenceInput", "TokenInput"):
            n = {"ImageInput": 2}.get(node.type, 1)
            info.receptive_field, info.jump = (1,) * n, (1,) * n
        return
    prev = [u for u in ups if u.receptive_field is not None]
    if not prev:
        return
    rf = tuple(max(u.receptive_field[i] for u in prev) for i in range(len(prev[0].receptive_field)))
    jump = tuple(max(u.jump[i] for u in prev) for i in range(len(prev[0].jump)))
    geom = spec.receptive(node.params) if spec.receptive else None
    if geom == "reset":
        return
    if geom:
        n = len(rf)
        k, s, d = geom["kernel"][-n:], geom["stride"][-n:], geom["dilation"][-n:]
        if len(k) == n:
            rf = tuple(r + (ki - 1) * di * j for r, ki, di, j in zip(rf, k, d, jump))
            jump = tuple(j * si for j, si in zip(jump, s))
    info.receptive_field, info.jump = rf, jump


def describe(info: NodeInfo) -> str:
    """One line for tooltips: shape, params, MACs, receptive field."""
    parts = [fmt_shape(info.output_shape or ())]
    if info.params:
        parts.append(f"{info.params:,} params")
    if info.macs:
        parts.append(f"{info.macs:,} MACs")
    if info.receptive_field:
        parts.append("RF " + "x".join(map(str, info.receptive_field)))
    return " | ".join(parts)

