"""Recurrent graphs: regions, their checks, per-step analysis, compiling, unrolling.

A *recurrent region* is what runs once per time step: the nodes reached from
``SequenceStep`` nodes (x_t) and ``Delay`` nodes (the previous step's state), up to and
including the ``Collect`` / ``Last`` nodes that turn per-step values back into a sequence
or a final value. A value from outside the region (e.g. an encoder's summary) enters
every step unchanged. Everything else is the ordinary feed-forward graph.

- Validation (:func:`check_recurrent`): Delays sit inside a region with a time axis; a
  per-step value never reaches a loss, an output or a whole-sequence input directly; the
  region's steps agree on direction and truncation; the region does not depend on its
  own result.
- Analysis (:func:`seed_delay`, :func:`per_step`, called from analysis.py): shapes inside
  a region are per step; a Delay's output shape is its ``shape`` parameter; the time
  axis T travels with the per-step values (``NodeInfo.steps``), so two sequences of
  different lengths meeting in one cell is an error; MACs are per sequence (per-step
  MACs times T); parameters are counted once.
- Compiling (:func:`compile_plan`, called from compiler.build_module): each region
  becomes ONE submodule (:class:`RecurrentLoop`) that owns the cell, an fx.GraphModule of
  one step whose submodules are named after the nodes, and loops over time with that one
  parameter set: any sequence length at run time, optional truncated BPTT, reversed
  time. A standard LSTM, GRU (torch's form) or Elman cell drawn by hand is lowered to
  torch's fused kernel with the same weight tensors (:class:`LoweredLSTM`,
  :class:`LoweredGRU`, :class:`LoweredRNN`).
- Unrolling (:func:`unroll`): the rolled document -> a document over T steps whose node
  ids are ``<rolled id>_t<step>`` with the mapping in ``metadata['unrolled_from']``.
"""
from __future__ import annotations

import contextlib
import operator
from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx
import torch
from torch import fx, nn

from .diagnostics import ERROR, WARNING, Diagnostic
from .graph import GraphDocument

SEQ_IN, SEQ_OUT, DELAY = "sequence_in", "sequence_out", "delay"
_RECURRENT_TAGS = {SEQ_IN, SEQ_OUT, DELAY}


def _tags(node) -> tuple[str, ...]:
    return node.spec.tags


def has_recurrent_nodes(doc: GraphDocument) -> bool:
    return any(_RECURRENT_TAGS & set(_tags(n)) for n in doc)


# ---- regions -------------------------------------------------------------------------


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


def stepwise_nodes(doc: GraphDocument) -> set[str]:
    """Nodes that run once per step: reached from a SequenceStep or a Delay, stopping
    after Collect / Last (whose outputs are whole-sequence values)."""
    out_edges = defaultdict(list)
    for e in doc.edges:
        out_edges[e.source].append(e)
    start = [n.id for n in doc if {SEQ_IN, DELAY} & set(_tags(n))]
    seen, stack = set(start), list(start)
    while stack:
        u = stack.pop()
        if SEQ_OUT in _tags(doc.nodes[u]):
            continue
        for e in out_edges[u]:
            if e.target not in seen:
                seen.add(e.target)
                stack.append(e.target)
    return seen


def _inner_edge(doc, e, S) -> bool:
    """Whether edge e joins two nodes of the same region (carries a per-step value)."""
    if e.source not in S or e.target not in S:
        return False
    src, dst = doc.nodes[e.source], doc.nodes[e.target]
    if SEQ_OUT in _tags(src) or SEQ_IN in _tags(dst):
        return False
    return not (DELAY in _tags(dst) and e.target_port == "init")


def find_regions(doc: GraphDocument) -> tuple[list[Region], set[str]]:
    """The recurrent regions (connected groups of per-step nodes) and the per-step set."""
    S = stepwise_nodes(doc)
    if not S:
        return [], S
    g = nx.Graph()
    g.add_nodes_from(S)
    g.add_edges_from((e.source, e.target) for e in doc.edges if _inner_edge(doc, e, S))
    index = {nid: i for i, nid in enumerate(doc.nodes)}
    comps = sorted((sorted(c, key=index.get) for c in nx.connected_components(g)),
                   key=lambda c: index[c[0]])
    used = set(doc.nodes)
    regions = []
    for comp in comps:
        r = Region("")
        for nid in comp:
            tags = _tags(doc.nodes[nid])
            r.nodes.append(nid)
            (r.steps if SEQ_IN in tags else r.delays if DELAY in tags
             else r.outputs if SEQ_OUT in tags else r.inner).append(nid)
        stem = f"{(r.steps or r.nodes)[0]}_loop"
        name, i = stem, 2
        while name in used:
            name, i = f"{stem}{i}", i + 1
        used.add(name)
        r.name = name
        regions.append(r)
    return regions, S


