"""PyTorch layers that map to catalog nodes: torch.nn classes by type, Netbuilder's own
layer classes by name (so a generated model.py imports back). Each converter returns
(node type, params) or raises ValueError with the reason."""
from __future__ import annotations

from typing import Callable

from torch import nn

from ...catalog import modules as M
from .common import size, window


def _conv(m):
    if isinstance(m.padding, str):
        raise ValueError(f"padding={m.padding!r} (a string) has no catalog equivalent; use numbers")
    if m.padding_mode != "zeros":
        raise ValueError(f"padding_mode={m.padding_mode!r} is not supported (zeros only)")
    t = "Conv1d" if isinstance(m, nn.Conv1d) else "Conv2d"
    return t, {"filters": m.out_channels, "kernel_size": size(m.kernel_size),
               "stride": size(m.stride), "padding": size(m.padding),
               "dilation": size(m.dilation), "groups": m.groups, "bias": m.bias is not None}


def _pool(kind):
    def conv(m):
        if getattr(m, "ceil_mode", False):
            raise ValueError("ceil_mode=True is not supported")
        if kind == "MaxPool" and size(m.dilation) != 1:
            raise ValueError("dilated max pooling is not supported")
        if kind == "AvgPool" and (not m.count_include_pad or m.divisor_override):
            raise ValueError("count_include_pad=False or divisor_override are not supported")
        stride = m.stride if m.stride is not None else m.kernel_size
        return kind, window(m.kernel_size, stride, m.padding)
    return conv



def _bn(m):
    if not m.track_running_stats:
        raise ValueError("track_running_stats=False is not supported")
    return "BatchNorm", {"eps": float(m.eps), "momentum": float(m.momentum or 0.1),
                         "affine": bool(m.affine)}


def _flatten(m):
    if (m.start_dim, m.end_dim) != (1, -1):
        raise ValueError(f"Flatten({m.start_dim}, {m.end_dim}): only Flatten(1, -1) maps")
    return "Flatten", {}


def _softmax(m):
    if m.dim not in (-1,):
        raise ValueError(f"Softmax(dim={m.dim}): only the last axis (dim=-1) maps")
    return "Softmax", {}


def _upsample(m):
    sf = m.scale_factor
    sf = sf[0] if isinstance(sf, tuple) else sf
    if m.size is not None or sf is None or float(sf) != int(sf) or m.mode not in ("bilinear", "nearest"):
        raise ValueError("only integer scale factors with bilinear or nearest mode map")
    if m.mode == "bilinear" and m.align_corners:
        raise ValueError("align_corners=True is not supported")
    return "Upsample2d", {"scale": int(sf), "mode": m.mode}


def _table(m):
    table = [[] for _ in range(m.out_channels)]
    for r, c in zip(m.rows.tolist(), m.cols.tolist()):
        table[r].append(c)
    from ...catalog.convolution import LENET5_C3_TABLE

    if table == LENET5_C3_TABLE:
        table = []
    return "TableConv2d", {"table": table, "kernel_size": size(m.kernel), "stride": m.stride,
                           "padding": m.padding}


def _recurrent(m):
    if not m.batch_first:
        raise ValueError("batch_first=False: the catalog's recurrent layers take (N, T, D); "
                         "construct it with batch_first=True")
    if not m.bias or getattr(m, "proj_size", 0):
        raise ValueError("bias=False or proj_size has no catalog equivalent")
    kind = {nn.LSTM: "LSTM", nn.GRU: "GRU", nn.RNN: "RNN"}[type(m)]
    params = {"hidden_size": m.hidden_size, "num_layers": m.num_layers,
              "bidirectional": bool(m.bidirectional), "dropout": float(m.dropout),
              "return_sequences": True, "_weights_prefix": "rnn."}
    if kind == "RNN":
        params["nonlinearity"] = m.nonlinearity
    return kind, params


TORCH_MODULES: dict[type, Callable] = {
    nn.Linear: lambda m: ("Dense", {"units": m.out_features, "bias": m.bias is not None}),
    nn.Conv1d: _conv, nn.Conv2d: _conv,
    nn.ConvTranspose2d: lambda m: ("ConvTranspose2d", {
        "filters": m.out_channels, "kernel_size": size(m.kernel_size), "stride": size(m.stride),
        "padding": size(m.padding), "output_padding": size(m.output_padding),
        "dilation": size(m.dilation), "groups": m.groups, "bias": m.bias is not None}),
    nn.MaxPool1d: _pool("MaxPool"), nn.MaxPool2d: _pool("MaxPool"),
    nn.AvgPool1d: _pool("AvgPool"), nn.AvgPool2d: _pool("AvgPool"),
    nn.ReLU: lambda m: ("ReLU", {}), nn.Sigmoid: lambda m: ("Sigmoid", {}),
    nn.Tanh: lambda m: ("Tanh", {}), nn.Identity: lambda m: ("Identity", {}),
    nn.LeakyReLU: lambda m: ("LeakyReLU", {"slope": float(m.negative_slope)}),
    nn.ELU: lambda m: ("ELU", {"alpha": float(m.alpha)}),
    nn.Softplus: lambda m: ("Softplus", {"beta": float(m.beta)}),
    nn.Softmax: _softmax,
    nn.BatchNorm1d: _bn, nn.BatchNorm2d: _bn,
    nn.Dropout: lambda m: ("Dropout", {"p": float(m.p), "mode": "element"}),
    nn.Dropout1d: lambda m: ("Dropout", {"p": float(m.p), "mode": "channel"}),
    nn.Dropout2d: lambda m: ("Dropout", {"p": float(m.p), "mode": "channel"}),
    nn.Flatten: _flatten,
    nn.Embedding: lambda m: ("Embedding", {"num_embeddings": m.num_embeddings,
                                           "dim": m.embedding_dim}),
    nn.Upsample: _upsample,
    nn.LSTM: _recurrent, nn.GRU: _recurrent, nn.RNN: _recurrent,
    nn.LocalResponseNorm: lambda m: ("LocalResponseNorm", {"size": m.size, "alpha": float(m.alpha),
                                                           "beta": float(m.beta), "k": float(m.k)}),
}


