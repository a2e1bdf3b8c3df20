"""The declaration of a node type: ports, parameter schema, documentation, torch builder.

A :class:`LayerSpec` is everything Netbuilder knows about a node type. The editor builds
its palette and inspector from it, validation checks parameters against its schema,
analysis and the compiler call its builder. Shapes are *per sample*: the batch dimension
is implicit and always first at run time, so an image input of 1x32x32 has the shape
``(1, 32, 32)`` here and ``(N, 1, 32, 32)`` in torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

# Port kinds: what flows along an edge. Shapes are checked by analysis; kinds catch
# the category errors earlier (while dragging a wire in the editor).
FLOAT = "float"  # real-valued activations
INDEX = "index"  # integer class or token ids
ANY = "any"  # accepts (or produces) either
PORT_KINDS = (FLOAT, INDEX, ANY)

Shape = tuple  # per-sample shape, e.g. (6, 28, 28); () for a scalar loss

# Whole-number parameters (int, size, ints) without a declared maximum are at most this
# (the largest 32-bit signed integer, the common limit of torch's kernels): a plain
# validation error on the parameter instead of torch's overflow deep in a builder.
MAX_INT = 2**31 - 1
_WHOLE = ("int", "size", "ints")


def kinds_compatible(out_kind: str, in_kind: str) -> bool:
    """Whether an output port of ``out_kind`` may feed an input port of ``in_kind``."""
    return out_kind == in_kind or ANY in (out_kind, in_kind)


@dataclass(frozen=True)
class Port:
    name: str
    kind: str = FLOAT
    doc: str = ""
    optional: bool = False
    # Per-sample ranks this input accepts (None: any). Used for plain-words errors.
    ranks: tuple[int, ...] | None = None
    role: str = "data"  # "data" or "target" (the labels a loss compares against)


@dataclass(frozen=True)
class Param:
    """One parameter of a node type, with the schema the inspector and validation use.

    ``type`` is one of: int, float, bool, choice, str, ints (a list of ints),
    size (an int or a list of ints, e.g. a kernel size), table (a list of int lists).
    """

    name: str
    type: str
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    length: int | None = None  # for 'size': the list form must have this many items
    allow_minus_one: bool = False  # for 'ints': a single -1 means "infer" (reshape)
    min_items: int = 0  # for 'ints'
    label: str = ""  # the inspector's name for it when the name alone misleads

    def display_label(self) -> str:
        """What the inspector writes beside the editor: ``label``, else the name."""
        return self.label or self.name.replace("_", " ")

    def check(self, value: Any) -> str | None:
        """Return a plain message when ``value`` is not allowed, else None."""
        t = self.type
        if t == "bool":
            return None if isinstance(value, bool) else f"expected true or false, received {short_repr(value)}"
        if t == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"expected a whole number, received {short_repr(value)}"
            return self._bounds(value)
        if t == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected a number, received {short_repr(value)}"
            if isinstance(value, int) and abs(value) > 1e300:  # (past a float's range)
                return f"expected a number a float can hold, received {_fmt(value)}"
            if not math.isfinite(value):
                return f"expected a finite number, received {short_repr(value)}"
            return self._bounds(value)
        if t == "choice":
            if value not in (self.choices or ()):
                return f"expected one of {', '.join(self.choices or ())}, received {short_repr(value)}"
            return None
        if t == "str":
            return None if isinstance(value, str) else f"expected text, received {short_repr(value)}"
        if t == "size":
            items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(items, (list, tuple)) or not items or any(
                isinstance(v, bool) or not isinstance(v, int) for v in items
            ):
                return f"expected a whole number or a list of whole numbers, received {short_repr(value)}"
            if not isinstance(value, int) and self.length and len(items) != self.length:
                return f"expected {self.length} numbers, received {len(items)}"
            for v in items:
                msg = self._bounds(v)
                if msg:
                    return msg
            return None
        if t == "ints":
            if not isinstance(value, (list, tuple)) or any(
                isinstance(v, bool) or not isinstance(v, int) for v in value
            ):
                return f"expected a list of whole numbers, received {short_repr(value)}"
            if len(value) < self.min_items:
                return f"expected at least {self.min_items} numbers, received {len(value)}"
            if self.allow_minus_one and sum(1 for v in value if v == -1) > 1:
                return "at most one entry may be -1 (inferred)"
            for v in value:
                if self.allow_minus_one and v == -1:
                    continue
                msg = self._bounds(v)
                if msg:
                    return msg
            return None
        if t == "table":
            ok = isinstance(value, (list, tuple)) and all(
                isinstance(row, (list, tuple))
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row)
                for row in value
            )
            return None if ok else f"expected a list of lists of channel numbers, received {short_repr(value)}"
        raise ValueError(f"unknown parameter type {t!r}")

    def _bounds(self, v: float) -> str | None:
        if self.min is not None and v < self.min:
            return f"must be at least {_fmt(self.min)}, received {_fmt(v)}"
        if self.max is not None and v > self.max:
            return f"must be at most {_fmt(self.max)}, received {_fmt(v)}"
        if self.type in _WHOLE and abs(v) > MAX_INT:
            got = _fmt(v) if len(str(abs(v))) < 16 else f"a number of {len(str(abs(v)))} digits"
            bound = f"at most {MAX_INT:,}" if v > 0 else f"at least {-MAX_INT:,}"
            return f"must be {bound}, received {got}"
        return None


def short_repr(value, limit: int = 80) -> str:
    """repr() cut to ``limit`` characters, for quoting a bad value in a message."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return "a number too long to print"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _fmt(v: float) -> str:
    if isinstance(v, int):  # (exact, and no float conversion: 10**400 is a valid int)
        return str(v) if len(str(abs(v))) < 16 else f"a number of {len(str(abs(v)))} digits"
    return str(int(v)) if float(v).is_integer() else repr(v)


