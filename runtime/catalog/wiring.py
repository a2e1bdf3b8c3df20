"""Wiring: add, multiply, concatenate, split, scalar ops, flatten, reshape, transpose."""
from __future__ import annotations

import math

from ._lazy import nn

from ._lazy import M
from . import register
from ._util import fmt_shape
from .spec import FLOAT, LayerSpec, Param, Port, ShapeError

CAT = "Wiring"
MAX_PORTS = 16


def _count(p, name: str) -> int:
    v = p.get(name)
    return v if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_PORTS else 2


def _n_inputs(p):
    return tuple(Port(f"x{i + 1}", FLOAT) for i in range(_count(p, "inputs")))


def _same_shapes(p, s):
    names = list(s)
    first = s[names[0]]
    for n in names[1:]:
        if tuple(s[n]) != tuple(first):
            raise ShapeError(f"{n}: expected {fmt_shape(first)} (the shape of {names[0]}), "
                             f"received {fmt_shape(s[n])}")


def _axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{what}: axis {axis} does not exist in a rank-{rank} sample")
    return axis % rank


def _build_concat(p, s):
    names = list(s)
    ranks = [len(s[n]) for n in names]
    rank = _majority(ranks, ranks[0])
    odd = next((n for n in names if len(s[n]) != rank), None)
    if odd is not None:
        raise ShapeError(f"{odd}: has rank {len(s[odd])} {fmt_shape(s[odd])}, the other inputs "
                         f"rank {rank} ({_shapes(s, odd)}); Concatenate joins inputs of one rank")
    ax = _axis(p["axis"], rank, names[0])
    for i in range(rank):
        if i == ax:
            continue
        sizes = [s[n][i] for n in names]
        common = _majority(sizes, sizes[0])
        odd = next((n for n in names if s[n][i] != common), None)
        if odd is not None:
            raise ShapeError(
                f"{odd}: differs from the other inputs on axis {i}{_axis_name(i, rank)}: "
                f"{s[odd][i]}, the others {common} ({_shapes(s, odd)}). Inputs are joined "
                f"along axis {ax}{_axis_name(ax, rank)}; every other axis must agree")
    return M.Concat(ax + 1)


def _majority(values, tie):
    """The most common value; ``tie`` (the first input's) when several are."""
    counts = {v: values.count(v) for v in values}
    best = max(counts.values())
    return tie if counts[tie] == best else next(v for v in values if counts[v] == best)


def _axis_name(i: int, rank: int) -> str:
    names = {3: ("channels", "height", "width"), 2: ("channels or steps", "length or features"),
             1: ("features",)}.get(rank)
    return f" ({names[i]})" if names else ""


def _shapes(s, odd) -> str:
    return ", ".join(f"{n} {fmt_shape(sh)}" for n, sh in s.items() if n != odd)


def _build_split(p, s):
    sh = s["x"]
    ax = _axis(p["axis"], len(sh), "x")
    k = p["parts"]
    if sh[ax] % k:
        raise ShapeError(f"x: axis {p['axis']} has size {sh[ax]}, which does not split into "
                         f"{k} equal parts")
    return M.Split([sh[ax] // k] * k, ax + 1)


def _build_reshape(p, s):
    target = list(p["shape"])
    total = math.prod(s["x"])
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or total % known:
            raise ShapeError(f"x: {fmt_shape(s['x'])} ({total} values) cannot be reshaped to "
                             f"{fmt_shape(target)}")
    elif known != total:
        raise ShapeError(f"x: {fmt_shape(s['x'])} has {total} values, {fmt_shape(target)} "
                         f"needs {known}")
    return M.Reshape(target)


def _build_transpose(p, s):
    rank = len(s["x"])
    a, b = _axis(p["axis1"], rank, "x"), _axis(p["axis2"], rank, "x")
    return M.Transpose(a + 1, b + 1)


def _wire(type_id, title, doc, build, inputs=(Port("x", FLOAT),), outputs=(Port("out", FLOAT),),
          params=(), **kw):
    return LayerSpec(type=type_id, title=title, category=CAT, doc=doc, inputs=inputs,
                     outputs=outputs, params=params, build=build, macs=lambda p, s, o: 0, **kw)


N_INPUTS = Param("inputs", "int", 2, "number of inputs", min=2, max=MAX_PORTS)

register(
    _wire("Add", "Add", "y = x1 + x2 + ... (same shapes). The skip connection of a residual block.",
          lambda p, s: (_same_shapes(p, s), M.Add())[1], inputs=_n_inputs, params=(N_INPUTS,),
          same_shape=True),
    _wire("Multiply", "Multiply", "y = x1 * x2 * ... element-wise (same shapes): gates.",
          lambda p, s: (_same_shapes(p, s), M.Multiply())[1], inputs=_n_inputs, params=(N_INPUTS,),
          same_shape=True),
    _wire("Concat", "Concatenate", "Joins inputs along an axis (0 = channels/features): "
          "Inception-style parallel branches.", _build_concat, inputs=_n_inputs,
          params=(N_INPUTS, Param("axis", "int", 0, "per-sample axis to join along"))),
    _wire("Split", "Split", "Cuts the input into equal parts along an axis.", _build_split,
          outputs=lambda p: tuple(Port(f"out{i + 1}", FLOAT) for i in range(_count(p, "parts"))),
          params=(Param("parts", "int", 2, "number of equal parts", min=2, max=MAX_PORTS),
                  Param("axis", "int", 0, "per-sample axis to cut"))),
    _wire("OneMinus", "One minus", "y = 1 - x (the (1 - z) of a GRU update).",
          lambda p, s: M.OneMinus(), same_shape=True),
    _wire("Scale", "Scale and shift", "y = a x + b with scalars a and b, fixed or learned.",
          lambda p, s: M.Scale(p["scale"], p["shift"], p["learnable"]),
          params=(Param("scale", "float", 1.0, "a"), Param("shift", "float", 0.0, "b"),
                  Param("learnable", "bool", False, "learn a and b")), same_shape=True),
    _wire("Flatten", "Flatten", "(C, H, W) -> (C*H*W): one vector per sample.",
          lambda p, s: nn.Flatten(1), receptive=lambda p: "reset"),
    _wire("Reshape", "Reshape", "Gives each sample a new shape with the same number of values; "
          "one entry may be -1 (inferred).", _build_reshape,
          params=(Param("shape", "ints", [-1], "new per-sample shape", min=1, allow_minus_one=True,
                        min_items=1),),
          receptive=lambda p: "reset"),
    _wire("Transpose", "Transpose", "Swaps two per-sample axes, e.g. (T, D) -> (D, T) so a "
          "1-D convolution sees D channels along time.", _build_transpose,
          params=(Param("axis1", "int", 0, "first axis"), Param("axis2", "int", 1, "second axis"))),
)