# ---- validation ------------------------------------------------------------------------


def check_recurrent(doc: GraphDocument) -> list[Diagnostic]:
    """Recurrent structure checks (called by validation.validate when there are
    recurrent nodes); every message names the nodes involved."""
    if not has_recurrent_nodes(doc):
        return []
    regions, S = find_regions(doc)
    nodes = doc.nodes
    out: list[Diagnostic] = []
    region_of = {nid: r for r in regions for nid in r.nodes}

    def err(nid, msg, involved, port=None, code="recurrent"):
        out.append(Diagnostic(nid, ERROR, msg, port=port, code=code, nodes=tuple(involved)))

    for n in doc:
        if SEQ_OUT in _tags(n) and n.id not in S and doc.in_edges(n.id):
            err(n.id, f"{n.display_name} takes a per-step value, but its input comes from "
                "outside any recurrent region: put a 'For each time step' (SequenceStep) "
                "node before the cell it ends", [n.id], port="x")
    for e in doc.edges:
        if e.source not in S or SEQ_OUT in _tags(nodes[e.source]):
            continue
        src, dst = nodes[e.source], nodes[e.target]
        r = region_of.get(e.source)
        if r is not None and not r.steps:
            continue  # a Delay without a time axis: reported once below
        where = f"the recurrent region of {r.describe(doc)}" if r else "a recurrent region"
        if SEQ_IN in _tags(dst):
            err(dst.id, f"input 'seq' takes a whole sequence, but {src.display_name} gives a "
                f"per-step value (it runs inside {where}): Collect the steps first",
                [dst.id, src.id], port=e.target_port)
        elif DELAY in _tags(dst) and e.target_port == "init":
            err(dst.id, f"input 'init' is the state before the first step and must come "
                f"from outside the recurrent region, but {src.display_name} gives a "
                "per-step value", [dst.id, src.id], port="init")
        elif dst.spec.is_loss or dst.spec.is_output or dst.spec.is_source \
                or "recurrent" in _tags(dst):
            err(dst.id, f"{dst.display_name} receives a per-step value from "
                f"{src.display_name} (inside {where}); put a Collect (every step) or Last "
                "(final step) node between", [dst.id, src.id], port=e.target_port)
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
    delays = {n.id for n in doc if DELAY in _tags(n)}
    for e in doc.edges:
        if e.source in delays and _inner_edge(doc, e, S):
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


# ---- analysis ---------------------------------------------------------------------------


def seed_delay(node):
    """A Delay's output is known from its parameters (its consumers come first)."""
    from .analysis import NodeInfo

    shape = node.params.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
        return None
    return NodeInfo(output_shapes={"out": tuple(shape)}, output_kinds={"out": "float"})


def per_step(node, info, ins, ups) -> Diagnostic | None:
    """Per-step bookkeeping after a node is analysed: the time axis T moves along per-step
    values; MACs and activation memory of per-step nodes are per sequence (x T); Collect
    gives (T, ...). ``ins``: port -> (shape, kind); ``ups``: port -> upstream NodeInfo."""
    tags = _tags(node)
    if SEQ_IN in tags:
        if "seq" in ins and ins["seq"][0]:
            info.steps = ins["seq"][0][0]
        return None
    steps = {p: u.steps for p, u in ups.items() if u is not None and u.steps}
    if not steps:
        return None
    if len(set(steps.values())) > 1:
        (p1, t1), (p2, t2) = list(steps.items())[:2]
        info.error = "time axes disagree"
        return Diagnostic(node.id, ERROR, f"input '{p2}' is a step of a sequence of {t2} "
                          f"steps but input '{p1}' is a step of one of {t1} steps: the "
                          "sequences of one recurrent region must have the same length",
                          port=p2, code="time_axis", nodes=(node.id,))
    t = next(iter(steps.values()))
    if SEQ_OUT in tags:
        if node.type == "Collect" and "out" in info.output_shapes:
            info.output_shapes["out"] = (t,) + tuple(info.output_shapes["out"][1:])
            info.activation_bytes *= t
        return None
    info.steps = t
    info.macs *= t
    info.activation_bytes *= t
    return None


# ---- compiling -----------------------------------------------------------------------------

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


def compile_plan(doc: GraphDocument, analysis):
    """(order, regions): the compile order with each region as one item (its name), and
    the regions by name. Feed-forward graphs: (analysis.order, {})."""
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
    return order, {r.name: RegionCompiler(doc, analysis, r) for r in regions}


