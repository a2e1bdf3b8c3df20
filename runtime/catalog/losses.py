"""Loss nodes: a prediction input and a target input (the triplet loss takes three
embeddings), one scalar output. Training minimises the sum of all loss nodes."""
from __future__ import annotations

from ._lazy import M
from . import register
from ._util import fmt_shape
from .spec import FLOAT, INDEX, LayerSpec, Param, Port, ShapeError

CAT = "Loss"


def _same(s):
    if tuple(s["pred"]) != tuple(s["target"]):
        raise ShapeError(f"target: expected {fmt_shape(s['pred'])} (the prediction's shape), "
                         f"received {fmt_shape(s['target'])}")


def _classes(s):
    pred, target = tuple(s["pred"]), tuple(s["target"])
    if not pred:
        raise ShapeError("pred: expected class scores (C) per sample, received a scalar")
    if target != pred[:-1]:
        raise ShapeError(f"target: expected class ids of shape {fmt_shape(pred[:-1])} for "
                         f"scores {fmt_shape(pred)}, received {fmt_shape(target)}")


def _loss(type_id, title, doc, build, target_kind=FLOAT, params=(), inputs=None):
    ins = inputs or (Port("pred", FLOAT, "the network's prediction"),
                     Port("target", target_kind, "the label", role="target"))
    return LayerSpec(type=type_id, title=title, category=CAT, doc=doc, inputs=ins,
                     outputs=(Port("loss", FLOAT, "scalar loss"),), params=params,
                     build=build, is_loss=True, macs=lambda p, s, o: 0)


register(
    _loss("SquaredError", "Squared error",
          "E = 1/2 sum_k (y_k - t_k)^2 per sample, averaged over the batch (regression).",
          lambda p, s: (_same(s), M.SquaredError())[1]),
    _loss("CrossEntropy", "Softmax cross-entropy",
          "E = -log p(y = c | x) with p = softmax(scores); takes raw scores (logits) and "
          "class ids; over a sequence it averages every step.",
          lambda p, s: (_classes(s), M.CrossEntropy(p["label_smoothing"], p["ignore_index"]))[1],
          target_kind=INDEX,
          params=(Param("label_smoothing", "float", 0.0, "mix this much of the uniform "
                        "distribution into the targets", min=0.0, max=1.0),
                  Param("ignore_index", "int", -1, "a padding class id: targets equal to it "
                        "count neither in the loss nor in accuracy (-1: none)", min=-1))),
    _loss("BinaryCrossEntropy", "Binary cross-entropy",
          "E = -sum_k t_k log f_k + (1 - t_k) log(1 - f_k) with targets in [0, 1]; with "
          "from_logits f = sigmoid(pred), computed stably.",
          lambda p, s: (_same(s), M.BinaryCrossEntropy(p["from_logits"]))[1],
          params=(Param("from_logits", "bool", True, "prediction is a pre-sigmoid score"),)),
    _loss("MulticlassHinge", "Multi-class hinge",
          "E = sum_{j != y} max(0, s_j - s_y + margin) (the multi-class SVM loss).",
          lambda p, s: (_classes(s), M.MulticlassHinge(p["margin"]))[1], target_kind=INDEX,
          params=(Param("margin", "float", 1.0, "required gap between scores", min=0.0),)),
    _loss("PerceptronCriterion", "Perceptron criterion",
          "E = sum_i max(0, -t_i f(x_i)) with t in {-1, +1}: only misclassified samples count.",
          lambda p, s: (_same(s), M.PerceptronCriterion())[1]),
    _loss("TripletLoss", "Triplet loss",
          "E = [||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha]_+: the anchor must be closer "
          "to the positive than to the negative by the margin alpha.",
          lambda p, s: (_triplet(s), M.TripletLoss(p["margin"]))[1],
          params=(Param("margin", "float", 1.0, "alpha", min=0.0),),
          inputs=(Port("anchor", FLOAT), Port("positive", FLOAT), Port("negative", FLOAT))),
)


def _triplet(s):
    a = tuple(s["anchor"])
    for n in ("positive", "negative"):
        if tuple(s[n]) != a:
            raise ShapeError(f"{n}: expected {fmt_shape(a)} (the anchor's shape), received "
                             f"{fmt_shape(s[n])}")
