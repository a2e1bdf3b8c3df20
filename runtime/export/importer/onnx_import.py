"""Import an ONNX file (a protobuf: nothing in it runs) into a graph document.

The walk goes through the nodes in order. A node whose inputs are all constants is
computed here (onnx's reference evaluator), so weights a file builds at run time (a
masked convolution's full kernel) become constants; ``Shape`` of a tensor gives its shape
with a marker for the batch axis, so the shape arithmetic of a flatten (``x.view(x.size(0),
-1)``) folds into a Reshape target. Every other node goes to its converter in
``onnx_ops.OPS``; what has none is reported with the node's name and the reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...diagnostics import first_line
from ...graph import GraphDocument

from .common import DEFAULT_STEPS, Ids, ImportError_, ImportProblem, ImportResult, input_node, verify_import
from .onnx_ops import OPS
from .onnx_recurrent import layout_node

# operators computed here when all their inputs are constants (weights, shapes)
FOLDABLE = {"Add", "Sub", "Mul", "Div", "Pow", "Neg", "Sqrt", "Cast", "Concat", "Gather",
            "Unsqueeze", "Squeeze", "Slice", "Reshape", "Transpose", "Expand", "Equal",
            "Where", "ConstantOfShape", "ScatterND", "Range", "Tile", "Identity", "Flatten",
            "ReduceProd", "Shape", "Less", "Greater", "Not", "And", "Or"}


class OnnxImport:
    """The state of one import: values mapped so far, constants, shapes, consumers."""

    BATCH = 1_000_000_007  # the batch axis inside folded shape arithmetic
    DYNAMIC = 1_000_000_009  # another axis of unknown length (a dynamic time axis)

    def __init__(self, model, doc: GraphDocument, res: ImportResult):
        import onnx
        from onnx import numpy_helper

        self.onnx, self.model, self.doc, self.res = onnx, model, doc, res
        g = model.graph
        self.consts: dict[str, torch.Tensor] = {
            t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
        self.initializers = set(self.consts)
        self.shapes: dict[str, list] = {}
        self.types: dict[str, int] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            self.types[vi.name] = vi.type.tensor_type.elem_type
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        self.nodes = list(g.node)
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for x in n.input:
                self.consumers.setdefault(x, []).append(n)
        self.values: dict[str, tuple[str, str]] = {}
        # values that are no layer's output in batch-first form (see onnx_recurrent)
        self.layout: dict[str, tuple] = {}
        self.skip: set[int] = set()
        self.ids = Ids()
        self._y = 0

    # ---- helpers the converters use --------------------------------------------------
    def pos(self):
        self._y += 1
        return (0.0, 90.0 * self._y)

    def attrs(self, n) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in n.attribute}

    def elem_type(self, name: str) -> int | None:
        """The ONNX element type of a value, where shape inference knows it."""
        return self.types.get(name) or None

    def const(self, name: str) -> torch.Tensor | None:
        return self.consts.get(name)

    def other_const(self, n, value: str) -> torch.Tensor | None:
        """The constant operand of a binary node whose other operand is ``value``."""
        if n is None or value not in n.input:
            return None
        other = [x for x in n.input if x != value]
        return self.const(other[0]) if len(other) == 1 else None

    def only_consumer(self, value: str, op: str):
        c = self.consumers.get(value, [])
        return c[0] if len(c) == 1 and c[0].op_type == op else None

    def absorb(self, n) -> str:
        """Take ``n`` out of the walk (a converter mapped it); its output name."""
        self.skip.add(id(n))
        return n.output[0]

    def batch_flat(self, name: str) -> bool:
        """Whether a Reshape target is (batch, -1): a flatten."""
        t = self.const(name)
        return t is not None and t.numel() == 2 and int(t[0]) in (self.BATCH, 0) and int(t[1]) == -1

    def add(self, label: str, type_: str, params: dict, ins: list[str], weights=None) -> str:
        nid = self.ids.make(label)
        self.doc.add_node(type_, params, node_id=nid, position=self.pos())
        for port, x in zip(self.doc.nodes[nid].input_ports(), ins):
            if x not in self.values:
                raise ValueError(f"input {x!r} was not imported")
            s, sp = self.values[x]
            self.doc.connect(s, sp, nid, port.name)
        for k, v in (weights or {}).items():
            self.res.weights[f"{nid}.{k}"] = v
        return nid

    # ---- constants -----------------------------------------------------------------------
    def fold(self, n) -> bool:
        """Compute ``n`` here when its inputs are constants (or it is Shape/Constant)."""
        if n.op_type == "Constant":
            from onnx import numpy_helper

            a = {x.name: x for x in n.attribute}
            if "value" not in a:
                return False
            self.consts[n.output[0]] = torch.from_numpy(numpy_helper.to_array(a["value"].t).copy())
            return True
        if n.op_type == "Shape" and n.input[0] not in self.consts:
            dims = self.shapes.get(n.input[0])
            if dims is None:
                return False
            shape = [self.BATCH if i == 0 else (d if d is not None else self.DYNAMIC)
                     for i, d in enumerate(dims)]
            self.consts[n.output[0]] = torch.tensor(shape, dtype=torch.int64)
            return True
        if n.op_type not in FOLDABLE or not all(x == "" or x in self.consts for x in n.input):
            return False
        if n.op_type in ("ConstantOfShape", "Expand", "Tile", "Range") and any(
                x and bool((self.consts[x] >= self.BATCH).any()) for x in n.input
                if not self.consts[x].is_floating_point()):
            # a tensor as large as the batch: not a constant of the model (zeros made for
            # the batch, e.g. a recurrent layer's initial state)
            if n.op_type == "ConstantOfShape":
                a = self.attrs(n).get("value")
                from onnx import numpy_helper

                if a is None or not numpy_helper.to_array(a).any():
                    self.layout[n.output[0]] = ("batch_zeros",)
                    return True
            return False
        from onnx import numpy_helper
        from onnx.reference import ReferenceEvaluator

        try:
            outs = ReferenceEvaluator(_single_node_model(self.onnx, n, self.consts, self.model)).run(
                None, {x: self.consts[x].numpy() for x in n.input if x})
        except Exception:
            return False
        for name, v in zip(n.output, outs):
            self.consts[name] = torch.from_numpy(numpy_helper.to_array(numpy_helper.from_array(v)).copy())
        return True


def _single_node_model(onnx, n, consts, model):
    from onnx import helper

    ins = [helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(consts[x].numpy().dtype),
                                         None) for x in n.input if x]
    outs = [helper.make_tensor_value_info(o, 0, None) for o in n.output]
    g = helper.make_graph([n], "fold", ins, outs)
    return helper.make_model(g, opset_imports=list(model.opset_import))


def import_onnx(path: str | Path, name: str | None = None) -> ImportResult:
    """Import an ONNX file for the operators in ``onnx_ops.OPS`` (see docs/export.md)."""
    import onnx
    from onnx import shape_inference

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file") from None
    except Exception as exc:
        raise ImportError_(f"{path}: not a readable ONNX file ({first_line(exc)})") from None
    try:
        model = shape_inference.infer_shapes(model)
    except Exception:
        pass
    doc = GraphDocument(name or path.stem)
    res = ImportResult(doc)
    s = OnnxImport(model, doc, res)
    for n in s.nodes:
        if n.op_type == "Constant":
            s.fold(n)
    _inputs(s, model.graph)
    failed: set[str] = set()
    for idx, n in enumerate(s.nodes):
        if id(n) in s.skip or n.op_type == "Constant":
            continue
        label = n.name or f"{n.op_type}_{idx}"
        if any(x in failed for x in n.input):
            failed.update(n.output)  # downstream of a part already reported
            continue
        try:
            if s.fold(n) or layout_node(s, n, s.attrs(n), label):
                continue
            conv = OPS.get(n.op_type)
            if conv is None:
                raise ValueError(f"ONNX operator {n.op_type} is not in the supported subset")
            made = conv(s, n, s.attrs(n), label)
            if made is not None:  # (node id, value) or (node id, value, port)
                nid, out, *port = made
                s.values[out] = (nid, port[0] if port else "out")
        except Exception as exc:
            failed.update(n.output)
            res.problems.append(ImportProblem(label, str(exc) if isinstance(exc, ValueError)
                                              else first_line(exc)))
    for o in model.graph.output:
        if o.name in failed:
            continue
        if o.name not in s.values:
            res.problems.append(ImportProblem(o.name, "the graph output was not imported"))
            continue
        nid, port = s.values[o.name]
        oid = s.ids.make(o.name if o.name not in doc.nodes else o.name + "_out")
        doc.add_node("Output", {}, node_id=oid, position=s.pos())
        doc.connect(nid, port, oid, "x")
    if not res.problems:
        _verify(res, path)
    return res


def _inputs(s: OnnxImport, g) -> None:
    for inp in g.input:
        if inp.name in s.initializers:
            continue
        shp = s.shapes.get(inp.name, [])
        elem = inp.type.tensor_type.elem_type
        per = shp[1:]
        nid = s.ids.make(inp.name)
        is_int = elem in (s.onnx.TensorProto.INT64, s.onnx.TensorProto.INT32)
        if per and per[0] is None and all(d is not None for d in per[1:]) and len(per) in (1, 2):
            per = [DEFAULT_STEPS] + per[1:]  # a dynamic time axis
            s.res.notes.append(f"{inp.name}: dynamic sequence length; analysed at "
                               f"{DEFAULT_STEPS} steps (change it on the input node)")
        if any(d is None for d in per) or not per:
            s.res.problems.append(ImportProblem(inp.name, f"input shape {shp} is not fixed per sample"))
            continue
        spec = {"shape": per, "dtype": "int64" if is_int else "float32"}
        if is_int:
            vocab = [s.consts[c.input[0]].shape[0] for c in s.nodes if c.op_type == "Gather"
                     and len(c.input) > 1 and c.input[1] == inp.name and c.input[0] in s.consts]
            spec["high"] = vocab[0] if vocab else 64
        try:
            input_node(s.doc, nid, spec, s.pos())
            s.values[inp.name] = (nid, "out")
        except ValueError as exc:
            s.res.problems.append(ImportProblem(inp.name, str(exc)))


def _verify(res: ImportResult, path: Path) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        res.notes.append("onnxruntime is not installed: the import was not checked")
        return
    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    verify_import(res, lambda xs: tuple(torch.from_numpy(a) for a in sess.run(
        None, {k: x.numpy() for k, x in zip(names, xs)})), "onnxruntime")
