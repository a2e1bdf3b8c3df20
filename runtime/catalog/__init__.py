"""The layer catalog: one :class:`LayerSpec` per node type, registered by type id.

The catalog is open: a module declares its specs and calls :func:`register` (the
recurrent node types live in their own module). Import order fixes palette order.
"""
from __future__ import annotations

from ._util import fmt_shape
from .spec import (ANY, FLOAT, INDEX, LayerSpec, Param, Port, ShapeError,
                   kinds_compatible, pair)

CATALOG: dict[str, LayerSpec] = {}
HIDDEN: dict[str, LayerSpec] = {}  # types made by the app, not the palette (blocks.py)


def register(*specs: LayerSpec) -> None:
    for spec in specs:
        if spec.type in CATALOG:
            raise ValueError(f"node type {spec.type!r} is registered twice")
        CATALOG[spec.type] = spec


def get_spec(type_id: str) -> LayerSpec:
    """The spec of ``type_id``; KeyError with the close matches when unknown."""
    try:
        return CATALOG[type_id]
    except KeyError:
        if type_id in HIDDEN:
            return HIDDEN[type_id]
        import difflib

        close = difflib.get_close_matches(type_id, CATALOG, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown node type {type_id!r}{hint}") from None


def categories() -> dict[str, list[LayerSpec]]:
    """Palette categories in catalog order."""
    out: dict[str, list[LayerSpec]] = {}
    for spec in CATALOG.values():
        out.setdefault(spec.category, []).append(spec)
    return out


# Registration (order = palette order).
from . import inputs, affine, convolution, pooling, activations, normalization, wiring, losses, recurrent  # noqa: E402,F401
from .blocks import SPECS as _BLOCK_SPECS  # noqa: E402
HIDDEN.update((s.type, s) for s in _BLOCK_SPECS)

__all__ = ["CATALOG", "register", "get_spec", "categories", "LayerSpec", "Param", "Port",
           "ShapeError", "FLOAT", "INDEX", "ANY", "kinds_compatible", "pair", "fmt_shape"]
