"""Per-step analysis: inside a recurrent region shapes are per step; a Delay's output
shape is its ``shape`` parameter; the time axis T travels with the per-step values
(``NodeInfo.steps``), so two sequences of different lengths meeting in one cell is an
error; MACs and activation memory are per sequence (per-step values times T);
parameters are counted once. runtime/analysis.py calls these for each node."""
from __future__ import annotations

from ..diagnostics import ERROR, Diagnostic
from ..topology import SEQ_IN, SEQ_OUT, tags


def delay_shape(node) -> tuple[int, ...] | None:
    """A Delay's output shape, known from its parameters (its consumers come first in
    the order); None when the parameter is not a valid shape."""
    shape = node.params.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
        return None
    return tuple(shape)


def per_step(node, info, ins, ups) -> Diagnostic | None:
    """Per-step bookkeeping after a node is analysed: the time axis T moves along per-step
    values; MACs and activation memory of per-step nodes are per sequence (x T); Collect
    gives (T, ...). ``ins``: port -> (shape, kind); ``ups``: port -> upstream NodeInfo."""
    node_tags = tags(node)
    if SEQ_IN in node_tags:
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
    if SEQ_OUT in node_tags:
        if node.type == "Collect" and "out" in info.output_shapes:
            info.output_shapes["out"] = (t,) + tuple(info.output_shapes["out"][1:])
            info.activation_bytes *= t
        return None
    info.steps = t
    info.macs *= t
    info.activation_bytes *= t
    return None