class RegionCompiler:
    """Emits one region as one call_module of a :class:`RecurrentLoop`."""

    def __init__(self, doc, analysis, region: Region):
        self.doc, self.analysis, self.region = doc, analysis, region

    def emit(self, graph: fx.Graph, modules: dict, values: dict, needed: set) -> None:
        doc, r = self.doc, self.region
        if not any(o in needed for o in r.outputs):
            return
        inc = {(e.target, e.target_port): e for e in doc.edges}
        inside = set(r.nodes)
        seq_args = [values[_src(inc[(s, "seq")])] for s in r.steps]
        consts: list[tuple[str, str]] = []
        for nid in r.inner + r.delays + r.outputs:
            for e in doc.in_edges(nid):
                if e.source not in inside and not (nid in r.delays and e.target_port == "init"):
                    if _src(e) not in consts:
                        consts.append(_src(e))
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

    def build_cell(self, consts, inc) -> fx.GraphModule:
        """One step as an fx.GraphModule: (x_t..., states..., consts...) ->
        (new states..., per-step outputs...)."""
        from .compiler import _Root

        doc, a, r = self.doc, self.analysis, self.region
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
        for nid in a.order:
            if nid not in inner:
                continue
            node = doc.nodes[nid]
            spec = node.spec
            args = [vals[_src(inc[(nid, p.name)])] for p in spec.input_ports(node.params)
                    if (nid, p.name) in inc]
            mods[nid] = spec.build(node.params, a.input_shapes(doc, nid))
            call = g.create_node("call_module", nid, tuple(args), {}, name=nid)
            outs = spec.output_ports(node.params)
            if len(outs) == 1:
                vals[(nid, outs[0].name)] = call
            else:
                for i, p in enumerate(outs):
                    vals[(nid, p.name)] = g.create_node("call_function", operator.getitem,
                                                        (call, i), {}, name=f"{nid}_{p.name}")
        results = [vals[_src(inc[(d, "x")])] for d in r.delays]
        results += [vals[_src(inc[(o, "x")])] for o in r.outputs]
        g.output(tuple(results))
        g.lint()
        return fx.GraphModule(_Root(mods), g, class_name="Cell")

    def build_states(self) -> nn.ModuleDict:
        """The Delay modules (initial states, learned ones included), by node id."""
        doc, a = self.doc, self.analysis
        return nn.ModuleDict({d: doc.nodes[d].spec.build(doc.nodes[d].params,
                                                         a.input_shapes(doc, d))
                              for d in self.region.delays})


def _src(e) -> tuple[str, str]:
    return (e.source, e.source_port)


class RecurrentLoop(nn.Module):
    """Runs ``cell`` once per time step with one parameter set (BPTT through the loop).

    forward(sequences..., constants..., initial states of 'input' Delays...) -> one value
    per Collect (N, T, ...) or Last (N, ...) node, as a tuple. Any T works at run time.
    """

    def __init__(self, cell: fx.GraphModule, states: nn.ModuleDict, n_seq: int, n_const: int,
                 outputs: list[str], reverse: bool = False, tbptt: int = 0):
        super().__init__()
        self.cell, self.states = cell, states  # states: the Delay nodes, in region order
        self.n_seq, self.n_const = n_seq, n_const
        self.outputs = list(outputs)
        self.reverse, self.tbptt = reverse, tbptt

    def initial_states(self, n, like, inits):
        inits = list(inits)
        states = []
        for m in self.states.values():
            states.append(m.initial_state(n, like, inits.pop(0) if m.init == "input" else None))
        return states

    def forward(self, *args):
        seqs = args[:self.n_seq]
        consts = args[self.n_seq:self.n_seq + self.n_const]
        inits = args[self.n_seq + self.n_const:]
        n, steps = seqs[0].shape[0], seqs[0].shape[1]
        like = next((a for a in args if a.is_floating_point()), None)
        if like is None:
            like = next((p for p in self.parameters()), torch.zeros(()))
        states = self.initial_states(n, like, inits)
        if _exporting() and not self.tbptt:
            return scan_loop(self.cell, seqs, consts, states, self.outputs, self.reverse)
        nd = len(self.states)
        collected: list[list[torch.Tensor]] = [[] for _ in self.outputs]
        last: list[torch.Tensor | None] = [None] * len(self.outputs)
        order = range(steps - 1, -1, -1) if self.reverse else range(steps)
        for i, t in enumerate(order):
            res = self.cell(*[s[:, t] for s in seqs], *states, *consts)
            states = list(res[:nd])
            for j, y in enumerate(res[nd:]):
                if self.outputs[j] == "Collect":
                    collected[j].append(y)
                else:
                    last[j] = y
            if self.tbptt and (i + 1) % self.tbptt == 0:
                states = [s.detach() for s in states]
        out = []
        for j, kind in enumerate(self.outputs):
            if kind == "Collect":
                ys = collected[j][::-1] if self.reverse else collected[j]
                out.append(torch.stack(ys, 1))
            else:
                out.append(last[j])
        return tuple(out)


