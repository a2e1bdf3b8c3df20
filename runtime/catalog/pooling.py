"""Pooling and sub-sampling. Window pools work on (C, L) and (C, H, W) inputs alike."""
from __future__ import annotations

from ._lazy import nn

from ._lazy import M
from . import register
from ._util import expect_rank, fmt_shape, spatial_ndim
from .spec import FLOAT, LayerSpec, Param, Port, ShapeError, pair

CAT = "Pooling"


def window_params(kernel: int = 2) -> tuple[Param, ...]:
    return (
        Param("kernel_size", "size", kernel, "window size", min=1),
        Param("stride", "size", 0, "step between windows; 0 (the default) = the window "
              "size, non-overlapping windows; smaller than the window = overlapping", min=0,
              label="stride (0 = window size)"),
        Param("padding", "size", 0, "padding on each side (at most half the window)", min=0),
    )


def _window(p, n):
    for name in ("kernel_size", "stride", "padding"):  # lists: one number per spatial axis
        if isinstance(p[name], list) and len(p[name]) != n:
            raise ShapeError(f"{name}: a ({'C, L' if n == 1 else 'C, H, W'}) input needs "
                             f"{n} number{'s' if n > 1 else ''}, received {p[name]}")
    k = pair(p["kernel_size"], n)
    s = pair(p["stride"], n)
    s = tuple(ki if si == 0 else si for ki, si in zip(k, s))
    pad = pair(p["padding"], n)
    for ki, pi in zip(k, pad):
        if pi * 2 > ki:
            raise ShapeError(f"padding {pi} is more than half the window {ki}")
    return k, s, pad


def _check_fits(shape, k, pad):
    for size, ki, pi in zip(shape[1:], k, pad):
        if size + 2 * pi < ki:
            raise ShapeError(f"window {ki} is larger than the input {fmt_shape(shape)}")


def _receptive(p):
    k = pair(p["kernel_size"], 2)
    s = tuple(ki if si == 0 else si for ki, si in zip(k, pair(p["stride"], 2)))
    return {"kernel": k, "stride": s, "dilation": (1, 1), "padding": pair(p["padding"], 2)}


def _build_window(kind: str):
    def build(p, s):
        n = spatial_ndim(s["x"])
        k, st, pad = _window(p, n)
        _check_fits(s["x"], k, pad)
        if kind == "max":
            return (nn.MaxPool1d if n == 1 else nn.MaxPool2d)(k, st, pad)
        if kind == "avg":
            return (nn.AvgPool1d if n == 1 else nn.AvgPool2d)(k, st, pad)
        return (M.SumPool if kind == "sum" else M.L2Pool)(n, k, st, pad)
    return build


def _window_spec(type_id, title, doc, kind):
    return LayerSpec(type=type_id, title=title, category=CAT, doc=doc,
                     inputs=(Port("x", FLOAT, ranks=(2, 3)),), params=window_params(),
                     build=_build_window(kind), receptive=_receptive, macs=lambda p, s, o: 0)


def _build_adaptive(p, s):
    n = spatial_ndim(s["x"])
    if isinstance(p["output_size"], list) and len(p["output_size"]) != n:
        raise ShapeError(f"output_size: a ({'C, L' if n == 1 else 'C, H, W'}) input needs "
                         f"{n} number{'s' if n > 1 else ''}, received {p['output_size']}",
                         param="output_size")
    return M.AdaptiveAvgPool(n, pair(p["output_size"], n))


def _build_spp(p, s):
    n = spatial_ndim(s["x"])
    return M.SpatialPyramidPool(p["levels"], n)


def _build_subsample(p, s):
    expect_rank(s["x"], (3,))
    _check_fits(s["x"], (p["kernel_size"],) * 2, (0, 0))
    return M.Subsample2d(s["x"][0], p["kernel_size"], p["kernel_size"])


register(
    _window_spec("MaxPool", "Max pooling",
                 "y = max over each window. Backpropagation routes the gradient to the arg-max "
                 "(the 'switch'); all other inputs get zero.", "max"),
    _window_spec("AvgPool", "Average pooling", "y = mean over each window.", "avg"),
    _window_spec("SumPool", "Sum pooling", "y = sum over each window.", "sum"),
    _window_spec("L2Pool", "L2 pooling",
                 "h[n] = (1/n) sqrt(sum_{i in N(n)} h~[i]^2) over each window of n inputs.", "l2"),
    LayerSpec(
        type="GlobalAvgPool", title="Global average pooling", category=CAT,
        doc="Mean of each channel over all positions: (C, H, W) or (C, L) -> (C).",
        inputs=(Port("x", FLOAT, ranks=(2, 3)),),
        build=lambda p, s: (spatial_ndim(s["x"]), M.GlobalAvgPool())[1],
        receptive=lambda p: "reset", macs=lambda p, s, o: 0,
    ),
    LayerSpec(
        type="AdaptiveAvgPool", title="Adaptive average pooling", category=CAT,
        doc="Averages over windows sized so that the output has a fixed size whatever the "
            "input's: (C, H, W) -> (C, oh, ow), (C, L) -> (C, ol). Window i covers "
            "[floor(i H / oh), ceil((i + 1) H / oh)). torch's AdaptiveAvgPool1d/2d.",
        inputs=(Port("x", FLOAT, ranks=(2, 3)),),
        params=(Param("output_size", "size", 1, "output height and width (one number: "
                      "square), or length for a (C, L) input", min=1),),
        build=_build_adaptive, receptive=lambda p: "reset", macs=lambda p, s, o: 0,
    ),
    LayerSpec(
        type="GlobalMaxPool", title="Global max pooling", category=CAT,
        doc="Max of each channel over all positions (max over time for text): -> (C).",
        inputs=(Port("x", FLOAT, ranks=(2, 3)),),
        build=lambda p, s: (spatial_ndim(s["x"]),
                            nn.Sequential(nn.Flatten(2), nn.AdaptiveMaxPool1d(1), nn.Flatten(1)))[1],
        receptive=lambda p: "reset", macs=lambda p, s, o: 0,
    ),
    LayerSpec(
        type="SpatialPyramidPool", title="Spatial pyramid pooling", category=CAT,
        doc="Max-pools the map into fixed l x l grids for each level l and concatenates: "
            "any input size gives C * sum(l^2) features.",
        inputs=(Port("x", FLOAT, ranks=(2, 3)),),
        params=(Param("levels", "ints", [1, 2, 4], "grid sizes", min=1, min_items=1),),
        build=_build_spp, receptive=lambda p: "reset", macs=lambda p, s, o: 0,
    ),
    LayerSpec(
        type="Subsample2d", title="Trainable sub-sampling", category=CAT,
        doc="LeNet-5's S2/S4: y_c = w_c * (sum of the window of map c) + b_c, with one "
            "trainable weight and bias per map, non-overlapping windows.",
        inputs=(Port("x", FLOAT, ranks=(3,)),),
        params=(Param("kernel_size", "int", 2, "window size (and stride)", min=1),),
        build=_build_subsample,
        receptive=lambda p: {"kernel": (p["kernel_size"],) * 2, "stride": (p["kernel_size"],) * 2,
                             "dilation": (1, 1), "padding": (0, 0)},
        macs=lambda p, s, o: o[0][0] * o[0][1] * o[0][2],  # one weight multiply per output
    ),
)
