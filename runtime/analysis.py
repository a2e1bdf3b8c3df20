"""Analysis: per-node output shapes, parameters, MACs, receptive field, activation memory.

Shapes come from running each node's real torch builder on ``meta`` tensors (no memory,
no compute), parameter counts from the built module, and multiply-accumulates from
``torch.utils.flop_counter`` (a matmul or convolution of F flops is F/2 MACs; bias
additions are not counted). Hand-written formulas only where torch's counter does not see
the weight multiplications (LeNet's sub-sampling, RBF units, the connection-table conv).

Results for one (type, params, input shapes) are memoised, so re-analysing a graph after
one edit recomputes only the nodes whose inputs changed: analysis is incremental. Layers
declared ``same_shape`` (element-wise, normalisation, dropout, same-shape sums: their
outputs have the first input's shape at every size) are run by torch once per *shape
class* (type, params, input ranks and kinds) and reused for other sizes, with the
declaration checked on torch's answer; their modules are still built for the parameter
count. Flops are summed by torch's own flop-counter dispatch mode without its per-module
bookkeeping (``_FlopTotal``).
"""
from __future__ import annotations

import json
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch
from torch.utils import flop_counter as _flop_counter

from .catalog import INDEX, ShapeError
from .catalog._util import fmt_shape
from .diagnostics import ERROR, Diagnostic
from .graph import GraphDocument, Node
from . import recurrent as _recurrent
from .validation import feedforward_graph, is_delay

META_BATCH = 2  # batch norm needs more than one sample per channel in training mode


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


class _Result:
    """Memoised outcome of one (type, params, input shapes): shapes, counts, or an error."""

    __slots__ = ("shapes", "kinds", "params", "macs", "bytes", "error", "error_port",
                 "error_param")

    def __init__(self):
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.kinds: dict[str, str] = {}
        self.params = self.macs = self.bytes = 0
        self.error: str | None = None
        self.error_port: str | None = None
        self.error_param: str | None = None  # the parameter in conflict with the input


_CACHE: OrderedDict[Any, _Result] = OrderedDict()
_CACHE_SIZE = 20_000


_EPOCH = 0  # bumped by clear_cache(): every Analyzer then starts afresh

# Shape classes of ``same_shape`` specs: (type, params, ranks and kinds of the inputs) ->
# (the representative's inputs, its _Result) when torch confirmed the declaration there,
# or None when it did not (then every size is evaluated in full).
_CLASSES: dict[Any, tuple[dict, _Result] | None] = {}


def clear_cache() -> None:
    global _EPOCH
    _CACHE.clear()
    _CLASSES.clear()
    _EPOCH += 1


def analyze(doc: GraphDocument) -> Analysis:
    """Analyse every node in topological order; errors become diagnostics, never raise.

    Incremental: the document keeps an :class:`Analyzer` (in ``doc.derived``) that re-uses
    the previous results of nodes whose parameters, inputs and upstream results did not
    change, so the answer always equals :func:`analyze_full`. Unchanged nodes' NodeInfo
    objects are shared between successive results: treat them as read-only.

    This is the analysis of a document without blocks; ``runtime.analyze`` (in
    runtime/pipeline.py) analyses any document, expanding its blocks first.
    """
    derived = getattr(doc, "derived", None)
    if derived is None:
        return analyze_full(doc)
    analyzer = derived.get("analyzer")
    if analyzer is None or analyzer._doc() is not doc:  # (a copy.deepcopy of a document)
        analyzer = derived["analyzer"] = Analyzer(doc)
    return analyzer.analyze()


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
            up = _recurrent.seed_delay(doc.nodes[src[0]])
        if up is None or src[1] not in up.output_shapes:
            ready = False  # upstream failed or not yet known: no second report
            continue
        ups[port.name] = up
        ins[port.name] = (up.output_shapes[src[1]], up.output_kinds[src[1]])
    if not ready:
        info.error = "inputs unknown"
        return None
    res = _analyse_node(node, ins)
    info.output_shapes, info.output_kinds = dict(res.shapes), dict(res.kinds)
    info.params, info.macs, info.activation_bytes = res.params, res.macs, res.bytes
    if res.error:
        info.error = res.error
        return _shape_diag(doc, node, res, incoming)
    if any(u.steps for u in ups.values()) or "sequence_in" in node.spec.tags:
        diag = _recurrent.per_step(node, info, ins, ups)  # T, per-sequence MACs, Collect
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
        from .tracking import ChangeTracker

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
        full = self._epoch != _EPOCH or self._order is None
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
            self._infos, self._diags, self._epoch = {}, {}, _EPOCH
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