def _exporting() -> bool:
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting())


def scan_loop(cell, seqs, consts, states, outputs, reverse=False):
    """The time loop as torch's ``scan`` (used while torch.export traces the module, so the
    program keeps the sequence length dynamic instead of unrolling one length)."""
    from torch._higher_order_ops.scan import scan

    nd = len(states)

    def step(carry, xs):
        res = cell(*xs, *carry, *consts)
        return tuple(res[:nd]), tuple(y.clone() for y in res[nd:])

    xs = tuple(torch.flip(s, [1]) if reverse else s for s in seqs)
    xs = tuple(s.transpose(0, 1) for s in xs)  # time first
    _, ys = scan(step, tuple(s.contiguous() for s in states), xs)
    out = []
    for kind, y in zip(outputs, ys):
        if kind == "Collect":
            y = y.transpose(0, 1)
            out.append(torch.flip(y, [1]) if reverse else y)
        else:
            out.append(y[-1])
    return tuple(out)


# ---- lowering standard hand-drawn cells to fused kernels ------------------------------------


class _Matcher:
    """Reads the structure of a region's cell: consumers and producers by port."""

    def __init__(self, doc, region, inc):
        self.doc, self.r, self.inc = doc, region, inc
        self.cons = defaultdict(list)
        for e in doc.edges:
            self.cons[e.source].append(e.target)

    def type(self, nid):
        return self.doc.nodes[nid].type

    def srcs(self, nid):
        node = self.doc.nodes[nid]
        return [self.inc[(nid, p.name)].source for p in node.input_ports()
                if (nid, p.name) in self.inc]

    def fed(self, delay):
        """The node whose value a Delay carries to the next step (its ``x`` input; the
        ``init`` input, when there is one, is the state before the first step)."""
        return self.inc[(delay, "x")].source

    def only(self, nid, type_id):
        """The single consumer of nid, if it has that type."""
        c = self.cons[nid]
        return c[0] if len(c) == 1 and self.type(c[0]) == type_id else None


def lower_cell(doc, r: Region, cell, inc):
    """A fused-kernel loop for a standard hand-drawn LSTM, GRU or Elman cell, else None."""
    if len(r.steps) != 1 or any(doc.nodes[d].params.get("init") == "learned"
                                for d in r.delays):
        return None
    m = _Matcher(doc, r, inc)
    step = r.steps[0]
    try:
        if len(r.delays) == 2:
            return _match_lstm(m, doc, r, cell, step)
        if len(r.delays) == 1:
            return _match_rnn(m, doc, r, cell, step) or _match_gru(m, doc, r, cell, step)
    except (KeyError, ValueError, IndexError, StopIteration):
        return None
    return None


def _concat_of(m, doc, step, h_delay):
    """The Concat [h_{t-1}, x_t] (either order) feeding the gates; (id, h_first)."""
    cats = [c for c in m.cons[h_delay] if m.type(c) == "Concat"]
    for c in cats:
        srcs = m.srcs(c)
        if sorted(srcs) == sorted([step, h_delay]) and len(srcs) == 2 and \
                doc.nodes[c].params.get("axis") in (0, -1):
            return c, srcs[0] == h_delay
    raise ValueError("no concat")


