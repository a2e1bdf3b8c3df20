"""Affine layers: fully connected, perceptron, maxout, embedding, RBF units."""
from __future__ import annotations

from ._lazy import nn

from ._lazy import M
from . import register
from ._util import expect_rank
from .spec import FLOAT, INDEX, LayerSpec, Param, Port, ShapeError

CAT = "Dense"
RESET = lambda p: "reset"  # noqa: E731  position has no meaning after these layers


def _features(shape) -> int:
    expect_rank(shape, (1, 2, 3))
    return shape[-1]


# Dense's weight initialisations (runtime.catalog.modules.WEIGHT_INITS, which imports torch)
INITS = ("default", "identity", "xavier_uniform", "kaiming_normal", "orthogonal", "zeros")


def _build_dense(p, s):
    """nn.Linear, its weights then set by ``init`` (the module stays a plain nn.Linear:
    exported code builds nn.Linear and the exported weights carry the initialisation)."""
    features, init = _features(s["x"]), p.get("init", "default")
    if init == "identity" and features != p["units"]:
        raise ShapeError(f"init: identity needs a square weight matrix (units = input "
                         f"features), but units is {p['units']} and the input has {features} "
                         "features", param="init")
    linear = nn.Linear(features, p["units"], bias=p["bias"])
    return linear if init == "default" else M.init_linear_(linear, init)


register(
    LayerSpec(
        type="Dense", title="Fully connected", category=CAT,
        # (the palette's search reads this doc: the init choices are described on the
        # parameter, so that typing a layer's name does not find Dense first)
        doc="Affine map of the last axis: y = W x + b. On a sequence (T, D) it applies to "
            "every step with the same W.",
        inputs=(Port("x", FLOAT),),
        params=(
            Param("units", "int", 10, "output features", min=1),
            Param("bias", "bool", True, "learn the bias b"),
            Param("init", "choice", "default", "initial weights. default: torch's (uniform "
                  "in +-1/sqrt(fan_in), b too); identity: W = I, square layers only (units = "
                  "input features; on h_{t-1} of a hand-drawn ReLU cell it is the IRNN); "
                  "xavier_uniform (Glorot); kaiming_normal (He, for ReLU); orthogonal; zeros. "
                  "All but default set b = 0", choices=INITS),
        ),
        build=_build_dense,
        receptive=RESET,
    ),
    LayerSpec(
        type="Perceptron", title="Perceptron", category=CAT,
        doc="Rosenblatt's perceptron: score = w.x + b and label = sign(score) in {-1, +1}. "
            "Train the score with the perceptron criterion.",
        inputs=(Port("x", FLOAT),),
        outputs=(Port("score", FLOAT, "w.x + b"), Port("label", FLOAT, "sign of the score")),
        params=(Param("units", "int", 1, "number of perceptron units", min=1),),
        build=lambda p, s: M.Perceptron(_features(s["x"]), p["units"]),
        receptive=RESET,
    ),
    LayerSpec(
        type="Maxout", title="Maxout", category=CAT,
        doc="y_i = max(w_i1.x + b_i1, ..., w_ik.x + b_ik): each unit the max of k affine pieces.",
        inputs=(Port("x", FLOAT),),
        params=(
            Param("units", "int", 10, "output units", min=1),
            Param("pieces", "int", 2, "affine pieces k per unit", min=1),
        ),
        build=lambda p, s: M.Maxout(_features(s["x"]), p["units"], p["pieces"]),
        receptive=RESET,
    ),
    LayerSpec(
        type="Embedding", title="Embedding", category=CAT,
        doc="Looks up a learned vector per token id: (T) ids -> (T, dim). Equivalent to "
            "one-hot coding followed by a bias-free fully connected layer.",
        inputs=(Port("ids", INDEX),),
        params=(
            Param("num_embeddings", "int", 64, "vocabulary size", min=1),
            Param("dim", "int", 16, "vector size", min=1),
        ),
        build=lambda p, s: nn.Embedding(p["num_embeddings"], p["dim"]),
        macs=lambda p, s, o: 0,
    ),
    LayerSpec(
        type="OneHot", title="One-hot", category=CAT,
        doc="1-of-k coding: id c -> a vector of k zeros with a one at c.",
        inputs=(Port("ids", INDEX),),
        params=(Param("num_classes", "int", 10, "k, the number of classes", min=1),),
        build=lambda p, s: M.OneHot(p["num_classes"]),
    ),
    LayerSpec(
        type="RBF", title="RBF output units", category=CAT,
        doc="Radial-basis units (LeNet-5 output): y_i = sum_j (x_j - w_ij)^2, the squared "
            "distance of the input to a learned centre per unit. Small means 'close to class i'.",
        inputs=(Port("x", FLOAT),),
        params=(Param("units", "int", 10, "number of units (classes)", min=1),),
        build=lambda p, s: (expect_rank(s["x"], (1,)), M.RBF(s["x"][0], p["units"]))[1],
        # one multiplication (the square) per centre coordinate
        macs=lambda p, s, o: p["units"] * s["x"][0],
        receptive=RESET,
    ),
)