def _split(m):
    if len(set(m.sizes)) != 1:
        raise ValueError("only equal parts map to Split")
    return "Split", {"parts": len(m.sizes), "axis": m.dim - 1}


# Netbuilder's own layer classes (runtime/catalog/modules.py), matched by class name so
# the copies inside a generated model.py import back.
CATALOG_MODULES: dict[str, Callable] = {
    "Add": lambda m: ("Add", {}), "Multiply": lambda m: ("Multiply", {}),
    "Concat": lambda m: ("Concat", {"axis": m.dim - 1}),
    "OneMinus": lambda m: ("OneMinus", {}),
    "Scale": lambda m: ("Scale", {"scale": float(m.scale), "shift": float(m.shift),
                                  "learnable": isinstance(m.scale, nn.Parameter)}),
    "Split": _split,
    "Reshape": lambda m: ("Reshape", {"shape": list(m.shape)}),
    "Transpose": lambda m: ("Transpose", {"axis1": m.dim0 - 1, "axis2": m.dim1 - 1}),
    "OneHot": lambda m: ("OneHot", {"num_classes": m.num_classes}),
    "Sign": lambda m: ("Sign", {"binary": bool(m.binary)}),
    "Probit": lambda m: ("Probit", {}),
    "Maxout": lambda m: ("Maxout", {"units": m.units, "pieces": m.pieces}),
    "Perceptron": lambda m: ("Perceptron", {"units": m.linear.out_features}),
    "RBF": lambda m: ("RBF", {"units": m.centers.shape[0]}),
    "SumPool": lambda m: ("SumPool", window(m.kernel, m.stride, m.padding)),
    "AdaptiveAvgPool": lambda m: ("AdaptiveAvgPool", {"output_size": list(m.size)}),
    "L2Pool": lambda m: ("L2Pool", window(m.kernel, m.stride, m.padding)),
    "GlobalAvgPool": lambda m: ("GlobalAvgPool", {}),
    "SpatialPyramidPool": lambda m: ("SpatialPyramidPool", {"levels": list(m.levels)}),
    "Subsample2d": lambda m: ("Subsample2d", {"kernel_size": m.kernel}),
    "LocallyConnected2d": lambda m: ("LocallyConnected2d", {
        "filters": m.weight.shape[1], "kernel_size": size(m.kernel), "stride": size(m.stride),
        "padding": size(m.padding), "bias": m.bias is not None}),
    "SparseConv2d": _table,
    "SquaredError": lambda m: ("SquaredError", {}),
    "CrossEntropy": lambda m: ("CrossEntropy", {"label_smoothing": float(m.label_smoothing)}),
    "BinaryCrossEntropy": lambda m: ("BinaryCrossEntropy", {"from_logits": bool(m.from_logits)}),
    "MulticlassHinge": lambda m: ("MulticlassHinge", {"margin": float(m.margin)}),
    "PerceptronCriterion": lambda m: ("PerceptronCriterion", {}),
    "TripletLoss": lambda m: ("TripletLoss", {"margin": float(m.margin)}),
}
CATALOG_MODULES = {k: v for k, v in CATALOG_MODULES.items() if hasattr(M, k)}


def _is_global_max_pool(m: nn.Module) -> bool:
    if type(m) is not nn.Sequential or len(m) != 3:
        return False
    a, b, c = m
    return (isinstance(a, nn.Flatten) and a.start_dim == 2 and isinstance(b, nn.AdaptiveMaxPool1d)
            and b.output_size in (1, (1,)) and isinstance(c, nn.Flatten) and c.start_dim == 1)


def module_converter(m: nn.Module):
    conv = TORCH_MODULES.get(type(m))
    if conv is not None:
        return conv
    name = type(m).__name__
    if name in CATALOG_MODULES and type(m).__module__ != "torch.nn":
        return CATALOG_MODULES[name]
    if _is_global_max_pool(m):
        return lambda m: ("GlobalMaxPool", {})
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)) and \
            m.output_size in (1, (1,), (1, 1)):
        return lambda m: ("GlobalAvgPool", {"_keepdims": 1 if isinstance(m, nn.AdaptiveAvgPool1d) else 2})
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        return _adaptive_avg_pool
    return None


def _adaptive_avg_pool(m):
    size = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,)
    if any(s is None for s in size):
        raise ValueError("an output size of None (keep that axis) is not supported")
    n = 1 if isinstance(m, nn.AdaptiveAvgPool1d) else 2
    size = tuple(size) * (n if len(size) == 1 else 1)
    return ("AdaptiveAvgPool", {"output_size": list(size)})
