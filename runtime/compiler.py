"""Compile a graph document to a ``torch.fx.GraphModule``, built directly (not traced).

Every layer node becomes a submodule named after its node id and one ``call_module``
line of generated code, so ``module.code`` reads like hand-written PyTorch:

    def forward(self, image, label):
        c1 = self.c1(image);  image = None
        ...

Two modes:
- ``"train"``: inputs and targets in; out comes a dict with ``loss`` (the sum of every
  loss node), each loss by node id, and every prediction that feeds a loss or an
  Output node.
- ``"predict"``: inputs only; returns the predictions (one tensor, or a tuple in
  output order). Loss nodes, targets and everything that only feeds them are pruned.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import networkx as nx
import torch
from torch import fx, nn

from . import pipeline
from .analysis import Analysis
from .diagnostics import CompileError, Diagnostic
from .fxemit import emit_layers, graph_module, incoming_edges
from .graph import GraphDocument
from .recurrent.regions import compile_plan
from .topology import to_networkx

__all__ = ["CompileError", "Signature", "signature", "build_module", "class_name",
           "get_signature", "example_inputs", "random_source"]


@dataclass(frozen=True)
class Signature:
    """Names of the compiled module's inputs, targets and outputs (node ids)."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    outputs: tuple[str, ...]  # prediction outputs
    losses: tuple[str, ...]


def signature(doc: GraphDocument) -> Signature:
    """Inputs and targets are those that feed a loss or an output: a stray input or target
    left on the canvas (validation only warns) is no argument of the compiled module, so
    a dataset binds to the inputs that are used and every export takes the same ones."""
    losses = tuple(n.id for n in doc if n.spec.is_loss)
    outputs: list[str] = [n.id for n in doc if n.spec.is_output]
    if not outputs:  # the predictions that losses judge
        for lid in losses:
            for e in doc.in_edges(lid):
                port = next(p for p in doc.nodes[lid].input_ports() if p.name == e.target_port)
                if port.role != "target" and e.source not in outputs:
                    outputs.append(e.source)
    feeds: set[str] = set()  # everything upstream of a loss or an output
    todo = list(losses) + outputs
    while todo:
        for e in doc.in_edges(todo.pop()):
            if e.source not in feeds:
                feeds.add(e.source)
                todo.append(e.source)
    used = (lambda n: n.id in feeds) if losses or outputs else (lambda n: True)
    inputs = tuple(n.id for n in doc if n.spec.source_kind == "input" and used(n))
    targets = tuple(n.id for n in doc if n.spec.source_kind == "target" and used(n))
    return Signature(inputs, targets, tuple(outputs), losses)


def build_module(doc: GraphDocument, *, mode: str = "train",
                 analysis: Analysis | None = None) -> fx.GraphModule:
    """Compile ``doc``; raises CompileError (with diagnostics) if it has errors.

    The graph is checked by runtime/pipeline.py first (blocks expanded, structure,
    shapes, id ranges), so this refuses exactly what ``validate`` refuses. ``analysis``:
    one already computed for ``doc`` (a document without blocks), to skip analysing
    again."""
    if mode not in ("train", "predict"):
        raise ValueError(f"mode must be 'train' or 'predict', not {mode!r}")
    checked = pipeline.run(doc, analysis=analysis)
    if not checked.ok:
        raise CompileError(checked.diagnostics)
    doc, analysis = checked.flat, checked.flat_analysis
    sig = signature(doc)
    needed = _needed_nodes(doc, sig, mode)
    if mode == "predict":
        _check_no_targets_needed(doc, needed)
    incoming = incoming_edges(doc)

    graph = fx.Graph()
    modules: dict[str, nn.Module] = {}
    values: dict[tuple[str, str], fx.Node] = {}  # (node id, output port) -> fx value
    # every input (and target) of the signature is an argument, also in predict mode one
    # only the losses need, so callers (exports, example_inputs, data) pass them all
    placeholders = sig.inputs + (sig.targets if mode == "train" else ())
    for nid in placeholders:
        ph = graph.placeholder(nid)
        values[(nid, doc.nodes[nid].output_ports()[0].name)] = ph
    # a recurrent region is one looping submodule, emitted in its place in the order
    order, regions = compile_plan(doc, analysis, needed)

    def layer(nid: str) -> bool:
        spec = doc.nodes[nid].spec
        return nid in needed and not spec.is_source and not spec.is_output

    emit_layers(graph, doc, analysis, order, values, modules, include=layer, regions=regions,
                incoming=incoming)

    def value_of(out_id: str) -> fx.Node:
        node = doc.nodes[out_id]
        if node.spec.is_output:
            e = incoming[(out_id, node.input_ports()[0].name)]
            return values[(e.source, e.source_port)]
        return values[(out_id, node.output_ports()[0].name)]

    if mode == "predict":
        outs = [value_of(o) for o in sig.outputs]
        graph.output(outs[0] if len(outs) == 1 else tuple(outs))
    else:
        result = {}
        losses = [values[(lid, "loss")] for lid in sig.losses]
        if losses:
            total = losses[0]
            for other in losses[1:]:
                total = graph.call_function(operator.add, (total, other))
            result["loss"] = total
        for lid, v in zip(sig.losses, losses):
            result[lid] = v
        for o in sig.outputs:
            result.setdefault(o, value_of(o))
        graph.output(result)
    gm = graph_module(modules, graph, class_name(doc))
    gm.meta["netbuilder"] = {"signature": sig, "mode": mode}
    _plain_call(gm)
    return gm