def _match_lstm(m, doc, r, cell, step):
    inner = set(r.inner)
    types = sorted(m.type(n) for n in inner)
    if types != sorted(["Concat"] + ["Dense"] * 4 + ["Sigmoid"] * 3 + ["Tanh"] * 2
                       + ["Multiply"] * 3 + ["Add"]):
        return None
    add = next(n for n in inner if m.type(n) == "Add")
    c_delay = next(d for d in r.delays if m.fed(d) == add)
    h_delay = next(d for d in r.delays if d != c_delay)
    cat, h_first = _concat_of(m, doc, step, h_delay)
    if m.cons[step] != [cat] or set(m.cons[h_delay]) != {cat}:
        return None
    denses = m.cons[cat]
    if len(denses) != 4 or any(m.type(d) != "Dense" or not doc.nodes[d].params["bias"]
                               for d in denses):
        return None
    act = {d: m.cons[d][0] for d in denses if len(m.cons[d]) == 1}
    if len(act) != 4:
        return None
    mul_fc = m.srcs(add)
    if len(mul_fc) != 2 or any(m.type(x) != "Multiply" for x in mul_fc):
        return None
    f_mul = next(x for x in mul_fc if c_delay in m.srcs(x))
    i_mul = next(x for x in mul_fc if x != f_mul)
    sig_f = next(s for s in m.srcs(f_mul) if s != c_delay)
    sig_i, tanh_g = m.srcs(i_mul)
    if m.type(sig_i) != "Sigmoid":
        sig_i, tanh_g = tanh_g, sig_i
    h_mul = m.fed(h_delay)
    sig_o, tanh_c = m.srcs(h_mul)
    if m.type(sig_o) != "Sigmoid":
        sig_o, tanh_c = tanh_c, sig_o
    if m.type(tanh_c) != "Tanh" or m.srcs(tanh_c) != [add] or m.type(h_mul) != "Multiply":
        return None
    by_act = {a: d for d, a in act.items()}
    gates = [by_act[sig_i], by_act[sig_f], by_act[tanh_g], by_act[sig_o]]  # torch order
    if [m.type(x) for x in (sig_i, sig_f, tanh_g, sig_o)] != ["Sigmoid"] * 2 + ["Tanh", "Sigmoid"]:
        return None
    if sorted(m.cons[c_delay]) != [f_mul] or len(m.cons[f_mul]) != 1:
        return None
    outs = []
    for o in r.outputs:
        src = m.srcs(o)[0]
        if src == h_mul:
            outs.append(("h", doc.nodes[o].type))
        elif src == add and doc.nodes[o].type == "Last":
            outs.append(("c", "Last"))
        else:
            return None
    init = [doc.nodes[h_delay].params["init"], doc.nodes[c_delay].params["init"]]
    # the loop's init arguments follow the region's delay order
    order = [0, 1] if r.delays.index(h_delay) < r.delays.index(c_delay) else [1, 0]
    hidden = doc.nodes[h_delay].params["shape"][0]
    return LoweredLSTM(cell, gates, h_first, hidden, outs, init, order,
                       bool(doc.nodes[step].params.get("reverse")))


def _match_rnn(m, doc, r, cell, step):
    inner = set(r.inner)
    if len(inner) != 3:
        return None
    h_delay = r.delays[0]
    cat, h_first = _concat_of(m, doc, step, h_delay)
    dense = m.only(cat, "Dense")
    if dense is None or not doc.nodes[dense].params["bias"] or len(m.cons[dense]) != 1:
        return None
    act = m.cons[dense][0]
    if m.type(act) not in ("Tanh", "ReLU") or m.fed(h_delay) != act:
        return None
    if m.cons[step] != [cat] or m.cons[h_delay] != [cat]:
        return None
    if any(m.srcs(o) != [act] for o in r.outputs):
        return None
    hidden = doc.nodes[h_delay].params["shape"][0]
    return LoweredRNN(cell, dense, h_first, hidden, [doc.nodes[o].type for o in r.outputs],
                      doc.nodes[h_delay].params["init"], m.type(act).lower(),
                      bool(doc.nodes[step].params.get("reverse")))


