"""Blocks: a selection grouped into one node that holds its inner graph.

A ``Block`` node keeps its inner graph in ``params["graph"]`` ({"nodes", "edges"}, the
file format's node and edge dicts). Inner ``BlockInput``/``BlockOutput`` nodes are its
ports. :func:`expand` inlines every block (inner ids prefixed ``<block id>__``), so
validation, analysis and compilation of a graph with blocks are those of the flat graph:
runtime/pipeline.py expands a document that has a Block node before checking it and maps
the findings back onto the blocks.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Iterable

from .diagnostics import ERROR, Diagnostic
from .graph import Edge, GraphDocument, GraphError, Node

BLOCK, BIN, BOUT = "Block", "BlockInput", "BlockOutput"
SEP = "__"


def has_blocks(doc: GraphDocument) -> bool:
    """Whether ``doc`` has a Block node (cached per structure revision)."""
    derived = getattr(doc, "derived", None)
    rev = getattr(doc, "structure_revision", None)
    if derived is not None:
        hit = derived.get("has_blocks")
        if hit is not None and hit[0] == rev:
            return hit[1]
    found = any(n.type == BLOCK for n in doc.nodes.values())
    if derived is not None:
        derived["has_blocks"] = (rev, found)
    return found


# ---- inner graph <-> document ---------------------------------------------------------
def inner_document(block: Node) -> GraphDocument:
    """The inner graph of ``block`` as a document of its own (for editing or expansion)."""
    graph = block.params.get("graph") or {}
    doc = GraphDocument(block.label or block.id)
    for n in graph.get("nodes", []):
        doc.add_node(n["type"], n.get("params") or {}, node_id=n["id"],
                     label=n.get("label", ""), position=n.get("position", (0.0, 0.0)))
    for e in graph.get("edges", []):
        doc.connect(e["source"], e["source_port"], e["target"], e["target_port"])
    return doc


def graph_param(doc: GraphDocument) -> dict[str, Any]:
    """A document's nodes and edges as a Block's ``graph`` parameter (JSON-clean)."""
    from .serialization import graph_to_dict

    d = graph_to_dict(doc)
    return {"nodes": d["nodes"], "edges": d["edges"]}


# ---- expansion -------------------------------------------------------------------------
def expand(doc: GraphDocument) -> GraphDocument:
    """The flat document: every Block replaced by its inner nodes, ids ``<block>__<id>``.

    ``result.derived["block_origin"]`` maps each node id of the result to the id of the
    node of ``doc`` it comes from (the block for inner nodes). Raises GraphError (naming
    the block) when a block's inner graph is broken.
    """
    out = GraphDocument(doc.metadata.get("name", "untitled"))
    out.metadata = copy.deepcopy(doc.metadata)
    out.training = copy.deepcopy(doc.training)
    origin: dict[str, str] = {}
    ins: dict[str, dict[str, list[tuple[str, str]]]] = {}  # block -> port -> inner targets
    outs: dict[str, dict[str, tuple[str, str]]] = {}  # block -> port -> inner source
    for node in doc.nodes.values():
        if node.type != BLOCK:
            out.add_node(node.type, node.params, node_id=node.id, label=node.label,
                         position=node.position)
            origin[node.id] = node.id
            continue
        try:
            inner = expand(inner_document(node))
        except (GraphError, KeyError, TypeError, ValueError) as exc:
            raise GraphError(f"block {node.id!r}: {exc}") from None
        p = node.id + SEP
        ins[node.id], outs[node.id] = {}, {}
        for n in inner.nodes.values():
            if n.type == BIN:
                ins[node.id][n.id] = [(p + e.target, e.target_port) for e in inner.out_edges(n.id)]
            elif n.type == BOUT:
                for e in inner.in_edges(n.id):
                    if inner.nodes[e.source].type == BIN:
                        raise GraphError(f"block {node.id!r}: output {n.id!r} is wired "
                                         "straight to an input; put a layer between them")
                    outs[node.id][n.id] = (p + e.source, e.source_port)
            else:
                out.add_node(n.type, n.params, node_id=p + n.id, label=n.label,
                             position=n.position)
                origin[p + n.id] = node.id
        for e in inner.edges:
            kinds = (inner.nodes[e.source].type, inner.nodes[e.target].type)
            if BIN not in kinds and BOUT not in kinds:
                out.add_edge(Edge(p + e.source, e.source_port, p + e.target, e.target_port),
                             keep_stale=True)  # validation of the expansion reports it
    for e in doc.edges:
        if e.source in outs:
            src = outs[e.source].get(e.source_port)
            if src is None:
                continue  # an unwired block output: nothing flows
        else:
            src = (e.source, e.source_port)
        targets = ins[e.target].get(e.target_port, []) if e.target in ins \
            else [(e.target, e.target_port)]
        for t in targets:
            out.add_edge(Edge(src[0], src[1], t[0], t[1]))
    out.derived["block_origin"] = origin
    return out


def block_nodes(doc: GraphDocument) -> list[Node]:
    return [n for n in doc.nodes.values() if n.type == BLOCK]


def output_sources(block: Node) -> dict[str, tuple[str, str]]:
    """Each output port of ``block`` -> (inner node id, its output port) that feeds it."""
    inner = inner_document(block)
    out: dict[str, tuple[str, str]] = {}
    for bo in (n for n in inner.nodes.values() if n.type == BOUT):
        for e in inner.in_edges(bo.id):
            out[bo.id] = (e.source, e.source_port)
    return out


def map_diagnostic(d: Diagnostic, origin: dict[str, str]) -> Diagnostic:
    """A diagnostic of the expansion as one of the drawn document: an inner node's
    finding is pinned to its block and names the inner node in its message."""
    nid = origin.get(d.node_id, d.node_id) if d.node_id else d.node_id
    nodes = tuple(dict.fromkeys(origin.get(n, n) for n in d.nodes))
    if nid == d.node_id:
        return dataclasses.replace(d, nodes=nodes)
    inner = d.node_id[len(nid) + len(SEP):]
    return dataclasses.replace(d, node_id=nid, nodes=nodes, port=None, param=None,
                               message=f"inside the block, {inner}: {d.message}")


def broken_diagnostics(doc: GraphDocument, exc: Exception) -> list[Diagnostic]:
    """The error of :func:`expand` (a broken inner graph) pinned to its block."""
    msg = str(exc)
    bid = next((n.id for n in doc.nodes.values()
                if n.type == BLOCK and f"block {n.id!r}" in msg), None)
    return [Diagnostic(bid, ERROR, msg, code="block", nodes=(bid,) if bid else ())]


def stale_port_diagnostics(doc: GraphDocument) -> list[Diagnostic]:
    """Wires to Block ports that the inner graph no longer has (its BlockInput or
    BlockOutput was deleted inside): the expansion has nowhere to put them."""
    out = []
    for node in doc.nodes.values():
        if node.type != BLOCK:
            continue
        ins = {p.name for p in node.input_ports()}  # ports once per block, not per edge
        outs = {p.name for p in node.output_ports()}
        wires = [(e, e.target_port, "input") for e in doc.in_edges(node.id) if e.target_port not in ins]
        wires += [(e, e.source_port, "output") for e in doc.out_edges(node.id)
                  if e.source_port not in outs]
        for e, port, side in wires:
            out.append(Diagnostic(node.id, ERROR, f"edge {e} uses {side} '{port}', which block "
                                  f"{node.id!r} no longer has (its port node was removed "
                                  "inside)", port=port, code="port", nodes=(e.source, e.target)))
    return out


# ---- grouping and ungrouping -------------------------------------------------------------
def group_plan(doc: GraphDocument, node_ids: Iterable[str], block_id: str | None = None,
               label: str = "", analysis=None) -> dict[str, Any]:
    """What grouping ``node_ids`` into one Block does: {"block": add_node kwargs,
    "remove": ids, "edges": outer edges of the block}. The document is not changed.
    ``analysis`` (of ``doc``, optional) gives the shapes of the block's inputs; without
    it they are placeholders until the block is opened and analysed."""
    chosen = set(node_ids)
    ids = [n for n in doc.nodes if n in chosen]
    if not ids:
        raise GraphError("select the nodes to group first")
    shapes = analysis
    nodes = [doc.nodes[n] for n in ids]
    xs = [n.position[0] for n in nodes]
    ys = [n.position[1] for n in nodes]
    inner_nodes: list[dict] = []
    inner_edges: list[dict] = []
    in_ports: dict[tuple[str, str], str] = {}  # outer source -> BlockInput id
    out_ports: dict[tuple[str, str], str] = {}  # inner source -> BlockOutput id
    outer_edges: list[Edge] = []
    block_id = block_id or doc.new_id(BLOCK)

    def free(stem: str, taken) -> str:
        i = 1
        while f"{stem}{i}" in taken:
            i += 1
        return f"{stem}{i}"

    taken = set(ids)
    for e in doc.edges:
        if e.target in chosen and e.source not in chosen:
            key = (e.source, e.source_port)
            if key not in in_ports:
                pid = in_ports[key] = free("in", taken)
                taken.add(pid)
                shape, kind = [1], "float"
                info = shapes.nodes.get(e.source) if shapes else None
                if info is not None and e.source_port in info.output_shapes:
                    shape = list(info.output_shapes[e.source_port])
                    kind = "index" if info.output_kinds.get(e.source_port) == "index" else "float"
                inner_nodes.append({"id": pid, "type": BIN, "label": "",
                                    "params": {"shape": shape, "kind": kind},
                                    "position": [min(xs) - 200, ys[0] + 120 * (len(in_ports) - 1)]})
                outer_edges.append(Edge(e.source, e.source_port, block_id, pid))
            inner_edges.append({"source": in_ports[key], "source_port": "out",
                                "target": e.target, "target_port": e.target_port})
    for n in nodes:
        inner_nodes.append({"id": n.id, "type": n.type, "label": n.label,
                            "params": copy.deepcopy(n.params), "position": list(n.position)})
    for e in doc.edges:
        if e.source in chosen and e.target in chosen:
            inner_edges.append({"source": e.source, "source_port": e.source_port,
                                "target": e.target, "target_port": e.target_port})
    for e in doc.edges:
        if e.source in chosen and e.target not in chosen:
            key = (e.source, e.source_port)
            if key not in out_ports:
                pid = out_ports[key] = free("out", taken)
                taken.add(pid)
                inner_nodes.append({"id": pid, "type": BOUT, "label": "", "params": {},
                                    "position": [max(xs) + 200, ys[-1] + 120 * (len(out_ports) - 1)]})
                inner_edges.append({"source": e.source, "source_port": e.source_port,
                                    "target": pid, "target_port": "x"})
            outer_edges.append(Edge(block_id, out_ports[key], e.target, e.target_port))
    graph = {"nodes": inner_nodes, "edges": inner_edges}
    graph = json.loads(json.dumps(graph))
    return {"block": {"type_id": BLOCK, "params": {"graph": graph}, "node_id": block_id,
                      "label": label or "Block",
                      "position": (sum(xs) / len(xs), sum(ys) / len(ys))},
            "remove": ids, "edges": outer_edges}


def ungroup_plan(doc: GraphDocument, block_id: str) -> dict[str, Any]:
    """What ungrouping Block ``block_id`` does: {"nodes": [Node], "edges": [Edge],
    "index": the block's place in node order}. Inner ids are kept when free."""
    block = doc.node(block_id)
    if block.type != BLOCK:
        raise GraphError(f"{block_id!r} is not a block")
    inner = inner_document(block)
    taken = set(doc.nodes) - {block_id}
    rename: dict[str, str] = {}
    new_nodes: list[Node] = []
    for n in inner.nodes.values():
        if n.type in (BIN, BOUT):
            continue
        nid = n.id
        if nid in taken:
            nid = doc.new_id(n.type)
            i = 1
            while nid in taken:
                nid = f"{n.id}_{i}"
                i += 1
        taken.add(nid)
        rename[n.id] = nid
        new_nodes.append(Node(nid, n.type, copy.deepcopy(n.params), n.label, n.position))
    edges: list[Edge] = []
    for e in inner.edges:
        if e.source in rename and e.target in rename:
            edges.append(Edge(rename[e.source], e.source_port, rename[e.target], e.target_port))
    for e in doc.in_edges(block_id):
        for ie in inner.out_edges(e.target_port):
            if ie.target in rename:
                edges.append(Edge(e.source, e.source_port, rename[ie.target], ie.target_port))
    for e in doc.out_edges(block_id):
        for ie in inner.in_edges(e.source_port):
            if ie.source in rename:
                edges.append(Edge(rename[ie.source], ie.source_port, e.target, e.target_port))
    return {"nodes": new_nodes, "edges": edges, "index": list(doc.nodes).index(block_id)}


def group(doc: GraphDocument, node_ids: Iterable[str], block_id: str | None = None,
          label: str = "", analysis=None) -> str:
    """Group ``node_ids`` into one Block (no undo; the editor's command does the same)."""
    plan = group_plan(doc, node_ids, block_id, label, analysis)
    apply_group(doc, plan)
    return plan["block"]["node_id"]


def apply_group(doc: GraphDocument, plan: dict[str, Any]) -> list[tuple[Node, list[Edge], int]]:
    """Carry out a :func:`group_plan`; returns the removed nodes with their edges and
    places in node order (undo: :func:`undo_group`)."""
    from .catalog import get_spec

    at = list(doc.nodes).index(plan["remove"][0])
    removed = []
    for nid in plan["remove"]:
        index = list(doc.nodes).index(nid)
        removed.append((*doc.remove_node(nid), index))
    b = plan["block"]
    doc.insert_node(Node(b["node_id"], b["type_id"],
                         get_spec(b["type_id"]).full_params(copy.deepcopy(b["params"])),
                         b["label"], (float(b["position"][0]), float(b["position"][1]))),
                    index=at)  # the block takes the place of the first node
    for e in plan["edges"]:
        doc.add_edge(e)
    return removed


def undo_group(doc: GraphDocument, block_id: str, removed) -> None:
    """Undo :func:`apply_group` exactly (node order included)."""
    doc.remove_node(block_id)
    for node, edges, index in reversed(removed):
        doc.insert_node(copy.deepcopy(node), edges, index=index)


def apply_ungroup(doc: GraphDocument, block_id: str, plan: dict[str, Any]) -> None:
    doc.remove_node(block_id)
    for k, n in enumerate(plan["nodes"]):  # back in the block's place in node order
        doc.insert_node(copy.deepcopy(n), index=plan["index"] + k)
    for e in plan["edges"]:
        doc.add_edge(e)


def ungroup(doc: GraphDocument, block_id: str) -> list[str]:
    plan = ungroup_plan(doc, block_id)
    apply_ungroup(doc, block_id, plan)
    return [n.id for n in plan["nodes"]]