def _plain_call(gm: fx.GraphModule) -> None:
    """Call the module like any nn.Module. fx wraps ``__call__`` of each GraphModule's own
    class in a Python error reporter (about 5 us a call: 3% of a small MLP's train step,
    benchmarks/bench_train_step.py); without it the compiled module costs what a
    hand-written one does. A later ``recompile()`` puts the wrapper back (harmless)."""
    cls = type(gm)
    if cls is not fx.GraphModule and "__call__" in vars(cls):
        del cls.__call__


def _check_no_targets_needed(doc: GraphDocument, needed: set[str]) -> None:
    """Predictions take no targets: a Target that feeds a layer or an Output (not only a
    loss's target port) makes predict mode impossible. CompileError naming it."""
    for nid in sorted(needed):
        node = doc.nodes[nid]
        if node.spec.source_kind != "target":
            continue
        users = [e.target for e in doc.out_edges(nid) if e.target in needed]
        raise CompileError([Diagnostic(
            nid, "error", f"target {node.display_name} feeds {', '.join(users)}, which the "
            "predictions need; a prediction takes inputs only (targets come with training "
            "data): feed these layers from an input node", code="target_use",
            nodes=(nid, *users))])


def _needed_nodes(doc: GraphDocument, sig: Signature, mode: str) -> set[str]:
    """Ancestors of what the mode returns (losses in train, outputs in predict)."""
    g = to_networkx(doc)
    sinks = list(sig.outputs) + (list(sig.losses) if mode == "train" else [])
    needed = set(sinks)
    for s in sinks:
        needed |= nx.ancestors(g, s)
    return needed


def class_name(doc: GraphDocument) -> str:
    """The generated module's class name, from the graph's name (``lenet5`` -> ``Lenet5``)."""
    name = str(doc.metadata.get("name") or "Net")
    words = "".join(c if c.isalnum() else " " for c in name).split()
    cls = "".join(w[:1].upper() + w[1:] for w in words) or "Net"
    return cls if cls[0].isalpha() else "Net" + cls


def get_signature(module: fx.GraphModule) -> Signature:
    return module.meta["netbuilder"]["signature"]


def example_inputs(doc: GraphDocument, batch: int = 2, *, mode: str = "predict",
                   analysis: Analysis | None = None, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs (and targets in train mode) of the right shapes and dtypes."""
    gen = torch.Generator().manual_seed(seed)
    sig = signature(doc)
    names = sig.inputs + (sig.targets if mode == "train" else ())
    out = []
    for nid in names:
        node = doc.nodes[nid]
        shape = (batch,) + tuple(node.spec.source_shape(node.params))
        out.append(random_source(node, shape, gen))
    return tuple(out)


def random_source(node, shape, gen: torch.Generator) -> torch.Tensor:
    """A random tensor an input or target node could give: valid ids for token and class
    nodes, standard normal values otherwise. ``shape`` includes the batch."""
    p = node.params
    if node.type == "TokenInput":
        return torch.randint(0, p["vocab_size"], tuple(shape), generator=gen)
    if node.type == "Target" and p["kind"] == "class":
        return torch.randint(0, p["num_classes"], tuple(shape), generator=gen)
    return torch.randn(tuple(shape), generator=gen)