def _match_gru(m, doc, r, cell, step):
    """torch's GRU drawn as runtime.cells.add_gru_cell draws it."""
    inner = set(r.inner)
    types = sorted(m.type(n) for n in inner)
    if types != sorted(["Concat", "Dense", "Dense", "Dense", "Dense", "Sigmoid", "Sigmoid",
                        "Multiply", "Multiply", "Multiply", "Add", "Add", "Tanh", "OneMinus"]):
        return None
    h_delay = r.delays[0]
    h = m.fed(h_delay)
    cat, h_first = _concat_of(m, doc, step, h_delay)
    if m.type(h) != "Add" or sorted(m.cons[step]) != sorted([cat] + [
            c for c in m.cons[step] if c != cat]) or len(m.cons[step]) != 2:
        return None
    w_xn = next(c for c in m.cons[step] if c != cat)
    gate_dense = m.cons[cat]
    if m.type(w_xn) != "Dense" or len(gate_dense) != 2 or any(
            m.type(d) != "Dense" or len(m.cons[d]) != 1 or m.type(m.cons[d][0]) != "Sigmoid"
            for d in gate_dense):
        return None
    pre = m.cons[w_xn][0] if len(m.cons[w_xn]) == 1 else None
    if pre is None or m.type(pre) != "Add" or len(m.cons[pre]) != 1:
        return None
    cand = m.cons[pre][0]
    reset = next(x for x in m.srcs(pre) if x != w_xn)
    if m.type(cand) != "Tanh" or m.type(reset) != "Multiply":
        return None
    sig_r = next(x for x in m.srcs(reset) if m.type(x) == "Sigmoid")
    u_hn = next(x for x in m.srcs(reset) if x != sig_r)
    if m.type(u_hn) != "Dense" or m.srcs(u_hn) != [h_delay]:
        return None
    sig_z = next(m.cons[d][0] for d in gate_dense if m.cons[d][0] != sig_r)
    dense_of = {m.cons[d][0]: d for d in gate_dense}
    take_new, keep_old = m.srcs(h)
    if h_delay in m.srcs(take_new):
        take_new, keep_old = keep_old, take_new
    one_minus = next(x for x in m.srcs(take_new) if x != cand)
    if sorted(m.srcs(keep_old)) != sorted([sig_z, h_delay]) or cand not in m.srcs(take_new) \
            or m.type(one_minus) != "OneMinus" or m.srcs(one_minus) != [sig_z]:
        return None
    if any(not doc.nodes[d].params["bias"] for d in (*gate_dense, w_xn, u_hn)):
        return None
    if any(m.srcs(o) != [h] for o in r.outputs):
        return None
    hidden = doc.nodes[h_delay].params["shape"][0]
    return LoweredGRU(cell, dense_of[sig_r], dense_of[sig_z], w_xn, u_hn, h_first, hidden,
                      [doc.nodes[o].type for o in r.outputs], doc.nodes[h_delay].params["init"],
                      bool(doc.nodes[step].params.get("reverse")))


class _Lowered(nn.Module):
    """Shared parts: keeps the cell (the same parameters and names as the plain loop, so
    checkpoints are interchangeable) and splits a Dense over [h, x] into (W_x, W_h)."""

    def __init__(self, cell, h_first, hidden, reverse):
        super().__init__()
        self.cell, self.h_first, self.hidden, self.reverse = cell, h_first, hidden, reverse

    def split(self, name):
        lin = self.cell.get_submodule(name)
        w = lin.weight
        if self.h_first:
            return w[:, self.hidden:], w[:, :self.hidden], lin.bias
        return w[:, :-self.hidden], w[:, -self.hidden:], lin.bias

    def _io(self, x):
        return torch.flip(x, [1]) if self.reverse else x

    def export_forward(self, x, inits, modes, kinds):
        """While torch.export traces: the cell in a scan loop (dynamic length), with the
        same weights. ``modes``: init mode per Delay in region order."""
        given, states = list(inits), []
        for mode in modes:
            states.append(given.pop(0) if mode == "input" else
                          x.new_zeros(x.shape[0], self.hidden))
        return scan_loop(self.cell, [x], [], states, kinds, self.reverse)

    def _state(self, x, mode, given):
        if mode == "input":
            return given.unsqueeze(0)
        return x.new_zeros(1, x.shape[0], self.hidden)


