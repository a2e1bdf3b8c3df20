"""Import an ``nn.Module`` by torch.fx symbolic tracing: known layers stay single calls
and map to catalog nodes with their weights; functions and methods (relu, cat, flatten,
``+``...) map where the catalog has them; anything else is reported with its fx name."""
from __future__ import annotations

import functools

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ...diagnostics import first_line
from ...graph import GraphDocument

from .common import Ids, ImportError_, ImportProblem, ImportResult, input_node, window
from .layers import module_converter


class _Tracer(fx.Tracer):
    """Keeps known layers (torch.nn and Netbuilder's own classes) as single calls."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if module_converter(m) is not None:
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
                           f"{first_line(exc)} (data-dependent control flow is not supported)"
                           ) from None
    gm = fx.GraphModule(root, graph)
    prefix = "model." if root is not model else ""
    doc = GraphDocument(name or type(model).__name__)
    res = ImportResult(doc)
    ids = Ids()
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
            node_id: str | None = None, prefix: str = "", numbered: bool = False):
        nid = node_id or (ids.numbered(nodename) if numbered else ids.make(nodename))
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
                res.weights[f"{nid}.{prefix}{k}"] = v.detach().clone()
        outs = spec.output_ports(doc.nodes[nid].params)
        return nid, outs

    flat_skip: set = set()
    unmapped: dict[fx.Node, str] = {}  # values with no catalog port, by why
    for n in gm.graph.nodes:
        if n in flat_skip:
            continue
        if any(a in unmapped for a in n.all_input_nodes):
            failed.add(n)
            why = next(unmapped[a] for a in n.all_input_nodes if a in unmapped)
            res.problems.append(ImportProblem(n.name, why))
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
                input_node(doc, nid, spec, pos())
                values[n] = (nid, "out")
            elif n.op == "call_module":
                m = gm.get_submodule(n.target)
                conv = module_converter(m)
                if conv is None:
                    raise ValueError(f"{type(m).__name__} has no catalog equivalent")
                type_, params = conv(m)
                keep = params.pop("_keepdims", 0)
                wprefix = params.pop("_weights_prefix", "")
                if type_ in ("Add", "Multiply", "Concat"):
                    params["inputs"] = len(n.args)
                target = n.target[len(prefix):] if n.target.startswith(prefix) else n.target
                nid, outs = add(target.replace(".", "_"), type_, params, list(n.args), m,
                                prefix=wprefix)
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
                elif type_ in RECURRENT:  # (out, h_n) or (out, (h_n, c_n)): only out maps
                    pending_getitem[n] = (nid, ["out"])
                else:
                    pending_getitem[n] = (nid, [p.name for p in outs])
            elif n.op == "call_function" and n.target is operator.getitem and n.args[0] in pending_getitem:
                nid, ports = pending_getitem[n.args[0]]
                if not isinstance(n.args[1], int) or n.args[1] >= len(ports):
                    # reported where it is used (``out, _ = self.lstm(x)`` never uses it)
                    unmapped[n] = (f"uses output {n.args[1]} of {doc.nodes[nid].type}, which has "
                                   "no catalog port (the final states h_n, c_n: use out[:, -1], "
                                   "the last step of the output)")
                    continue
                values[n] = (nid, ports[n.args[1]])
            elif n.op == "call_function" and n.target is operator.getitem and _last_step(n, values, doc):
                values[n] = (values[n.args[0]][0], "h")  # out[:, -1] of a one-directional layer
            elif n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[0], fx.Node) \
                    and n.args[0].op == "call_module":
                raise ValueError("indexes a layer output")
            elif n.op == "call_function" and n.target is operator.add and all(
                    isinstance(a, fx.Node) and a in values and doc.nodes[values[a][0]].spec.is_loss
                    for a in n.args):
                values[n] = values[n.args[0]]  # the implicit sum of the losses
            elif n.op in ("call_function", "call_method"):
                _import_function(n, functools.partial(add, numbered=True), values, res)
            elif n.op == "output":
                _import_output(n.args[0], doc, values, ids, res, pos)
            elif n.op == "get_attr":
                raise ValueError(f"uses the tensor self.{n.target} directly (not a layer)")
        except ValueError as exc:
            failed.add(n)
            res.problems.append(ImportProblem(n.name, str(exc)))
        except Exception as exc:  # a GraphError etc.: still reported, never raised
            failed.add(n)
            res.problems.append(ImportProblem(n.name, first_line(exc)))
    return res


RECURRENT = ("LSTM", "GRU", "RNN")


def _last_step(n: fx.Node, values, doc) -> bool:
    """``out[:, -1]`` of a one-directional fused recurrent layer's output: its port h."""
    src = values.get(n.args[0]) if isinstance(n.args[0], fx.Node) else None
    idx = n.args[1]
    if src is None or src[1] != "out" or not (isinstance(idx, tuple) and len(idx) == 2):
        return False
    node = doc.nodes[src[0]]
    return (node.type in RECURRENT and not node.params.get("bidirectional")
            and idx[0] == slice(None) and idx[1] == -1)


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
        nid, outs = add(name, kind, window(k, s, p), [args[0]])
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
