"""ONNX operators that map to catalog nodes: one converter per operator type, in the
table ``OPS``. A converter gets the import state and the node, adds catalog nodes and
returns (node id, the ONNX value that node produces[, its port when not "out"]), or None
when it only aliases a value; it raises ValueError with the reason when the node does not map. Look-ahead
patterns (MatMul+Add -> Dense, AveragePool*k*w+b -> Subsample2d, (x-c)^2 summed -> RBF,
Mul+Add by scalars -> Scale) take the nodes they absorb out of the walk."""
from __future__ import annotations

from typing import Any, Callable

import torch

from .common import size, window
from .onnx_recurrent import last_step, recurrent

def _gemm(s, n, a, label):
    w = s.const(n.input[1])
    b = s.const(n.input[2]) if len(n.input) > 2 else None
    if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise ValueError("only Gemm(x, constant W, bias) with alpha=beta=1 maps to Dense")
    w = w if a.get("transB", 0) else w.t().contiguous()
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b.reshape(-1)
    return s.add(label, "Dense", {"units": w.shape[0], "bias": b is not None}, [n.input[0]],
                 weights), n.output[0]


def _matmul(s, n, a, label):
    if s.const(n.input[1]) is None:
        raise ValueError("MatMul of two computed tensors has no catalog equivalent")
    w = s.const(n.input[1]).t().contiguous()
    weights, out = {"weight": w}, n.output[0]
    nxt = s.only_consumer(out, "Add")
    if nxt is not None:
        other = [x for x in nxt.input if x != out]
        if other and s.const(other[0]) is not None and s.const(other[0]).numel() == w.shape[0]:
            weights["bias"] = s.const(other[0]).reshape(-1)
            out = s.absorb(nxt)
    return s.add(label, "Dense", {"units": w.shape[0], "bias": "bias" in weights}, [n.input[0]],
                 weights), out


def _conv(s, n, a, label):
    w = s.const(n.input[1])
    if w is None:
        raise ValueError("the weights are not a constant")
    nd = w.dim() - 2
    if nd not in (1, 2):
        raise ValueError(f"{nd}-D convolution has no catalog equivalent")
    pads = list(a.get("pads", [0] * (2 * nd)))
    if pads[:nd] != pads[nd:]:
        raise ValueError(f"asymmetric padding {pads} is not supported")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError("auto_pad is not supported")
    weights = {"weight": w}
    b = s.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
    if b is not None:
        weights["bias"] = b
    params = {"filters": w.shape[0], "kernel_size": size(list(w.shape[2:])),
              "stride": size(a.get("strides", [1] * nd)), "padding": size(pads[:nd]),
              "dilation": size(a.get("dilations", [1] * nd)),
              "groups": int(a.get("group", 1)), "bias": b is not None}
    return s.add(label, "Conv1d" if nd == 1 else "Conv2d", params, [n.input[0]], weights), n.output[0]


def _activation(type_: str, **param_attrs):
    def conv(s, n, a, label):
        params = {p: float(a.get(attr, default)) for p, (attr, default) in param_attrs.items()}
        return s.add(label, type_, params, [n.input[0]]), n.output[0]
    return conv


def _softmax(s, n, a, label):
    rank = len(s.shapes.get(n.input[0], [])) or None
    axis = a.get("axis", -1)
    if not (axis == -1 or (rank and axis == rank - 1)):
        raise ValueError(f"Softmax over axis {axis}: only the last axis maps")
    return s.add(label, "Softmax", {}, [n.input[0]]), n.output[0]


def _pool(s, n, a, label):
    k = list(a["kernel_shape"])
    nd = len(k)
    pads = list(a.get("pads", [0] * (2 * nd)))
    if pads[:nd] != pads[nd:] or a.get("ceil_mode", 0):
        raise ValueError("asymmetric padding or ceil_mode is not supported")
    avg = n.op_type == "AveragePool"
    if avg and any(pads) and not a.get("count_include_pad", 0):
        raise ValueError("padded average pooling without count_include_pad differs from the "
                         "catalog's")
    if not avg and any(d != 1 for d in a.get("dilations", [1] * nd)):
        raise ValueError("dilated max pooling is not supported")
    strides = list(a.get("strides", k))
    if avg and nd == 2 and k[0] == k[1] and strides == k and not any(pads):
        sub = _subsample(s, n, k[0], label)
        if sub is not None:
            return sub
    return s.add(label, "AvgPool" if avg else "MaxPool", window(k, strides, pads[:nd]),
                 [n.input[0]]), n.output[0]


def _subsample(s, n, k, label):
    """LeNet's trainable sub-sampling: AveragePool * k*k * w_c + b_c -> Subsample2d."""
    m1 = s.only_consumer(n.output[0], "Mul")
    m2 = m1 and s.only_consumer(m1.output[0], "Mul")
    add = m2 and s.only_consumer(m2.output[0], "Add")
    if add is None:
        return None
    k2, w = s.other_const(m1, n.output[0]), s.other_const(m2, m1.output[0])
    b = s.other_const(add, m2.output[0])
    if k2 is None or w is None or b is None or k2.numel() != 1 or float(k2) != k * k \
            or w.numel() != b.numel():
        return None
    for x in (m1, m2, add):
        out = s.absorb(x)
    return s.add(label, "Subsample2d", {"kernel_size": k}, [n.input[0]],
                 {"weight": w.reshape(-1), "bias": b.reshape(-1)}), out


