"""The layer catalog: one :class:`LayerSpec` per node type, registered by type id.

The catalog is open: a module declares its specs and calls :func:`register` (the
recurrent node types live in their own module). Import order fixes palette order.
"""
from __future__ import annotations

from ._util import fmt_shape, short_repr
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
        raise KeyError(f"unknown node type {type_id!r}{type_hint(type_id, 3)}") from None


# Names other tools give these layers (torch.nn's classes, Keras's layers): a graph
# written by hand from PyTorch code uses them. Compared without regard to case.
OTHER_NAMES = {
    "Linear": "Dense", "LazyLinear": "Dense", "Conv1D": "Conv1d", "Conv2D": "Conv2d",
    "LazyConv2d": "Conv2d", "ConvTranspose2D": "ConvTranspose2d",
    "Conv2DTranspose": "ConvTranspose2d", "BatchNorm1d": "BatchNorm",
    "BatchNorm2d": "BatchNorm", "BatchNormalization": "BatchNorm", "MaxPool1d": "MaxPool",
    "MaxPool2d": "MaxPool", "MaxPooling1D": "MaxPool", "MaxPooling2D": "MaxPool",
    "AvgPool1d": "AvgPool", "AvgPool2d": "AvgPool", "AveragePooling1D": "AvgPool",
    "AveragePooling2D": "AvgPool", "AdaptiveAvgPool1d": "AdaptiveAvgPool",
    "AdaptiveAvgPool2d": "AdaptiveAvgPool", "AdaptiveMaxPool1d": "GlobalMaxPool",
    "AdaptiveMaxPool2d": "GlobalMaxPool", "GlobalAveragePooling1D": "GlobalAvgPool",
    "GlobalAveragePooling2D": "GlobalAvgPool", "GlobalMaxPooling1D": "GlobalMaxPool",
    "GlobalMaxPooling2D": "GlobalMaxPool", "Dropout1d": "Dropout", "Dropout2d": "Dropout",
    "Upsample": "Upsample2d", "UpsamplingNearest2d": "Upsample2d",
    "UpSampling2D": "Upsample2d", "LocalResponseNormalization": "LocalResponseNorm",
    "Concatenate": "Concat", "Cat": "Concat", "CrossEntropyLoss": "CrossEntropy",
    "MSELoss": "SquaredError", "BCELoss": "BinaryCrossEntropy",
    "BCEWithLogitsLoss": "BinaryCrossEntropy", "MultiMarginLoss": "MulticlassHinge",
    "TripletMarginLoss": "TripletLoss", "SimpleRNN": "RNN",
}
_OTHER_LOWER = {k.lower(): v for k, v in OTHER_NAMES.items()}


def type_hint(type_id: str, n: int = 1) -> str:
    """' (did you mean X?)' for an unknown type id: the catalog's name for a torch or
    Keras layer name, else the closest catalog names; '' when nothing is close."""
    if not isinstance(type_id, str):
        return ""
    other = OTHER_NAMES.get(type_id) or _OTHER_LOWER.get(type_id.lower())
    if other is None:
        other = next((t for t in CATALOG if t.lower() == type_id.lower()), None)
    if other is not None and other in CATALOG:
        return f" (did you mean {other}? Netbuilder's name for {type_id})" \
            if other.lower() != type_id.lower() else f" (did you mean {other}?)"
    import difflib

    close = difflib.get_close_matches(type_id, CATALOG, n=n)
    return f" (did you mean {', '.join(close)}?)" if close else ""


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

__all__ = ["CATALOG", "OTHER_NAMES", "register", "get_spec", "type_hint", "categories",
           "LayerSpec", "Param", "Port", "ShapeError", "FLOAT", "INDEX", "ANY",
           "kinds_compatible", "pair", "fmt_shape", "short_repr"]
