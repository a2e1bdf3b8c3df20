"""Import a PyTorch ``nn.Module`` (by torch.fx symbolic tracing) or an ONNX file into an
editable graph document, with its weights, when its layers map to the catalog.

Whatever cannot be mapped is reported (node and reason) rather than guessed; the
partial document is still returned so the caller can show it.

Importing a *Python file* executes that file: it is explicit and user-initiated, like
running it. Importing ONNX reads a protobuf and never runs code.
"""
from __future__ import annotations

import importlib.util
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..catalog import modules as M
from ..graph import RESERVED_IDS, GraphDocument


DEFAULT_STEPS = 16


class ImportError_(Exception):
    """The file or module cannot be imported at all (plain message)."""


@dataclass
class ImportProblem:
    node: str  # the name in the source model (fx node or ONNX node)
    reason: str

    def __str__(self) -> str:
        return f"{self.node}: {self.reason}"


@dataclass
class ImportResult:
    doc: GraphDocument
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # by node id: "fc1.weight"
    problems: list[ImportProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None  # imported graph vs the source, when checked

    @property
    def complete(self) -> bool:
        return not self.problems


def verify_import(res: ImportResult, run_source: Callable, what: str) -> None:
    """Compile the imported graph with its weights and compare it with the source model
    (``run_source(inputs) -> outputs``) at two batch sizes; records the difference or a
    problem."""
    if res.problems:
        return
    from .core import ExportError, _cases, compare, prepare, reference

    try:
        p = prepare(res.doc, res.weights, weights_source="imported weights")
        worst = 0.0
        for name, xs in _cases(p, seq=False):
            with torch.no_grad():
                got = run_source(xs)
            worst = max(worst, compare(reference(p, xs), got, f"imported graph vs {what} at {name}"))
        res.max_abs_diff = worst
        res.notes.append(f"the imported graph matches {what}: max abs diff {worst:.3g}")
    except ExportError as exc:
        res.problems.append(ImportProblem("(whole model)", str(exc)))
    except Exception as exc:
        res.problems.append(ImportProblem("(whole model)", f"the imported graph does not run: "
                                                           f"{_first_line(exc)}"))


# ---- inputs ---------------------------------------------------------------------------


def _input_node(doc: GraphDocument, nid: str, spec: dict, pos) -> None:
    shape = list(spec["shape"])
    if spec.get("role") == "target":
        kind = "class" if spec.get("dtype") == "int64" else "value"
        params = {"kind": kind, "shape": shape}
        if kind == "class":
            params["num_classes"] = int(spec.get("high", 10))
        doc.add_node("Target", params, node_id=nid, position=pos)
    elif spec.get("dtype") == "int64":
        doc.add_node("TokenInput", {"steps": shape[0], "vocab_size": int(spec.get("high", 64))},
                     node_id=nid, position=pos)
    elif len(shape) == 1:
        doc.add_node("VectorInput", {"features": shape[0]}, node_id=nid, position=pos)
    elif len(shape) == 2:
        doc.add_node("SequenceInput", {"steps": shape[0], "features": shape[1]}, node_id=nid,
                     position=pos)
    elif len(shape) == 3:
        doc.add_node("ImageInput", {"channels": shape[0], "height": shape[1], "width": shape[2]},
                     node_id=nid, position=pos)
    else:
        raise ValueError(f"input {nid}: per-sample shape {tuple(shape)} has no input node "
                         "(expected (D), (T, D) or (C, H, W))")


class _Ids:
    def __init__(self):
        self.used: set[str] = set()

    def make(self, name: str) -> str:
        s = re.sub(r"\W", "_", str(name)).strip("_") or "node"
        if not re.match(r"[A-Za-z_]", s):
            s = "n_" + s
        if s in RESERVED_IDS:
            s += "_"
        base, i = s, 1
        while s in self.used:
            i += 1
            s = f"{base}_{i}"
        self.used.add(s)
        return s


# ---- PyTorch modules ------------------------------------------------------------------

# class name -> converter(module) -> (type, params) or raises ValueError(reason)
def _size(v):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    return list(v) if len(set(v)) > 1 else int(v[0])


def _conv(m):
    if isinstance(m.padding, str):
        raise ValueError(f"padding={m.padding!r} (a string) has no catalog equivalent; use numbers")
    if m.padding_mode != "zeros":
        raise ValueError(f"padding_mode={m.padding_mode!r} is not supported (zeros only)")
    t = "Conv1d" if isinstance(m, nn.Conv1d) else "Conv2d"
    return t, {"filters": m.out_channels, "kernel_size": _size(m.kernel_size),
               "stride": _size(m.stride), "padding": _size(m.padding),
               "dilation": _size(m.dilation), "groups": m.groups, "bias": m.bias is not None}


def _pool(kind):
    def conv(m):
        if getattr(m, "ceil_mode", False):
            raise ValueError("ceil_mode=True is not supported")
        if kind == "MaxPool" and _size(m.dilation) != 1:
            raise ValueError("dilated max pooling is not supported")
        if kind == "AvgPool" and (not m.count_include_pad or m.divisor_override):
            raise ValueError("count_include_pad=False or divisor_override are not supported")
        stride = m.stride if m.stride is not None else m.kernel_size
        return kind, _window(m.kernel_size, stride, m.padding)
    return conv


def _window(kernel, stride, padding) -> dict:
    """Pooling parameters; a stride equal to the window is written 0 (the catalog default)."""
    k, s = _size(kernel), _size(stride)
    return {"kernel_size": k, "stride": 0 if s == k else s, "padding": _size(padding)}


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
    from ..catalog.convolution import LENET5_C3_TABLE

    if table == LENET5_C3_TABLE:
        table = []
    return "TableConv2d", {"table": table, "kernel_size": _size(m.kernel), "stride": m.stride,
                           "padding": m.padding}


TORCH_MODULES: dict[type, Callable] = {
    nn.Linear: lambda m: ("Dense", {"units": m.out_features, "bias": m.bias is not None}),
    nn.Conv1d: _conv, nn.Conv2d: _conv,
    nn.ConvTranspose2d: lambda m: ("ConvTranspose2d", {
        "filters": m.out_channels, "kernel_size": _size(m.kernel_size), "stride": _size(m.stride),
        "padding": _size(m.padding), "output_padding": _size(m.output_padding),
        "dilation": _size(m.dilation), "groups": m.groups, "bias": m.bias is not None}),
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
    "SumPool": lambda m: ("SumPool", _window(m.kernel, m.stride, m.padding)),
    "L2Pool": lambda m: ("L2Pool", _window(m.kernel, m.stride, m.padding)),
    "GlobalAvgPool": lambda m: ("GlobalAvgPool", {}),
    "SpatialPyramidPool": lambda m: ("SpatialPyramidPool", {"levels": list(m.levels)}),
    "Subsample2d": lambda m: ("Subsample2d", {"kernel_size": m.kernel}),
    "LocallyConnected2d": lambda m: ("LocallyConnected2d", {
        "filters": m.weight.shape[1], "kernel_size": _size(m.kernel), "stride": _size(m.stride),
        "padding": _size(m.padding), "bias": m.bias is not None}),
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


def _module_converter(m: nn.Module):
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
    return None


class _Tracer(fx.Tracer):
    """Keeps known layers (torch.nn and Netbuilder's own classes) as single calls."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if _module_converter(m) is not None:
            return True
        return super().is_leaf_module(m, qualname)


_ACT_FUNCS = {
    F.relu: "ReLU", torch.relu: "ReLU", torch.sigmoid: "Sigmoid", F.sigmoid: "Sigmoid",
    torch.tanh: "Tanh", F.tanh: "Tanh",
}
_ACT_METHODS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}


class _Objective(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args):  # replaced per signature below
        raise NotImplementedError


def import_module(model: nn.Module, inputs: dict[str, dict] | None = None, *,
                  name: str | None = None, method: str = "forward",
                  targets: dict[str, dict] | None = None) -> ImportResult:
    """Trace ``model`` and build a graph document from its layers.

    ``inputs``: per forward argument, ``{"shape": [per-sample dims], "dtype": "float32" |
    "int64", "high": vocab}``. A generated model.py carries INPUTS/TARGETS itself.
    ``method="compute_losses"`` also imports the loss nodes (generated code).
    """
    inputs = dict(inputs or {})
    targets = dict(targets or {})
    tracer = _Tracer()
    root = model
    if method != "forward":
        fn = getattr(model, method)
        import inspect

        params = list(inspect.signature(fn).parameters)
        if not all(p.isidentifier() for p in params):
            raise ImportError_(f"{method} has unusual parameters {params}")
        code = f"def forward(self, {', '.join(params)}):\n    return self.model.{method}({', '.join(params)})\n"
        ns: dict[str, Any] = {}
        exec(compile(code, "<objective>", "exec"), ns)  # our own two lines of code
        cls = type("Objective", (_Objective,), {"forward": ns["forward"]})
        root = cls(model)
    try:
        graph = tracer.trace(root)
    except Exception as exc:
        raise ImportError_(f"torch.fx cannot trace {type(model).__name__}.{method}: "
                           f"{_first_line(exc)} (data-dependent control flow is not supported)"
                           ) from None
    gm = fx.GraphModule(root, graph)
    prefix = "model." if root is not model else ""
    doc = GraphDocument(name or type(model).__name__)
    res = ImportResult(doc)
    ids = _Ids()
    values: dict[fx.Node, tuple[str, str]] = {}  # fx value -> (node id, port)
    pending_getitem: dict[fx.Node, tuple[str, list[str]]] = {}
    failed: set = set()
    i = 0

    def pos():
        nonlocal i
        i += 1
        return (0.0, 90.0 * i)

    def src(a, where: str):
        if not isinstance(a, fx.Node) or a not in values:
            raise ValueError(f"{where}: its input {a} was not imported")
        return values[a]

    def add(nodename: str, type_: str, params: dict, args: list, module: nn.Module | None = None,
            node_id: str | None = None):
        nid = node_id or ids.make(nodename)
        doc.add_node(type_, params, node_id=nid, position=pos())
        spec = doc.nodes[nid].spec
        ports = spec.input_ports(doc.nodes[nid].params)
        if len(args) > len(ports):
            raise ValueError(f"{len(args)} inputs for {type_}, which takes {len(ports)}")
        for port, a in zip(ports, args):
            s, sp = src(a, nodename)
            doc.connect(s, sp, nid, port.name)
        if module is not None:
            for k, v in module.state_dict().items():
                res.weights[f"{nid}.{k}"] = v.detach().clone()
        outs = spec.output_ports(doc.nodes[nid].params)
        return nid, outs

    flat_skip: set = set()
    for n in gm.graph.nodes:
        if n in flat_skip:
            continue
        if any(isinstance(a, fx.Node) and a in failed for a in n.all_input_nodes):
            failed.add(n)  # downstream of a part already reported
            continue
        try:
            if n.op == "placeholder":
                spec = inputs.get(n.target) or targets.get(n.target)
                if spec is None:
                    raise ValueError("no shape given for this input (pass its per-sample shape)")
                spec = dict(spec)
                if n.target in targets:
                    spec["role"] = "target"
                nid = ids.make(n.target)
                _input_node(doc, nid, spec, pos())
                values[n] = (nid, "out")
            elif n.op == "call_module":
                m = gm.get_submodule(n.target)
                conv = _module_converter(m)
                if conv is None:
                    raise ValueError(f"{type(m).__name__} has no catalog equivalent")
                type_, params = conv(m)
                keep = params.pop("_keepdims", 0)
                if type_ in ("Add", "Multiply", "Concat"):
                    params["inputs"] = len(n.args)
                target = n.target[len(prefix):] if n.target.startswith(prefix) else n.target
                nid, outs = add(target.replace(".", "_"), type_, params, list(n.args), m)
                if keep:  # adaptive pooling to 1 keeps the spatial axes: (N, C, 1, 1)
                    values[n] = (nid, outs[0].name)
                    users = list(n.users)
                    if len(users) == 1 and _is_flatten1(users[0]):
                        flat_skip.add(users[0])
                        values[users[0]] = (nid, outs[0].name)
                    else:
                        res.notes.append(f"{n.name}: pooled to (C, 1, 1) with a Reshape")
                        ch = _channels_before(gm, n)
                        if ch is None:
                            raise ValueError("adaptive pooling without a following flatten needs a known channel count")
                        rid, routs = add(target.replace(".", "_") + "_keepdims", "Reshape",
                                         {"shape": [ch] + [1] * keep}, [n])
                        values[n] = (rid, routs[0].name)
                elif len(outs) == 1:
                    values[n] = (nid, outs[0].name)
                else:
                    pending_getitem[n] = (nid, [p.name for p in outs])
            elif n.op == "call_function" and n.target is operator.getitem and n.args[0] in pending_getitem:
                nid, ports = pending_getitem[n.args[0]]
                values[n] = (nid, ports[n.args[1]])
            elif n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[0], fx.Node) \
                    and n.args[0].op == "call_module":
                raise ValueError("indexes a layer output")
            elif n.op == "call_function" and n.target is operator.add and all(
                    isinstance(a, fx.Node) and a in values and doc.nodes[values[a][0]].spec.is_loss
                    for a in n.args):
                values[n] = values[n.args[0]]  # the implicit sum of the losses
            elif n.op in ("call_function", "call_method"):
                _import_function(n, add, values, res)
            elif n.op == "output":
                _import_output(n.args[0], doc, values, ids, res, pos)
            elif n.op == "get_attr":
                raise ValueError(f"uses the tensor self.{n.target} directly (not a layer)")
        except ValueError as exc:
            failed.add(n)
            res.problems.append(ImportProblem(n.name, str(exc)))
        except Exception as exc:  # a GraphError etc.: still reported, never raised
            failed.add(n)
            res.problems.append(ImportProblem(n.name, _first_line(exc)))
    return res


def _is_flatten1(n: fx.Node) -> bool:
    if n.op == "call_function" and n.target is torch.flatten:
        return _flat_args(list(n.args), dict(n.kwargs)) == (1, -1)
    if n.op == "call_method" and n.target == "flatten":
        return _flat_args(list(n.args), dict(n.kwargs)) == (1, -1)
    return False


def _channels_before(gm: fx.GraphModule, n: fx.Node):
    """The channel count feeding ``n`` when an earlier layer states it."""
    cur = n.args[0] if n.args else None
    while isinstance(cur, fx.Node):
        if cur.op == "call_module":
            m = gm.get_submodule(cur.target)
            for attr in ("out_channels", "num_features"):
                if hasattr(m, attr):
                    return int(getattr(m, attr))
        cur = cur.args[0] if cur.args else None
    return None


def _const_args(n: fx.Node) -> bool:
    return not any(isinstance(a, fx.Node) for a in n.args[1:])


def _import_function(n: fx.Node, add, values, res) -> None:
    t = n.target
    name = n.name
    args = list(n.args)
    kw = dict(n.kwargs)
    if n.op == "call_function" and t in _ACT_FUNCS:
        nid, outs = add(name, _ACT_FUNCS[t], {}, [args[0]])
    elif n.op == "call_method" and t in _ACT_METHODS and len(args) == 1:
        nid, outs = add(name, _ACT_METHODS[t], {}, [args[0]])
    elif t in (operator.add, torch.add, "add") and all(isinstance(a, fx.Node) for a in args[:2]) \
            and len(args) == 2 and not kw:
        nid, outs = add(name, "Add", {"inputs": 2}, args)
    elif t in (operator.mul, torch.mul, "mul") and all(isinstance(a, fx.Node) for a in args[:2]) \
            and len(args) == 2 and not kw:
        nid, outs = add(name, "Multiply", {"inputs": 2}, args)
    elif t is torch.cat:
        xs = args[0]
        dim = kw.get("dim", args[1] if len(args) > 1 else 0)
        if not isinstance(dim, int) or dim == 0:
            raise ValueError(f"torch.cat along dim {dim}: only non-batch dims map to Concat")
        axis = dim - 1 if dim > 0 else dim
        nid, outs = add(name, "Concat", {"inputs": len(xs), "axis": axis}, list(xs))
    elif (t is torch.flatten or t == "flatten") and _flat_args(args, kw) == (1, -1):
        nid, outs = add(name, "Flatten", {}, [args[0]])
    elif t in ("view", "reshape") and len(args) == 3 and args[2] == -1 and \
            isinstance(args[1], fx.Node) and args[1].op == "call_method" and \
            args[1].target == "size" and args[1].args[1:] == (0,):
        nid, outs = add(name, "Flatten", {}, [args[0]])
    elif t == "size" and n.op == "call_method":
        return  # consumed by the view/reshape pattern above
    elif t in (F.softmax, torch.softmax, "softmax") and kw.get("dim", args[1] if len(args) > 1 else None) == -1:
        nid, outs = add(name, "Softmax", {}, [args[0]])
    elif t is F.dropout:
        p = kw.get("p", args[1] if len(args) > 1 else 0.5)
        nid, outs = add(name, "Dropout", {"p": float(p)}, [args[0]])
    elif t is F.leaky_relu:
        slope = kw.get("negative_slope", args[1] if len(args) > 1 else 0.01)
        nid, outs = add(name, "LeakyReLU", {"slope": float(slope)}, [args[0]])
    elif t in (F.max_pool2d, F.max_pool1d, F.avg_pool2d, F.avg_pool1d) and _const_args(n):
        k = kw.get("kernel_size", args[1] if len(args) > 1 else None)
        s = kw.get("stride", args[2] if len(args) > 2 else None) or k
        p = kw.get("padding", args[3] if len(args) > 3 else 0)
        kind = "MaxPool" if t in (F.max_pool2d, F.max_pool1d) else "AvgPool"
        nid, outs = add(name, kind, _window(k, s, p), [args[0]])
    elif t in ("transpose",) and len(args) == 3 and all(isinstance(a, int) and a > 0 for a in args[1:]):
        nid, outs = add(name, "Transpose", {"axis1": args[1] - 1, "axis2": args[2] - 1}, [args[0]])
    else:
        what = getattr(t, "__name__", str(t))
        raise ValueError(f"{n.op} {what} has no catalog equivalent")
    values[n] = (nid, outs[0].name)


def _flat_args(args, kw):
    start = kw.get("start_dim", args[1] if len(args) > 1 else 0)
    end = kw.get("end_dim", args[2] if len(args) > 2 else -1)
    return (start, end)


def _import_output(out, doc, values, ids, res, pos) -> None:
    """Outputs: a tensor, a tuple of tensors, or (compute_losses) a dict."""
    if isinstance(out, dict):
        items = [(k, v) for k, v in out.items() if k != "loss"]
    elif isinstance(out, (tuple, list)):
        items = [(f"output{i + 1}" if len(out) > 1 else "output", v) for i, v in enumerate(out)]
    else:
        items = [("output", out)]
    for key, v in items:
        if not isinstance(v, fx.Node) or v not in values:
            res.problems.append(ImportProblem(str(key), "output not imported"))
            continue
        nid, port = values[v]
        node = doc.nodes[nid]
        if node.spec.is_loss or key == nid:
            continue  # a loss, or a prediction named after its own node
        if isinstance(out, dict) or key not in doc.nodes:
            oid = ids.make(key)
            doc.add_node("Output", {}, node_id=oid, position=pos())
            doc.connect(nid, port, oid, "x")


# ---- Python files ------------------------------------------------------------------------


def load_python_module(path: str | Path, class_name: str) -> tuple[type, Any]:
    """Execute a Python file (explicit, user-initiated) and return the class and module."""
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    mod_name = f"_netbuilder_import_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ImportError_(f"{path}: running the file failed: {type(exc).__name__}: "
                           f"{_first_line(exc)}") from None
    finally:
        try:
            sys.path.remove(str(path.parent))
        except ValueError:
            pass
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        found = sorted(k for k, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == mod_name)
        raise ImportError_(f"{path}: no nn.Module class {class_name!r} (found: "
                           f"{', '.join(found) or 'none'})")
    return cls, module


def import_python_file(path: str | Path, class_name: str,
                       input_shapes: dict[str, list[int]] | list[list[int]] | None = None,
                       *, weights: str | Path | None = None, losses: bool = True) -> ImportResult:
    """Import ``class_name`` from a Python file. THIS RUNS THE FILE (explicitly asked for).

    A generated model.py needs no shapes (INPUTS/TARGETS are in the file) and brings its
    weights.safetensors and its losses along. Other modules need the per-sample shape of
    each forward argument; the constructor must take no arguments.
    """
    cls, module = load_python_module(path, class_name)
    try:
        model = cls()
    except Exception as exc:
        raise ImportError_(f"{class_name}() failed: {type(exc).__name__}: {_first_line(exc)} "
                           "(the class must be constructible without arguments)") from None
    generated = hasattr(module, "INPUTS") and isinstance(module.INPUTS, dict)
    if weights is None and generated:
        w = Path(path).with_name("weights.safetensors")
        weights = w if w.exists() else None
    if weights is not None:
        from .weights import WeightsError, load_weights

        try:
            model.load_state_dict(load_weights(weights))
        except WeightsError as exc:
            raise ImportError_(str(exc)) from None
        except RuntimeError as exc:
            raise ImportError_(f"{weights} does not fit {class_name}: {_first_line(exc)}") from None
    model.eval()
    import inspect

    fwd = [p for p in inspect.signature(model.forward).parameters]
    if generated:
        inputs = {k: dict(v) for k, v in module.INPUTS.items()}
        targets = {k: dict(v) for k, v in getattr(module, "TARGETS", {}).items()}
    else:
        if input_shapes is None:
            raise ImportError_(f"give the per-sample shape of each input of {class_name}."
                               f"forward ({', '.join(fwd)}), e.g. --input-shape 1,28,28")
        if isinstance(input_shapes, dict):
            shapes = input_shapes
        else:
            if len(input_shapes) != len(fwd):
                raise ImportError_(f"{class_name}.forward takes {len(fwd)} inputs "
                                   f"({', '.join(fwd)}), {len(input_shapes)} shapes given")
            shapes = dict(zip(fwd, input_shapes))
        inputs = {k: {"shape": list(v), "dtype": "float32"} for k, v in shapes.items()}
        targets = {}
    use_losses = losses and generated and getattr(module, "LOSSES", ()) and hasattr(model, "compute_losses")
    res = import_module(model, inputs, targets=targets if use_losses else None,
                        name=class_name, method="compute_losses" if use_losses else "forward")
    if generated and getattr(module, "TRAINING", None):
        res.doc.training = dict(module.TRAINING)
    if weights is None:
        res.notes.append("no weights given: the imported weights are the module's initial ones")
    verify_import(res, lambda xs: model(*xs), f"{class_name}.forward")
    return res


# ---- ONNX ----------------------------------------------------------------------------


def import_onnx(path: str | Path, name: str | None = None) -> ImportResult:
    """Import an ONNX file (a protobuf; nothing in it runs) for the supported subset:
    Gemm, MatMul(+Add), Conv, Relu, Sigmoid, Tanh, LeakyRelu, Elu, Softplus, Softmax,
    MaxPool, AveragePool, GlobalAveragePool(+Flatten), Flatten, Concat, Add, Mul,
    BatchNormalization, Identity, Dropout, Transpose (two non-batch axes)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file") from None
    except Exception as exc:
        raise ImportError_(f"{path}: not a readable ONNX file ({_first_line(exc)})") from None
    try:
        model = shape_inference.infer_shapes(model)
    except Exception:
        pass
    g = model.graph
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
    consts: dict[str, torch.Tensor] = dict(inits)
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = torch.from_numpy(numpy_helper.to_array(a.t).copy())
    shapes: dict[str, list] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    doc = GraphDocument(name or path.stem)
    res = ImportResult(doc)
    ids = _Ids()
    values: dict[str, tuple[str, str]] = {}
    i = 0

    def pos():
        nonlocal i
        i += 1
        return (0.0, 90.0 * i)

    for inp in g.input:
        if inp.name in inits:
            continue
        shp = shapes.get(inp.name, [])
        elem = inp.type.tensor_type.elem_type
        per = shp[1:]
        nid = ids.make(inp.name)
        is_int = elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        if per and per[0] is None and all(d is not None for d in per[1:]) and len(per) in (1, 2):
            per = [DEFAULT_STEPS] + per[1:]  # a dynamic time axis
            res.notes.append(f"{inp.name}: dynamic sequence length; analysed at {DEFAULT_STEPS} "
                             "steps (change it on the input node)")
        if any(d is None for d in per) or not per:
            res.problems.append(ImportProblem(inp.name, f"input shape {shp} is not fixed per sample"))
            continue
        spec = {"shape": per, "dtype": "int64" if is_int else "float32"}
        if is_int:
            vocab = [consts[c.input[0]].shape[0] for c in g.node if c.op_type == "Gather"
                     and len(c.input) > 1 and c.input[1] == inp.name and c.input[0] in consts]
            spec["high"] = vocab[0] if vocab else 64
        try:
            _input_node(doc, nid, spec, pos())
            values[inp.name] = (nid, "out")
        except ValueError as exc:
            res.problems.append(ImportProblem(inp.name, str(exc)))

    consumers: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    skip: set[int] = set()
    failed: set[str] = set()
    nodes = list(g.node)

    def attrs(n) -> dict[str, Any]:
        return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}

    def add(label: str, type_: str, params: dict, ins: list[str], weights=None, out_name=None):
        nid = ids.make(label)
        doc.add_node(type_, params, node_id=nid, position=pos())
        ports = doc.nodes[nid].input_ports()
        for port, x in zip(ports, ins):
            if x not in values:
                raise ValueError(f"input {x!r} was not imported")
            s, sp = values[x]
            doc.connect(s, sp, nid, port.name)
        for k, v in (weights or {}).items():
            res.weights[f"{nid}.{k}"] = v
        return nid

    for idx, n in enumerate(nodes):
        if idx in skip or n.op_type == "Constant":
            continue
        label = n.name or f"{n.op_type}_{idx}"
        a = attrs(n)
        op = n.op_type
        if any(x in failed for x in n.input):
            failed.update(n.output)  # downstream of a part already reported
            continue
        try:
            out = n.output[0]
            if op in ("Identity", "Dropout"):
                if n.input[0] in consts:
                    consts[out] = consts[n.input[0]]
                else:
                    values[out] = values[n.input[0]]
                continue
            if op == "Gemm":
                w, b = consts.get(n.input[1]), consts.get(n.input[2]) if len(n.input) > 2 else None
                if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                    raise ValueError("only Gemm(x, constant W, bias) with alpha=beta=1 maps to Dense")
                w = w if a.get("transB", 0) else w.t().contiguous()
                weights = {"weight": w}
                if b is not None:
                    weights["bias"] = b.reshape(-1)
                nid = add(label, "Dense", {"units": w.shape[0], "bias": b is not None}, [n.input[0]], weights)
            elif op == "MatMul" and n.input[1] in consts:
                w = consts[n.input[1]].t().contiguous()
                weights = {"weight": w}
                nxt = consumers.get(out, [])
                bias = False
                if len(nxt) == 1 and nxt[0].op_type == "Add":
                    other = [x for x in nxt[0].input if x != out]
                    if other and other[0] in consts:
                        weights["bias"] = consts[other[0]].reshape(-1)
                        bias = True
                        skip.add(nodes.index(nxt[0]))
                        out = nxt[0].output[0]
                nid = add(label, "Dense", {"units": w.shape[0], "bias": bias}, [n.input[0]], weights)
            elif op == "Conv":
                w = consts.get(n.input[1])
                if w is None:
                    raise ValueError("the weights are not a constant")
                nd = w.dim() - 2
                pads = list(a.get("pads", [0] * (2 * nd)))
                if pads[:nd] != pads[nd:]:
                    raise ValueError(f"asymmetric padding {pads} is not supported")
                if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                    raise ValueError("auto_pad is not supported")
                weights = {"weight": w}
                b = consts.get(n.input[2]) if len(n.input) > 2 else None
                if b is not None:
                    weights["bias"] = b
                params = {"filters": w.shape[0], "kernel_size": _size(list(w.shape[2:])),
                          "stride": _size(a.get("strides", [1] * nd)), "padding": _size(pads[:nd]),
                          "dilation": _size(a.get("dilations", [1] * nd)),
                          "groups": int(a.get("group", 1)), "bias": b is not None}
                if nd not in (1, 2):
                    raise ValueError(f"{nd}-D convolution has no catalog equivalent")
                nid = add(label, "Conv1d" if nd == 1 else "Conv2d", params, [n.input[0]], weights)
            elif op in ("Relu", "Sigmoid", "Tanh"):
                nid = add(label, {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}[op], {}, [n.input[0]])
            elif op == "LeakyRelu":
                nid = add(label, "LeakyReLU", {"slope": float(a.get("alpha", 0.01))}, [n.input[0]])
            elif op == "Elu":
                nid = add(label, "ELU", {"alpha": float(a.get("alpha", 1.0))}, [n.input[0]])
            elif op == "Softplus":
                nid = add(label, "Softplus", {}, [n.input[0]])
            elif op == "Softmax":
                rank = len(shapes.get(n.input[0], [])) or None
                axis = a.get("axis", -1)
                if not (axis == -1 or (rank and axis == rank - 1)):
                    raise ValueError(f"Softmax over axis {axis}: only the last axis maps")
                nid = add(label, "Softmax", {}, [n.input[0]])
            elif op in ("MaxPool", "AveragePool"):
                k = list(a["kernel_shape"])
                nd = len(k)
                pads = list(a.get("pads", [0] * (2 * nd)))
                if pads[:nd] != pads[nd:] or a.get("ceil_mode", 0):
                    raise ValueError("asymmetric padding or ceil_mode is not supported")
                if op == "AveragePool" and any(pads) and not a.get("count_include_pad", 0):
                    raise ValueError("padded average pooling without count_include_pad differs "
                                     "from the catalog's")
                if op == "MaxPool" and any(d != 1 for d in a.get("dilations", [1] * nd)):
                    raise ValueError("dilated max pooling is not supported")
                nid = add(label, "MaxPool" if op == "MaxPool" else "AvgPool",
                          _window(k, a.get("strides", k), pads[:nd]), [n.input[0]])
            elif op == "Gather" and n.input[0] in consts and a.get("axis", 0) == 0 \
                    and consts[n.input[0]].dim() == 2:
                w = consts[n.input[0]]
                nid = add(label, "Embedding", {"num_embeddings": w.shape[0], "dim": w.shape[1]},
                          [n.input[1]], {"weight": w})
            elif op == "GlobalMaxPool":
                nxt = consumers.get(out, [])
                if not (len(nxt) == 1 and nxt[0].op_type == "Flatten" and attrs(nxt[0]).get("axis", 1) == 1):
                    raise ValueError("GlobalMaxPool maps only when a Flatten follows")
                skip.add(nodes.index(nxt[0]))
                out = nxt[0].output[0]
                nid = add(label, "GlobalMaxPool", {}, [n.input[0]])
            elif op == "GlobalAveragePool":
                nxt = consumers.get(out, [])
                nid = add(label, "GlobalAvgPool", {}, [n.input[0]])
                if len(nxt) == 1 and nxt[0].op_type == "Flatten" and attrs(nxt[0]).get("axis", 1) == 1:
                    skip.add(nodes.index(nxt[0]))
                    out = nxt[0].output[0]
                else:
                    c = shapes.get(n.input[0], [None, None])[1]
                    rank = len(shapes.get(n.input[0], []))
                    if c is None or rank < 3:
                        raise ValueError("GlobalAveragePool without a following Flatten needs "
                                         "a known channel count")
                    values[out + "#pooled"] = (nid, "out")
                    nid = add(label + "_keepdims", "Reshape", {"shape": [c] + [1] * (rank - 2)},
                              [out + "#pooled"])
            elif op == "Flatten":
                if a.get("axis", 1) != 1:
                    raise ValueError("Flatten with axis other than 1 is not supported")
                nid = add(label, "Flatten", {}, [n.input[0]])
            elif op == "Concat":
                axis = a.get("axis")
                rank = len(shapes.get(n.input[0], []))
                if axis is not None and axis < 0 and rank:
                    axis += rank
                if not axis:
                    raise ValueError("concatenation along the batch axis is not supported")
                nid = add(label, "Concat", {"inputs": len(n.input), "axis": axis - 1}, list(n.input))
            elif op in ("Add", "Mul"):
                if any(x in consts for x in n.input):
                    raise ValueError(f"{op} with a constant has no catalog equivalent")
                nid = add(label, "Add" if op == "Add" else "Multiply", {"inputs": 2}, list(n.input))
            elif op == "BatchNormalization":
                sc, bi, mean, var = (consts.get(x) for x in n.input[1:5])
                if any(t is None for t in (sc, bi, mean, var)):
                    raise ValueError("batch-norm statistics are not constants")
                weights = {"weight": sc, "bias": bi, "running_mean": mean, "running_var": var,
                           "num_batches_tracked": torch.tensor(0)}
                nid = add(label, "BatchNorm", {"eps": float(a.get("epsilon", 1e-5)),
                                               "momentum": round(1 - float(a.get("momentum", 0.9)), 6)},
                          [n.input[0]], weights)
            elif op == "Transpose":
                perm = list(a.get("perm", []))
                moved = [i for i, p in enumerate(perm) if i != p]
                if len(moved) != 2 or 0 in moved:
                    raise ValueError(f"Transpose perm={perm}: only swapping two non-batch axes maps")
                nid = add(label, "Transpose", {"axis1": moved[0] - 1, "axis2": moved[1] - 1}, [n.input[0]])
            else:
                raise ValueError(f"ONNX operator {op} is not in the supported subset")
            values[out] = (nid, "out")
        except ValueError as exc:
            failed.update(n.output)
            res.problems.append(ImportProblem(label, str(exc)))
        except Exception as exc:
            failed.update(n.output)
            res.problems.append(ImportProblem(label, _first_line(exc)))
    for o in g.output:
        if o.name in failed:
            continue
        if o.name not in values:
            res.problems.append(ImportProblem(o.name, "the graph output was not imported"))
            continue
        nid, port = values[o.name]
        oid = ids.make(o.name if o.name not in doc.nodes else o.name + "_out")
        doc.add_node("Output", {}, node_id=oid, position=pos())
        doc.connect(nid, port, oid, "x")
    if not res.problems:
        try:
            import onnxruntime as ort

            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            verify_import(res, lambda xs: tuple(torch.from_numpy(a) for a in sess.run(
                None, {k: x.numpy() for k, x in zip(names, xs)})), "onnxruntime")
        except ImportError:
            res.notes.append("onnxruntime is not installed: the import was not checked")
    return res


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
