"""Unrolling: a rolled recurrent document as an acyclic document over T steps, for the
editor to show read-only (View > Show Unrolled Graph)."""
from __future__ import annotations

import networkx as nx

from ..graph import GraphDocument
from ..pipeline import analyze
from ..topology import DELAY, SEQ_IN, SEQ_OUT, find_regions, tags


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
            node_tags = tags(node)
            if SEQ_IN in node_tags:
                p = node.params
                idx = steps - 1 - t if p.get("reverse") else t
                out.add_node("SelectStep", {"step": idx}, node_id=nid, label=label, position=pos)
            elif DELAY in node_tags:
                if t == 0:
                    out.add_node("InitialState", {"shape": list(node.params["shape"]),
                                                  "init": node.params["init"]},
                                 node_id=nid, label=label, position=pos)
                else:
                    out.add_node("Identity", {}, node_id=nid, label=label, position=pos)
            elif SEQ_OUT in node_tags:
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
        return nid in region_of and SEQ_OUT not in tags(doc.nodes[nid])

    last = steps - 1
    for e in doc.edges:
        s, sp, t, tp = e.source, e.source_port, e.target, e.target_port
        tn = doc.nodes[t]
        if t not in region_of or (SEQ_OUT in tags(tn) and not inner(s)):
            out.connect(s, sp, t, tp)
        elif SEQ_IN in tags(tn):
            for k in range(steps):
                out.connect(s, sp, copy_id(t, k), "seq")
        elif DELAY in tags(tn) and tp == "init":
            out.connect(s, sp, copy_id(t, 0), "init")
        elif DELAY in tags(tn):
            for k in range(last):  # x at step k is the Delay's output at step k + 1
                out.connect(copy_id(s, k) if inner(s) else s, sp, copy_id(t, k + 1), "x")
        elif tn.type == "Collect":
            for k in range(steps):
                out.connect(copy_id(s, k), sp, t, f"x{k + 1}")
        elif SEQ_OUT in tags(tn):
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
    a = analyze(doc)
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

