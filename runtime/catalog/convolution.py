"""Convolutions: 1-D, 2-D, locally connected, connection-table, transposed, up-sampling."""
from __future__ import annotations

from ._lazy import nn

from ._lazy import M
from . import register
from ._util import expect_rank, fmt_shape
from .spec import FLOAT, LayerSpec, Param, Port, ShapeError, pair

CAT = "Convolution"

LENET5_C3_TABLE = [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [0, 4, 5], [0, 1, 5],
    [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [0, 3, 4, 5], [0, 1, 4, 5], [0, 1, 2, 5],
    [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
    [0, 1, 2, 3, 4, 5],
]


def conv_params(n: int, filters: int = 8, kernel: int = 3) -> tuple[Param, ...]:
    return (
        Param("filters", "int", filters, "output channels (one feature map per filter)", min=1),
        Param("kernel_size", "size", kernel, "filter size (a number, or one per axis)", min=1, length=n),
        Param("stride", "size", 1, "step between filter positions", min=1, length=n),
        Param("padding", "size", 0, "zeros added on each side", min=0, length=n),
        Param("dilation", "size", 1, "spacing between filter taps", min=1, length=n),
        Param("groups", "int", 1, "split channels into groups convolved separately", min=1),
        Param("bias", "bool", True, "learn a bias per filter"),
    )


def _receptive(n: int):
    return lambda p: {"kernel": pair(p["kernel_size"], n), "stride": pair(p["stride"], n),
                      "dilation": pair(p["dilation"], n), "padding": pair(p["padding"], n)}


def _groups_ok(p, in_ch: int) -> None:
    g = p["groups"]
    if in_ch % g or p["filters"] % g:
        raise ShapeError(f"groups={g} must divide both the input channels ({in_ch}) "
                         f"and filters ({p['filters']})")


def _build_conv(n: int):
    def build(p, s):
        cls = nn.Conv1d if n == 1 else nn.Conv2d
        expect_rank(s["x"], (n + 1,))
        _groups_ok(p, s["x"][0])
        for size, k, pad, d in zip(s["x"][1:], pair(p["kernel_size"], n), pair(p["padding"], n),
                                   pair(p["dilation"], n)):
            if size + 2 * pad < d * (k - 1) + 1:
                raise ShapeError(f"input: the filter spans {d * (k - 1) + 1} positions "
                                 f"(kernel {k}, dilation {d}) but the padded input "
                                 f"{fmt_shape(s['x'])} has only {size + 2 * pad}")
        return cls(s["x"][0], p["filters"], pair(p["kernel_size"], n), pair(p["stride"], n),
                   pair(p["padding"], n), pair(p["dilation"], n), p["groups"], p["bias"])
    return build


def _build_local(p, s):
    expect_rank(s["x"], (3,))
    c, h, w = s["x"]
    k, st, pad = pair(p["kernel_size"]), pair(p["stride"]), pair(p["padding"])
    if h + 2 * pad[0] < k[0] or w + 2 * pad[1] < k[1]:
        raise ShapeError(f"kernel {k} is larger than the padded input {fmt_shape(s['x'])}")
    return M.LocallyConnected2d(c, p["filters"], (h, w), k, st, pad, p["bias"])


def _build_table_conv(p, s):
    expect_rank(s["x"], (3,))
    table = LENET5_C3_TABLE if p["table"] == [] else p["table"]
    top = max((c for row in table for c in row), default=-1)
    if top >= s["x"][0]:
        raise ShapeError(f"the connection table uses input map {top} but the input has "
                         f"{s['x'][0]} channels")
    for size, k in zip(s["x"][1:], pair(p["kernel_size"])):
        if size + 2 * p["padding"] < k:
            raise ShapeError(f"input: kernel {k} is larger than the padded input "
                             f"{fmt_shape(s['x'])}")
    return M.SparseConv2d(s["x"][0], table, pair(p["kernel_size"]), p["stride"], p["padding"])


def _table_macs(p, s, o):
    table = LENET5_C3_TABLE if p["table"] == [] else p["table"]
    k = pair(p["kernel_size"])
    out_hw = o[0][1] * o[0][2]
    return sum(len(r) for r in table) * k[0] * k[1] * out_hw


def _build_transposed(p, s):
    expect_rank(s["x"], (3,))
    _groups_ok(p, s["x"][0])
    for size, k, st, pad, op, d in zip(s["x"][1:], *(pair(p[n]) for n in (
            "kernel_size", "stride", "padding", "output_padding", "dilation"))):
        if (size - 1) * st - 2 * pad + d * (k - 1) + op + 1 < 1:
            raise ShapeError(f"input: padding {pad} crops away the whole output of the "
                             f"{fmt_shape(s['x'])} input")
    return nn.ConvTranspose2d(s["x"][0], p["filters"], pair(p["kernel_size"]), pair(p["stride"]),
                              pair(p["padding"]), pair(p["output_padding"]), p["groups"],
                              p["bias"], pair(p["dilation"]))


def _build_upsample(p, s):
    expect_rank(s["x"], (3,))
    return nn.Upsample(scale_factor=float(p["scale"]), mode=p["mode"],
                       align_corners=False if p["mode"] == "bilinear" else None)


register(
    LayerSpec(
        type="Conv1d", title="Convolution 1-D", category=CAT,
        doc="Slides filters along one axis of a (C, L) input: y[o, t] = b[o] + sum_{c,k} "
            "w[o, c, k] x[c, t*s + k*d]. On word vectors a width-2 filter sees every bigram.",
        inputs=(Port("x", FLOAT, ranks=(2,)),), params=conv_params(1, 16, 3),
        build=_build_conv(1), receptive=_receptive(1),
    ),
    LayerSpec(
        type="Conv2d", title="Convolution 2-D", category=CAT,
        doc="Slides filters over a (C, H, W) input, one feature map per filter: "
            "y[o, i, j] = b[o] + sum_{c,u,v} w[o, c, u, v] x[c, i*s + u*d, j*s + v*d]. "
            "A 1x1 convolution mixes channels per pixel.",
        inputs=(Port("x", FLOAT, ranks=(3,)),), params=conv_params(2),
        build=_build_conv(2), receptive=_receptive(2),
    ),
    LayerSpec(
        type="TableConv2d", title="Convolution 2-D (connection table)", category=CAT,
        doc="A 2-D convolution where output map o sees only the input maps listed in "
            "table[o] (LeNet-5's C3). An empty table means LeNet-5's C3 table (16 maps over 6).",
        inputs=(Port("x", FLOAT, ranks=(3,)),),
        params=(
            Param("table", "table", [], "input maps per output map; [] = LeNet-5 C3"),
            Param("kernel_size", "size", 5, "filter size", min=1, length=2),
            Param("stride", "int", 1, "step between filter positions", min=1),
            Param("padding", "int", 0, "zeros added on each side", min=0),
        ),
        build=_build_table_conv, macs=_table_macs,
        receptive=lambda p: {"kernel": pair(p["kernel_size"]), "stride": (p["stride"],) * 2,
                             "dilation": (1, 1), "padding": (p["padding"],) * 2},
    ),
    LayerSpec(
        type="LocallyConnected2d", title="Locally connected 2-D", category=CAT,
        doc="Like a 2-D convolution but with unshared weights: every output position has its "
            "own filters. Suits registered inputs such as aligned faces.",
        inputs=(Port("x", FLOAT, ranks=(3,)),),
        params=(
            Param("filters", "int", 8, "output channels", min=1),
            Param("kernel_size", "size", 3, "filter size", min=1, length=2),
            Param("stride", "size", 1, "step between positions", min=1, length=2),
            Param("padding", "size", 0, "zeros added on each side", min=0, length=2),
            Param("bias", "bool", True, "learn a bias per output unit"),
        ),
        build=_build_local,
        receptive=lambda p: {"kernel": pair(p["kernel_size"]), "stride": pair(p["stride"]),
                             "dilation": (1, 1), "padding": pair(p["padding"])},
    ),
    LayerSpec(
        type="ConvTranspose2d", title="Transposed convolution 2-D", category=CAT,
        doc="Learned up-sampling (the gradient of a convolution): each input pixel paints a "
            "filter-sized patch, stride s spreads them s pixels apart. "
            "H_out = (H - 1) s - 2 p + d (k - 1) + output_padding + 1.",
        inputs=(Port("x", FLOAT, ranks=(3,)),),
        params=conv_params(2, 8, 2)[:1] + (
            Param("kernel_size", "size", 2, "filter size", min=1, length=2),
            Param("stride", "size", 2, "up-sampling factor", min=1, length=2),
            Param("padding", "size", 0, "cropped from each side", min=0, length=2),
            Param("output_padding", "size", 0, "added to one side of the output", min=0, length=2),
            Param("dilation", "size", 1, "spacing between filter taps", min=1, length=2),
            Param("groups", "int", 1, "channel groups", min=1),
            Param("bias", "bool", True, "learn a bias per filter"),
        ),
        build=_build_transposed,
        check=lambda p: [("output_padding", "must be smaller than the stride or the dilation")]
        if any(op >= max(s, d) for op, s, d in zip(pair(p["output_padding"]), pair(p["stride"]),
                                                   pair(p["dilation"]))) else [],
    ),
    LayerSpec(
        type="Upsample2d", title="Up-sampling 2-D", category=CAT,
        doc="Fixed up-sampling of (C, H, W) by an integer factor: bilinear interpolation or "
            "nearest neighbour.",
        inputs=(Port("x", FLOAT, ranks=(3,)),),
        params=(
            Param("scale", "int", 2, "up-sampling factor", min=1, max=64),
            Param("mode", "choice", "bilinear", "interpolation", choices=("bilinear", "nearest")),
        ),
        build=_build_upsample,
        macs=lambda p, s, o: 0,
    ),
)
