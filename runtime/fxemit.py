"""fx emission: the one walker that turns layer nodes into ``call_module`` lines.

The compiler (the whole graph) and the recurrent lowering (one time step of a region's
cell) both build their ``torch.fx.Graph`` with :func:`emit_layers`: each layer node
becomes a submodule named after its node id, built by its catalog builder for the
analysed input shapes, and one ``call_module`` whose arguments are the values of its
wired inputs (a node with several outputs adds one ``getitem`` per output port).
"""
from __future__ import annotations

import operator
from typing import Callable, Mapping

from torch import fx, nn

from .diagnostics import CompileError, Diagnostic
from .graph import GraphDocument, Node

Values = dict[tuple[str, str], fx.Node]  # (node id, output port) -> fx value


class Root(nn.Module):
    """The owner of a generated module's submodules (one per layer node, by node id)."""

    def __init__(self, modules: Mapping[str, nn.Module]):
        super().__init__()
        for name, m in modules.items():
            self.add_module(name, m)


def graph_module(modules: Mapping[str, nn.Module], graph: fx.Graph,
                 class_name: str) -> fx.GraphModule:
    """The checked ``graph`` as a GraphModule owning ``modules``."""
    graph.lint()
    return fx.GraphModule(Root(modules), graph, class_name=class_name)


def incoming_edges(doc: GraphDocument) -> dict:
    """(target node, input port) -> the edge into it."""
    return {(e.target, e.target_port): e for e in doc.edges}


def build_layer(node: Node, shapes: dict, params_count: int | None = None) -> nn.Module:
    """The node's torch module for these input shapes; CompileError (pinned to the node)
    when it cannot be built, e.g. weights too large for memory."""
    try:
        return node.spec.build(node.params, shapes)
    except (MemoryError, RuntimeError) as exc:
        why = "not enough memory" if isinstance(exc, MemoryError) or "alloc" in str(exc) \
            else (str(exc).splitlines() or [type(exc).__name__])[0]
        count = f" ({params_count:,} parameters)" if params_count is not None else ""
        raise CompileError([Diagnostic(
            node.id, "error", f"cannot build this {node.type}{count}: {why}", code="build",
            nodes=(node.id,))]) from None


def emit_layer(graph: fx.Graph, doc: GraphDocument, analysis, nid: str, values: Values,
               modules: dict[str, nn.Module], incoming: dict) -> None:
    """One layer node: its submodule, its call_module line, its output values."""
    node = doc.nodes[nid]
    spec = node.spec
    args = []
    for port in spec.input_ports(node.params):
        e = incoming.get((nid, port.name))
        if e is not None:  # (an unwired optional input is left out)
            args.append(values[(e.source, e.source_port)])
    info = analysis.nodes.get(nid)
    modules[nid] = build_layer(node, analysis.input_shapes(doc, nid),
                               info.params if info is not None else None)
    call = graph.create_node("call_module", nid, tuple(args), {}, name=nid)
    outs = spec.output_ports(node.params)
    if len(outs) == 1:
        values[(nid, outs[0].name)] = call
    else:
        for i, p in enumerate(outs):
            values[(nid, p.name)] = graph.create_node(
                "call_function", operator.getitem, (call, i), {}, name=f"{nid}_{p.name}")


def emit_layers(graph: fx.Graph, doc: GraphDocument, analysis, order, values: Values,
                modules: dict[str, nn.Module], *, include: Callable[[str], bool],
                regions: Mapping[str, Callable] | None = None,
                incoming: dict | None = None) -> None:
    """Walk ``order``: each id that ``include`` accepts is emitted as a layer; an id of
    ``regions`` (a recurrent region's name) is emitted by calling
    ``regions[id](graph, modules, values)``."""
    incoming = incoming_edges(doc) if incoming is None else incoming
    for nid in order:
        if regions and nid in regions:
            regions[nid](graph, modules, values)
        elif include(nid):
            emit_layer(graph, doc, analysis, nid, values, modules, incoming)
