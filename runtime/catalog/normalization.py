"""Normalisation and regularising layers: batch norm, local response norm, dropout."""
from __future__ import annotations

from ._lazy import nn

from . import register
from ._util import expect_rank
from .spec import FLOAT, LayerSpec, Param, Port

CAT = "Normalization"


def _build_bn(p, s):
    expect_rank(s["x"], (1, 2, 3))
    cls = nn.BatchNorm2d if len(s["x"]) == 3 else nn.BatchNorm1d
    return cls(s["x"][0], eps=p["eps"], momentum=p["momentum"], affine=p["affine"])


def _build_dropout(p, s):
    if p["mode"] == "channel":
        expect_rank(s["x"], (2, 3))
        return (nn.Dropout1d if len(s["x"]) == 2 else nn.Dropout2d)(p["p"])
    return nn.Dropout(p["p"])


register(
    LayerSpec(
        type="BatchNorm", title="Batch normalisation", category=CAT,
        doc="Per channel: x^ = (x - mean) / sqrt(var + eps) over the mini-batch (running "
            "averages in evaluation), then y = gamma x^ + beta with learned gamma, beta. "
            "Channel = the first axis of (C), (C, L) or (C, H, W).",
        inputs=(Port("x", FLOAT, ranks=(1, 2, 3)),),
        params=(
            Param("eps", "float", 1e-5, "added to the variance", min=0.0),
            Param("momentum", "float", 0.1, "running-average update rate", min=0.0, max=1.0),
            Param("affine", "bool", True, "learn gamma and beta"),
        ),
        build=_build_bn, macs=lambda p, s, o: 0, same_shape=True,
    ),
    LayerSpec(
        type="LocalResponseNorm", title="Local response normalisation", category=CAT,
        doc="AlexNet's LRN: b_c = a_c / (k + alpha/n sum_{c' near c} a_{c'}^2)^beta over n "
            "neighbouring channels.",
        inputs=(Port("x", FLOAT, ranks=(2, 3)),),
        params=(
            Param("size", "int", 5, "neighbouring channels n", min=1),
            Param("alpha", "float", 1e-4, "scale", min=0.0),
            Param("beta", "float", 0.75, "exponent", min=0.0),
            Param("k", "float", 2.0, "additive constant", min=0.0),
        ),
        build=lambda p, s: (expect_rank(s["x"], (2, 3)),
                            nn.LocalResponseNorm(p["size"], p["alpha"], p["beta"], p["k"]))[1],
        macs=lambda p, s, o: 0, same_shape=True,
    ),
    LayerSpec(
        type="Dropout", title="Dropout", category=CAT,
        doc="While training, zeroes each unit with probability p and scales the rest by "
            "1/(1-p); in evaluation passes everything (inverted dropout). mode=channel drops "
            "whole feature maps.",
        inputs=(Port("x", FLOAT),),
        params=(
            Param("p", "float", 0.5, "drop probability", min=0.0, max=1.0),
            Param("mode", "choice", "element", "drop single units or whole channels",
                  choices=("element", "channel")),
        ),
        build=_build_dropout,
        check=lambda p: [("p", "must be below 1 (p = 1 drops everything)")] if p["p"] >= 1 else [],
        macs=lambda p, s, o: 0, same_shape=True,
    ),
)