def _gather(s, n, a, label):
    last = last_step(s, n, a)
    if last is not None:
        return last
    w = s.const(n.input[0])
    if w is None or a.get("axis", 0) != 0 or w.dim() != 2:
        raise ValueError("only Gather from a constant 2-D table (an embedding) maps")
    return s.add(label, "Embedding", {"num_embeddings": w.shape[0], "dim": w.shape[1]},
                 [n.input[1]], {"weight": w}), n.output[0]


def _global_max(s, n, a, label):
    nxt = s.only_consumer(n.output[0], "Flatten")
    if nxt is None or s.attrs(nxt).get("axis", 1) != 1:
        raise ValueError("GlobalMaxPool maps only when a Flatten follows")
    out = s.absorb(nxt)
    return s.add(label, "GlobalMaxPool", {}, [n.input[0]]), out


def _global_avg(s, n, a, label, keep_rank=None):
    """GlobalAveragePool (or a ReduceMean over the spatial axes): GlobalAvgPool, and a
    Reshape back to (C, 1, 1) where no flatten follows."""
    out = n.output[0]
    nid = s.add(label, "GlobalAvgPool", {}, [n.input[0]])
    nxt = s.consumers.get(out, [])
    if len(nxt) == 1 and nxt[0].op_type == "Flatten" and s.attrs(nxt[0]).get("axis", 1) == 1:
        return nid, s.absorb(nxt[0])
    if len(nxt) == 1 and nxt[0].op_type == "Reshape" and s.batch_flat(nxt[0].input[1]):
        return nid, s.absorb(nxt[0])
    shape = s.shapes.get(n.input[0], [])
    if len(shape) < 3 or shape[1] is None:
        raise ValueError("global average pooling without a following flatten needs a known "
                         "channel count")
    s.values[out + "#pooled"] = (nid, "out")
    return s.add(label + "_keepdims", "Reshape", {"shape": [shape[1]] + [1] * (len(shape) - 2)},
                 [out + "#pooled"]), out


def _reduce_mean(s, n, a, label):
    rank = len(s.shapes.get(n.input[0], []))
    axes = a.get("axes")
    if axes is None and len(n.input) > 1:
        axes = s.const(n.input[1]).tolist() if s.const(n.input[1]) is not None else None
    axes = sorted(x % rank for x in axes) if axes is not None and rank else None
    if rank < 3 or axes != list(range(2, rank)):
        raise ValueError(f"ReduceMean over axes {axes}: only the mean over all spatial axes "
                         "(global average pooling) maps")
    if not a.get("keepdims", 1):
        return s.add(label, "GlobalAvgPool", {}, [n.input[0]]), n.output[0]
    return _global_avg(s, n, a, label)


def _flatten(s, n, a, label):
    if a.get("axis", 1) != 1:
        raise ValueError("Flatten with axis other than 1 is not supported")
    return s.add(label, "Flatten", {}, [n.input[0]]), n.output[0]


def _reshape(s, n, a, label):
    if s.batch_flat(n.input[1]):
        return s.add(label, "Flatten", {}, [n.input[0]]), n.output[0]
    target = s.const(n.input[1])
    if target is None or not target.numel() or int(target[0]) not in (s.BATCH, 0) \
            or s.DYNAMIC in target.tolist():
        raise ValueError("only a Reshape that keeps the batch axis (and no dynamic axis) maps")
    return s.add(label, "Reshape", {"shape": [int(d) for d in target[1:]]}, [n.input[0]]), n.output[0]


def _concat(s, n, a, label):
    if len(n.input) == 1:
        return _alias(s, n, a, label)
    axis = a.get("axis")
    rank = len(s.shapes.get(n.input[0], []))
    if axis is not None and axis < 0 and rank:
        axis += rank
    if not axis:
        raise ValueError("concatenation along the batch axis is not supported")
    return s.add(label, "Concat", {"inputs": len(n.input), "axis": axis - 1}, list(n.input)), n.output[0]


