"""Per-node evaluation on ``meta`` tensors: output shapes, parameters, MACs of one node
for its input shapes, memoised.

Shapes come from running the node's real torch builder on ``meta`` tensors (no memory,
no compute), parameter counts from the built module, and multiply-accumulates from
``torch.utils.flop_counter`` (a matmul or convolution of F flops is F/2 MACs; bias
additions are not counted). Hand-written formulas only where torch's counter does not see
the weight multiplications (LeNet's sub-sampling, RBF units, the connection-table conv).

Results for one (type, params, input shapes) are memoised (:func:`evaluate`), so
re-analysing a graph after one edit recomputes only the nodes whose inputs changed.
Layers declared ``same_shape`` (element-wise, normalisation, dropout, same-shape sums:
their outputs have the first input's shape at every size) are run by torch once per
*shape class* (type, params, input ranks and kinds) and reused for other sizes, with the
declaration checked on torch's answer; their modules are still built for the parameter
count. Flops are summed by torch's own flop-counter dispatch mode without its per-module
bookkeeping (``_FlopTotal``).
"""
from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from typing import Any

import torch
from torch.utils import flop_counter as _flop_counter

from .catalog import INDEX, ShapeError, fmt_shape
from .graph import Node
from .longseq import long_sequence_result, sequence_length

META_BATCH = 2  # batch norm needs more than one sample per channel in training mode


class Result:
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


_CACHE: OrderedDict[Any, Result] = OrderedDict()
_CACHE_SIZE = 20_000


_EPOCH = 0  # bumped by clear_cache(): every Analyzer then starts afresh

# Shape classes of ``same_shape`` specs: (type, params, ranks and kinds of the inputs) ->
# (the representative's inputs, its Result) when torch confirmed the declaration there,
# or None when it did not (then every size is evaluated in full).
SHAPE_CLASSES: dict[Any, tuple[dict, Result] | None] = {}


def clear_cache() -> None:
    global _EPOCH
    _CACHE.clear()
    SHAPE_CLASSES.clear()
    _EPOCH += 1



def epoch() -> int:
    """Bumped by :func:`clear_cache`: incremental analysers then start afresh."""
    return _EPOCH


def memo_key(node: Node, ins) -> Any:
    try:
        params = json.dumps(node.params, sort_keys=True)
    except TypeError:
        params = repr(sorted(node.params.items()))
    return (node.type, params, tuple(sorted(ins.items())))


def evaluate(node: Node, ins) -> Result:
    key = memo_key(node, ins)
    res = _CACHE.get(key)
    if res is not None:
        _CACHE.move_to_end(key)
        return res
    res = refused_params(node)  # never build from values validation refuses
    if res is None and node.spec.same_shape and ins:
        res = same_shape_result(node, ins, key)
    if res is None and sequence_length(node, ins):  # a recurrent layer: cost free of T
        res = long_sequence_result(node, ins, compute)
    if res is None:
        res = compute(node, ins)
    _CACHE[key] = res
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return res


def refused_params(node: Node) -> Result | None:
    """An error Result when the node's parameters break their schema (10**7 stacked
    layers, ``steps: null``...): analysis then reports the parameter instead of building
    a module from it, which could take any time or memory."""
    problems = node.spec.param_problems(node.params)
    if not problems:
        return None
    res = Result()
    res.error_param, msg = problems[0]
    res.error = msg if msg.startswith(f"{res.error_param}") else f"{res.error_param}: {msg}"
    return res


def same_shape_result(node: Node, ins, key) -> Result | None:
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
    if ckey not in SHAPE_CLASSES:
        res = compute(node, ins)
        if res.error is None:  # (an error says nothing about the class: try the next size)
            shape, kind = ins[first]
            ok = res.macs == 0 and bool(res.shapes) and all(
                res.shapes[p] == tuple(shape) and res.kinds[p] == kind for p in res.shapes)
            SHAPE_CLASSES[ckey] = (ins, res) if ok else None
        return res
    cls = SHAPE_CLASSES[ckey]
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
    res = Result()
    res.shapes = {p: tuple(shape) for p in rep.shapes}
    res.kinds = dict(rep.kinds)
    per_element = rep.bytes // max(1, _numel(rep_ins[first][0]))
    res.bytes = per_element * _numel(shape)
    res.params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return res


def compute(node: Node, ins) -> Result:
    spec, params = node.spec, node.params
    res = Result()
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
                with flop_counter() as counter:
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


def flop_counter():
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