def _shape_diag(doc, node: Node, res: _Result, incoming) -> Diagnostic:
    port = res.error_port
    msg = res.error
    involved = (node.id,)
    if not (port and port in incoming) and len(incoming) == 1:
        port = next(iter(incoming))
    if port and port in incoming:
        src, sport = incoming[port]
        if res.error_param:  # a parameter that conflicts with the input: say it first
            msg = f"{msg} (input '{port}' from {src}.{sport})"
        else:
            msg = f"input '{port}' from {src}.{sport}: {msg}"
        involved = (node.id, src)
    return Diagnostic(node.id, ERROR, msg, port=port, param=res.error_param, code="shape",
                      nodes=involved)


def _key(node: Node, ins) -> Any:
    try:
        params = json.dumps(node.params, sort_keys=True)
    except TypeError:
        params = repr(sorted(node.params.items()))
    return (node.type, params, tuple(sorted(ins.items())))


def _analyse_node(node: Node, ins) -> _Result:
    key = _key(node, ins)
    res = _CACHE.get(key)
    if res is not None:
        _CACHE.move_to_end(key)
        return res
    res = _same_shape(node, ins, key) if node.spec.same_shape and ins else None
    if res is None:
        res = _compute(node, ins)
    _CACHE[key] = res
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return res


def _same_shape(node: Node, ins, key) -> _Result | None:
    """The result for a ``same_shape`` spec from its shape class, or None (compute it).

    torch's meta forward (Python reference kernels for batch norm, ReLU, add: 0.2-1 ms a
    call) runs once per class, for the first size met; its result is kept only if every
    output has the first input's shape and kind and there are no MACs. For another size
    of the class the outputs take the new input's shape, the bytes scale with it, and the
    module is still built by its torch builder for its parameter count (and for the
    builder's own shape checks: any error sends the node through the full evaluation)."""
    first = node.spec.input_ports(node.params)[0].name
    if first not in ins:
        return None
    ckey = (key[0], key[1], tuple((p, len(shape), kind) for p, (shape, kind) in key[2]))
    if ckey not in _CLASSES:
        res = _compute(node, ins)
        if res.error is None:  # (an error says nothing about the class: try the next size)
            shape, kind = ins[first]
            ok = res.macs == 0 and bool(res.shapes) and all(
                res.shapes[p] == tuple(shape) and res.kinds[p] == kind for p in res.shapes)
            _CLASSES[ckey] = (ins, res) if ok else None
        return res
    cls = _CLASSES[ckey]
    if cls is None:
        return None
    rep_ins, rep = cls
    shape, _ = ins[first]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                module = node.spec.build(node.params, {k: v[0] for k, v in ins.items()})
    except Exception:  # noqa: BLE001 - the full evaluation reports it
        return None
    res = _Result()
    res.shapes = {p: tuple(shape) for p in rep.shapes}
    res.kinds = dict(rep.kinds)
    per_element = rep.bytes // max(1, _numel(rep_ins[first][0]))
    res.bytes = per_element * _numel(shape)
    res.params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return res


