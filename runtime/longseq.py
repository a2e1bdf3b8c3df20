"""Analysis of fused recurrent layers at any sequence length, at the cost of a short one.

torch runs a recurrent layer on ``meta`` tensors step by step, so evaluating an LSTM on a
(T, D) input costs time (and Python objects) growing with T: 35 s at T = 10,000 for a
bidirectional GRU. The layer's outputs, parameters and MACs are affine in T, so they are
found from two short runs (T = 3 and T = 4): an output axis that is 3 in one and 4 in the
other is the time axis and becomes T; parameters must agree; bytes (and MACs where the
spec has no formula) are extrapolated along the line through the two runs. Cost no longer
depends on T.
"""
from __future__ import annotations

from typing import Callable

SHORT = (3, 4)  # the two lengths run (distinct, and never a layer's own size by chance)
FULL_UP_TO = 64  # sequences this short are evaluated as they are


def sequence_length(node, ins) -> int | None:
    """T of a fused recurrent layer's (T, D) input ``x``, or None (not such a layer)."""
    if "sequence" not in node.spec.tags or "x" not in ins:
        return None
    shape = ins["x"][0]
    return shape[0] if len(shape) == 2 else None


def long_sequence_result(node, ins, compute: Callable):
    """The Result of ``compute(node, ins)`` from two short runs, or None when the input
    is short, not a sequence, or the short runs disagree with the affine model."""
    steps = sequence_length(node, ins)
    if steps is None or steps <= FULL_UP_TO:
        return None
    runs = [compute(node, _with_length(ins, steps, t)) for t in SHORT]
    a, b = runs
    if a.error or b.error:
        return a if a.error else b  # (rank and feature checks: the same at every length)
    if a.params != b.params or set(a.shapes) != set(b.shapes):
        return None
    res = type(a)()
    res.kinds = dict(a.kinds)
    for port, sa in a.shapes.items():
        sb = b.shapes[port]
        if len(sa) != len(sb):
            return None
        dims = []
        for da, db in zip(sa, sb):
            if (da, db) == SHORT:
                dims.append(steps)
            elif da == db:
                dims.append(da)
            else:
                return None
        res.shapes[port] = tuple(dims)
    res.params = a.params

    def line(va: int, vb: int) -> int:
        return va + (vb - va) * (steps - SHORT[0])
    res.bytes = line(a.bytes, b.bytes)
    spec = node.spec
    if spec.macs is not None:
        outs = [res.shapes[p.name] for p in spec.output_ports(node.params)]
        res.macs = int(spec.macs(node.params, {k: v[0] for k, v in ins.items()}, outs))
    else:
        res.macs = line(a.macs, b.macs)
    return res


def _with_length(ins, steps: int, t: int):
    """``ins`` with the time axis (axis 0 of every (T, ...) input) set to ``t``."""
    return {k: ((t,) + tuple(shape[1:]) if len(shape) >= 2 and shape[0] == steps
                else shape, kind) for k, (shape, kind) in ins.items()}