def _binary(s, n, a, label):
    """Add/Mul of two computed tensors; by a constant: a Scale (one number, Mul then Add
    folded into one node) or a depthwise 1x1 convolution (one number per channel)."""
    consts = [x for x in n.input if s.const(x) is not None]
    if not consts:
        return s.add(label, "Add" if n.op_type == "Add" else "Multiply", {"inputs": 2},
                     list(n.input)), n.output[0]
    c = s.const(consts[0])
    x = next(v for v in n.input if v != consts[0])
    out = n.output[0]
    if c.numel() == 1:
        scale, shift = (float(c), 0.0) if n.op_type == "Mul" else (1.0, float(c))
        nxt = s.only_consumer(out, "Add") if n.op_type == "Mul" else None
        b = s.other_const(nxt, out) if nxt is not None else None
        if b is not None and b.numel() == 1:
            shift, out = float(b), s.absorb(nxt)
        return s.add(label, "Scale", {"scale": scale, "shift": shift}, [x],
                     {"scale": torch.tensor(scale), "shift": torch.tensor(shift)}), out
    shape = s.shapes.get(x, [])
    ch = shape[1] if len(shape) in (3, 4) else None
    per_channel = ch is not None and c.numel() == ch and (
        (c.dim() == len(shape) and c.shape[1] == ch) or (c.dim() == len(shape) - 1 and c.shape[0] == ch))
    if per_channel:
        conv = "Conv1d" if len(shape) == 3 else "Conv2d"
        one = [1] * (len(shape) - 2)
        w = c.reshape(ch, 1, *one) if n.op_type == "Mul" else torch.ones(ch, 1, *one)
        weights = {"weight": w.float()}
        if n.op_type == "Add":
            weights["bias"] = c.reshape(-1).float()
        return s.add(label, conv, {"filters": ch, "kernel_size": 1, "groups": ch,
                                   "bias": n.op_type == "Add"}, [x], weights), out
    raise ValueError(f"{n.op_type} with a constant of shape {tuple(c.shape)} has no catalog "
                     "equivalent (a single number or one per channel maps)")


def _batch_norm(s, n, a, label):
    sc, bi, mean, var = (s.const(x) for x in n.input[1:5])
    if any(t is None for t in (sc, bi, mean, var)):
        raise ValueError("batch-norm statistics are not constants")
    weights = {"weight": sc, "bias": bi, "running_mean": mean, "running_var": var,
               "num_batches_tracked": torch.tensor(0)}
    return s.add(label, "BatchNorm", {"eps": float(a.get("epsilon", 1e-5)),
                                      "momentum": round(1 - float(a.get("momentum", 0.9)), 6)},
                 [n.input[0]], weights), n.output[0]


def _transpose(s, n, a, label):
    perm = list(a.get("perm", []))
    moved = [i for i, p in enumerate(perm) if i != p]
    if len(moved) != 2 or 0 in moved:
        raise ValueError(f"Transpose perm={perm}: only swapping two non-batch axes maps")
    return s.add(label, "Transpose", {"axis1": moved[0] - 1, "axis2": moved[1] - 1},
                 [n.input[0]]), n.output[0]


def _unsqueeze(s, n, a, label):
    """(x.unsqueeze(-2) - centers)^2 summed over the last axis: radial-basis units (RBF)."""
    sub = s.only_consumer(n.output[0], "Sub")
    pw = sub and s.only_consumer(sub.output[0], "Pow")
    red = pw and s.only_consumer(pw.output[0], "ReduceSum")
    centers = s.const(sub.input[1]) if sub is not None and sub.input[0] == n.output[0] else None
    two = s.other_const(pw, sub.output[0]) if pw is not None else None
    if red is None or centers is None or centers.dim() != 2 or two is None or float(two) != 2:
        raise ValueError("Unsqueeze of a computed tensor maps only as part of radial-basis "
                         "units ((x - centers)^2 summed)")
    for x in (sub, pw, red):
        out = s.absorb(x)
    return s.add(label, "RBF", {"units": centers.shape[0]}, [n.input[0]],
                 {"centers": centers}), out


def _cast(s, n, a, label):
    import onnx

    shape_ok = n.input[0] in s.values
    if not shape_ok or a.get("to") != onnx.TensorProto.FLOAT or \
            s.elem_type(n.input[0]) not in (onnx.TensorProto.FLOAT, None):
        raise ValueError("only a Cast of a float tensor to float (a no-op) maps")
    return _alias(s, n, a, label)


def _alias(s, n, a, label):
    s.values[n.output[0]] = s.values[n.input[0]]
    return None


Converter = Callable[[Any, Any, dict, str], "tuple[str, str] | None"]
OPS: dict[str, Converter] = {
    "Gemm": _gemm, "MatMul": _matmul, "Conv": _conv,
    "Relu": _activation("ReLU"), "Sigmoid": _activation("Sigmoid"), "Tanh": _activation("Tanh"),
    "LeakyRelu": _activation("LeakyReLU", slope=("alpha", 0.01)),
    "Elu": _activation("ELU", alpha=("alpha", 1.0)), "Softplus": _activation("Softplus"),
    "Softmax": _softmax, "MaxPool": _pool, "AveragePool": _pool, "Gather": _gather,
    "GlobalMaxPool": _global_max, "GlobalAveragePool": _global_avg, "ReduceMean": _reduce_mean,
    "Flatten": _flatten, "Reshape": _reshape, "Concat": _concat, "Add": _binary, "Mul": _binary,
    "BatchNormalization": _batch_norm, "Transpose": _transpose, "Unsqueeze": _unsqueeze,
    "Identity": _alias, "Dropout": _alias, "Cast": _cast,
    "LSTM": recurrent, "GRU": recurrent, "RNN": recurrent,
}