def _compute(node: Node, ins) -> _Result:
    spec, params = node.spec, node.params
    res = _Result()
    outs = spec.output_ports(params)
    if spec.is_source:
        shape = tuple(spec.source_shape(params))
        if _numel(shape) * META_BATCH > _MAX_NUMEL:
            res.error = (f"the per-sample shape {fmt_shape(shape)} has {_numel(shape):.3g} "
                         "elements, more than a torch tensor can hold (2^63)")
            res.error_param = _largest_param(node)
            return res
        for p in outs:
            res.shapes[p.name], res.kinds[p.name] = shape, p.kind
        res.bytes = _numel(shape) * (8 if outs[0].kind == INDEX else 4)
        return res
    if spec.build is None:  # Output nodes: pass-through
        return res
    shapes = {k: v[0] for k, v in ins.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                module = spec.build(params, shapes)
            args = [_meta_input(*ins[p.name]) for p in spec.input_ports(params) if p.name in ins]
            module.train()
            if spec.macs is not None:  # the override gives the MACs: no need to count
                counter = None
                y = module(*args)
            else:
                with _flops() as counter:
                    y = module(*args)
    except ShapeError as exc:
        res.error = str(exc)
        res.error_port = _port_in(str(exc), ins)
        res.error_param = exc.param
        return res
    except Exception as exc:  # torch's own message, cleaned of its call-site noise
        if "overflow" in str(exc).lower():  # sizes past what torch can index: say so plainly
            res.error_param = _largest_param(node)
            which = f" ({res.error_param} = {params[res.error_param]:,})" \
                if res.error_param else ""
            res.error = (f"the sizes are too large: this {spec.type}{which} on inputs of "
                         f"{', '.join(fmt_shape(v) for v in shapes.values()) or 'no shape'} "
                         "needs a tensor of more elements than torch can hold (2^63)")
            return res
        res.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        return res
    ys = y if isinstance(y, tuple) else (y,)
    if len(ys) != len(outs):
        res.error = f"internal: {spec.type} gave {len(ys)} outputs for {len(outs)} ports"
        return res
    for p, t in zip(outs, ys):
        res.shapes[p.name] = tuple(t.shape[1:]) if t.dim() else ()
        res.kinds[p.name] = INDEX if not t.is_floating_point() else "float"
        res.bytes += _numel(res.shapes[p.name]) * t.element_size()
    res.params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    if spec.macs is not None:
        res.macs = int(spec.macs(params, shapes, [res.shapes[p.name] for p in outs]))
    else:
        res.macs = int(counter.get_total_flops()) // 2 // META_BATCH
    return res


class _FlopTotal:
    """torch's flop counter without its per-module accounting: torch.utils.flop_counter's
    own dispatch mode (the same decompositions, the same per-op formulas of its registry)
    summing one total. FlopCounterMode also tracks the module hierarchy with global module
    hooks, which costs about 0.04 ms a node here and tells analysis nothing it uses."""

    def __init__(self):
        self.flop_registry = _flop_counter.flop_registry
        self.total = 0
        self._mode = _flop_counter._FlopCounterMode(self)

    def _count_flops(self, func_packet, out, args, kwargs):  # called by _FlopCounterMode
        formula = self.flop_registry.get(func_packet)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out

    def get_total_flops(self) -> int:
        return self.total

    def __enter__(self):
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)


def _flops():
    """A context counting the flops run inside it (``.get_total_flops()``)."""
    if hasattr(_flop_counter, "_FlopCounterMode"):
        return _FlopTotal()
    return _flop_counter.FlopCounterMode(display=False)  # a torch without the inner mode


_MAX_NUMEL = 2**63 - 1


def _largest_param(node: Node) -> str | None:
    """The whole-number parameter with the largest value (the likely cause of a size
    overflow), or None."""
    best, name = 0, None
    for k, v in node.params.items():
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            if isinstance(x, int) and not isinstance(x, bool) and x > best:
                best, name = x, k
    return name


def _port_in(message: str, ins) -> str | None:
    head = message.split(":", 1)[0].strip()
    if head in ins:
        return head
    return next(iter(ins)) if len(ins) == 1 else None


def _meta_input(shape, kind) -> torch.Tensor:
    dtype = torch.long if kind == INDEX else torch.float32
    return torch.empty((META_BATCH,) + tuple(shape), dtype=dtype, device="meta")


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


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