class ShapeError(Exception):
    """An input shape a layer cannot take; the message says expected vs received.
    ``param`` names the parameter that conflicts with the input, when one does."""

    def __init__(self, message: str = "", *, param: str | None = None):
        super().__init__(message)
        self.param = param


# Builders take (params, input shapes by port name) and return an nn.Module whose
# forward takes the inputs in port order. Input nodes have no builder.
Builder = Callable[[Mapping[str, Any], Mapping[str, Shape]], Any]


@dataclass(frozen=True)
class LayerSpec:
    type: str  # stable type id, e.g. "Conv2d"
    title: str  # palette name, e.g. "Convolution 2-D"
    category: str  # palette category
    doc: str  # what it computes, with the formula
    inputs: tuple[Port, ...] | Callable[[Mapping[str, Any]], tuple[Port, ...]] = ()
    outputs: tuple[Port, ...] | Callable[[Mapping[str, Any]], tuple[Port, ...]] = (Port("out"),)
    params: tuple[Param, ...] = ()
    build: Builder | None = None
    # Input nodes: the per-sample shape and dtype of the placeholder they stand for.
    source_shape: Callable[[Mapping[str, Any]], Shape] | None = None
    source_kind: str | None = None  # "input" or "target" for source nodes
    # (kernel, stride, dilation) per spatial axis for receptive-field analysis;
    # "reset" for layers after which position has no meaning (flatten, dense).
    receptive: Callable[[Mapping[str, Any]], Any] | None = None
    # Override for MACs where torch's flop counter does not see weight multiplications.
    macs: Callable[[Mapping[str, Any], Mapping[str, Shape], Sequence[Shape]], int] | None = None
    # Extra checks beyond the schema: (params) -> list of (param name, message).
    check: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None
    is_loss: bool = False
    is_output: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)
    # Declares that every output has the shape of the first input, whatever its sizes
    # (element-wise layers, normalisation, dropout, same-shape sums). Analysis then runs
    # torch's meta forward once per (type, params, input ranks and kinds) and reuses the
    # result for other sizes, checking the declaration there (analysis.py, "shape classes").
    same_shape: bool = False

    # ---- ports -----------------------------------------------------------------
    def input_ports(self, params: Mapping[str, Any] | None = None) -> tuple[Port, ...]:
        if not callable(self.inputs):
            return self.inputs
        return self.inputs(self.full_params(params))

    def output_ports(self, params: Mapping[str, Any] | None = None) -> tuple[Port, ...]:
        if not callable(self.outputs):
            return self.outputs
        return self.outputs(self.full_params(params))

    # ---- parameters --------------------------------------------------------------
    def defaults(self) -> dict[str, Any]:
        return {p.name: _copy(p.default) for p in self.params}

    def full_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``params`` (unknown names are kept for validation)."""
        out = self.defaults()
        if params:
            out.update(params)
        return out

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def param_problems(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(param name, message) for every parameter value the schema refuses."""
        problems: list[tuple[str, str]] = []
        known = {p.name for p in self.params}
        for name in params:
            if name not in known:
                problems.append((name, f"{self.type} has no parameter {name!r}"))
        full = self.full_params(params)
        for p in self.params:
            msg = p.check(full[p.name])
            if msg:
                problems.append((p.name, msg))
        if not problems and self.check is not None:
            problems.extend(self.check(full))
        return problems

    @property
    def is_source(self) -> bool:
        return self.source_kind is not None


def _copy(v: Any) -> Any:
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def pair(v: Any, n: int = 2) -> tuple[int, ...]:
    """A 'size' parameter as an n-tuple."""
    if isinstance(v, int):
        return (v,) * n
    return tuple(v)