class LoweredLSTM(_Lowered):
    """A hand-drawn LSTM cell run by torch's fused LSTM kernel with the cell's weights."""

    def __init__(self, cell, gates, h_first, hidden, outs, init, order, reverse):
        super().__init__(cell, h_first, hidden, reverse)
        self.gates, self.outs, self.init, self.order = list(gates), outs, init, order

    def forward(self, x, *inits):
        if _exporting():
            modes = [self.init[k] for k in self.order]
            return self.export_forward(x, inits, modes, [k for _, k in self.outs])
        parts = [self.split(g) for g in self.gates]
        w_ih = torch.cat([p[0] for p in parts], 0)
        w_hh = torch.cat([p[1] for p in parts], 0)
        b_ih = torch.cat([p[2] for p in parts], 0)
        b_hh = torch.zeros_like(b_ih)
        x = self._io(x.to(w_ih.dtype))
        given = list(inits)
        by_delay = [None, None]
        for k in self.order:  # inits arrive in the region's delay order
            if self.init[k] == "input":
                by_delay[k] = given.pop(0)
        h0 = self._state(x, self.init[0], by_delay[0])
        c0 = self._state(x, self.init[1], by_delay[1])
        out, h_n, c_n = torch.lstm(x, (h0, c0), [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0,
                                   self.training, False, True)
        res = []
        for which, kind in self.outs:
            if which == "c":
                res.append(c_n[0])
            elif kind == "Collect":
                res.append(self._io(out))
            else:
                res.append(h_n[0])
        return tuple(res)


class LoweredRNN(_Lowered):
    """A hand-drawn Elman cell (Concat [h, x] -> Dense -> tanh/ReLU) on torch's kernel."""

    def __init__(self, cell, dense, h_first, hidden, outs, init, act, reverse):
        super().__init__(cell, h_first, hidden, reverse)
        self.dense, self.outs, self.init, self.act = dense, outs, init, act

    def forward(self, x, *inits):
        if _exporting():
            return self.export_forward(x, inits, [self.init], self.outs)
        w_ih, w_hh, b_ih = self.split(self.dense)
        x = self._io(x.to(w_ih.dtype))
        h0 = self._state(x, self.init, inits[0] if inits else None)
        fn = torch.rnn_tanh if self.act == "tanh" else torch.rnn_relu
        out, h_n = fn(x, h0, [w_ih, w_hh, b_ih, torch.zeros_like(b_ih)], True, 1, 0.0,
                      self.training, False, True)
        return tuple(self._io(out) if k == "Collect" else h_n[0] for k in self.outs)


# ---- unrolling ---------------------------------------------------------------------------


def unroll(doc: GraphDocument, steps: int | None = None) -> GraphDocument:
    """The rolled graph over ``steps`` time steps (default: the analysis length) as a new,
    acyclic document for the editor to show read-only.

    Outside nodes keep their ids. A region node ``n`` becomes ``n_t0 ... n_t{T-1}`` laid
    out left to right; a SequenceStep at t becomes a ``Select step`` node of the sequence;
    a Delay at t > 0 is an Identity fed by its input's copy at t - 1, at t = 0 an
    ``Initial state`` node; Collect stacks the T copies, Last is an Identity of the final
    copy. ``metadata['unrolled_from']`` maps every id to its rolled id, and
    ``metadata['unrolled_steps']`` is T. Copy t of a region sits one region-width right of
    copy t - 1 (nodes after it move right); the sequence inputs of a region (and targets
    over its time axis) get length T, so the view's shapes agree. The copies of one node
    share their parameters in the rolled model: this document is a view, not a separate
    model to train.
    """
    from .analysis import analyze

    regions, _ = find_regions(doc)
    regions = [r for r in regions if r.steps]
    if steps is None:
        a = analyze(doc)
        steps = next((a.nodes[s].steps for r in regions for s in r.steps
                      if a.nodes.get(s) and a.nodes[s].steps), 1)
    if steps < 1:
        raise ValueError("steps must be at least 1")
    out = GraphDocument(f"{doc.metadata.get('name', 'graph')} (unrolled, T={steps})")
    mapping: dict[str, str] = {}
    region_of = {nid: r for r in regions for nid in r.nodes}
    inc = {(e.target, e.target_port): e for e in doc.edges}
    gap = 200.0
    # layout: copy t of a region sits one region-width right of copy t - 1; nodes right of
    # a region move right by the room its extra copies take
    spans = []
    for r in regions:
        xs = [doc.nodes[n].position[0] for n in r.nodes if n not in r.outputs]
        spans.append((r, min(xs), max(xs), max(xs) - min(xs) + gap))

    def shift(x, own=None):
        return sum((steps - 1) * w for r, _, hi, w in spans if r is not own and x > hi)

    def copy_id(nid, t):
        return f"{nid}_t{t}"

    # width of the unrolled strip per region: shift outside nodes after a region right
    for node in doc:
        r = region_of.get(node.id)
        x0, y0 = node.position
        if r is None:
            out.add_node(node.type, dict(node.params), node_id=node.id, label=node.label,
                         position=(x0 + shift(x0), y0))
            mapping[node.id] = node.id
            continue
        width = next(w for rr, _, _, w in spans if rr is r)
        x0 += shift(x0, r)
        for t in range(steps):
            pos = (x0 + t * width, y0)
            last_x = (steps - 1) * width
            nid = copy_id(node.id, t)
            label = f"{node.display_name} t={t}"
            tags = _tags(node)
            if SEQ_IN in tags:
                p = node.params
                idx = steps - 1 - t if p.get("reverse") else t
                out.add_node("SelectStep", {"step": idx}, node_id=nid, label=label, position=pos)
            elif DELAY in tags:
                if t == 0:
                    out.add_node("InitialState", {"shape": list(node.params["shape"]),
                                                  "init": node.params["init"]},
                                 node_id=nid, label=label, position=pos)
                else:
                    out.add_node("Identity", {}, node_id=nid, label=label, position=pos)
            elif SEQ_OUT in tags:
                if t == steps - 1:
                    if node.type == "Collect":
                        out.add_node("StackSteps", {"inputs": steps}, node_id=node.id,
                                     label=node.label, position=(x0 + last_x, y0))
                    else:
                        out.add_node("Identity", {}, node_id=node.id, label=node.label,
                                     position=(x0 + last_x, y0))
                    mapping[node.id] = node.id
                continue
            else:
                out.add_node(node.type, dict(node.params), node_id=nid, label=label,
                             position=pos)
            mapping[nid] = node.id
    # edges
    def inner(nid):  # a per-step node (its copies are <id>_t<k>)
        return nid in region_of and SEQ_OUT not in _tags(doc.nodes[nid])

    last = steps - 1
    for e in doc.edges:
        s, sp, t, tp = e.source, e.source_port, e.target, e.target_port
        tn = doc.nodes[t]
        if t not in region_of or (SEQ_OUT in _tags(tn) and not inner(s)):
            out.connect(s, sp, t, tp)
        elif SEQ_IN in _tags(tn):
            for k in range(steps):
                out.connect(s, sp, copy_id(t, k), "seq")
        elif DELAY in _tags(tn) and tp == "init":
            out.connect(s, sp, copy_id(t, 0), "init")
        elif DELAY in _tags(tn):
            for k in range(last):  # x at step k is the Delay's output at step k + 1
                out.connect(copy_id(s, k) if inner(s) else s, sp, copy_id(t, k + 1), "x")
        elif tn.type == "Collect":
            for k in range(steps):
                out.connect(copy_id(s, k), sp, t, f"x{k + 1}")
        elif SEQ_OUT in _tags(tn):
            out.connect(copy_id(s, last), sp, t, tp)
        else:
            for k in range(steps):
                out.connect(copy_id(s, k) if inner(s) else s, sp, copy_id(t, k), tp)
    # a zeros/learned initial state needs the batch size: give it the first sequence
    for r in regions:
        seq_e = inc[(r.steps[0], "seq")]
        for d in r.delays:
            if doc.nodes[d].params["init"] != "input":
                out.connect(seq_e.source, seq_e.source_port, copy_id(d, 0), "like")
    # the view shows T steps: sequence inputs of the regions (and targets over their time
    # axis) get length T, so the view's shapes agree
    from .analysis import analyze as _analyze

    a = _analyze(doc)
    full = nx.DiGraph([(e.source, e.target) for e in doc.edges])
    for r in regions:
        old = a.nodes[r.steps[0]].steps if r.steps[0] in a.nodes else None
        if not old or old == steps:
            continue
        for sid in nx.ancestors(full, r.steps[0]):
            src = doc.nodes[sid]
            if src.spec.is_source and src.params.get("steps") == old:
                out.set_param(sid, "steps", steps)
        for n in out:
            shape = n.params.get("shape") if n.type == "Target" else None
            if shape and shape[0] == old:
                out.set_param(n.id, "shape", [steps] + list(shape[1:]))
    meta = dict(out.metadata)
    meta.update({"unrolled_from": mapping, "unrolled_steps": steps,
                 "description": f"{doc.metadata.get('name', 'graph')} unrolled over {steps} "
                                "steps (read-only view; copies share their weights)"})
    out.set_metadata(meta)
    return out


class LoweredGRU(_Lowered):
    """A hand-drawn GRU cell in torch's form (runtime.cells.add_gru_cell) on torch's kernel."""

    def __init__(self, cell, r, z, xn, hn, h_first, hidden, outs, init, reverse):
        super().__init__(cell, h_first, hidden, reverse)
        self.r, self.z, self.xn, self.hn = r, z, xn, hn
        self.outs, self.init = outs, init

    def forward(self, x, *inits):
        if _exporting():
            return self.export_forward(x, inits, [self.init], self.outs)
        wx_r, wh_r, b_r = self.split(self.r)
        wx_z, wh_z, b_z = self.split(self.z)
        xn, hn = self.cell.get_submodule(self.xn), self.cell.get_submodule(self.hn)
        w_ih = torch.cat([wx_r, wx_z, xn.weight], 0)
        w_hh = torch.cat([wh_r, wh_z, hn.weight], 0)
        b_ih = torch.cat([b_r, b_z, xn.bias], 0)
        b_hh = torch.cat([torch.zeros_like(b_r), torch.zeros_like(b_z), hn.bias], 0)
        x = self._io(x.to(w_ih.dtype))
        h0 = self._state(x, self.init, inits[0] if inits else None)
        out, h_n = torch.gru(x, h0, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, self.training,
                             False, True)
        return tuple(self._io(out) if k == "Collect" else h_n[0] for k in self.outs)
