"""Element-wise non-linearities and softmax."""
from __future__ import annotations

from ._lazy import nn

from ._lazy import M
from . import register
from .spec import FLOAT, LayerSpec, Param, Port

CAT = "Activation"


def _act(type_id, title, doc, build, params=()):
    return LayerSpec(type=type_id, title=title, category=CAT, doc=doc,
                     inputs=(Port("x", FLOAT),), params=params, build=build,
                     macs=lambda p, s, o: 0, same_shape=True)


register(
    _act("Identity", "Identity", "y = x.", lambda p, s: nn.Identity()),
    _act("Sign", "Step / sign", "y = +1 if x >= 0 else -1 (binary: 1 or 0). Its gradient is zero "
         "everywhere, which is why perceptrons are trained on the score instead.",
         lambda p, s: M.Sign(p["binary"]),
         (Param("binary", "bool", False, "output 1/0 instead of +1/-1"),)),
    _act("Sigmoid", "Sigmoid", "y = 1 / (1 + exp(-x)).", lambda p, s: nn.Sigmoid()),
    _act("Tanh", "Tanh", "y = tanh(x) = (e^x - e^-x) / (e^x + e^-x).", lambda p, s: nn.Tanh()),
    _act("ReLU", "ReLU", "y = max(0, x).", lambda p, s: nn.ReLU()),
    _act("LeakyReLU", "Leaky ReLU", "y = x if x > 0 else slope * x.",
         lambda p, s: nn.LeakyReLU(p["slope"]),
         (Param("slope", "float", 0.01, "slope for x < 0", min=0.0, max=1.0),)),
    _act("ELU", "ELU", "y = x if x > 0 else alpha (exp(x) - 1).",
         lambda p, s: nn.ELU(p["alpha"]),
         (Param("alpha", "float", 1.0, "saturation value for x -> -inf", min=0.0),)),
    _act("Softplus", "Softplus", "y = (1/beta) log(1 + exp(beta x)), a smooth ReLU.",
         lambda p, s: nn.Softplus(p["beta"]),
         (Param("beta", "float", 1.0, "sharpness", min=1e-6),)),
    _act("Probit", "Probit", "y = Phi(x), the standard normal CDF: (1 + erf(x / sqrt 2)) / 2.",
         lambda p, s: M.Probit()),
    _act("Softmax", "Softmax", "y_k = exp(x_k) / sum_j exp(x_j) over the last axis: "
         "probabilities that sum to one. (Cross-entropy takes logits: do not put softmax "
         "before it.)", lambda p, s: nn.Softmax(dim=-1)),
)
