"""ONNX through the TorchScript-based exporter (opset 17), with named inputs and outputs
and dynamic batch and time axes; checked with onnx.checker and onnxruntime."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from ...diagnostics import first_line
from ..prepare import (Prepared, axis_name, default_steps, fixed_note, make_inputs,
                       other_steps)
from ..result import ExportError, ExportResult
from ..staging import write_bytes
from ..verify import check, check_cases, note_graph_fixed, quiet, reference

ONNX_OPSET = 17


def export_onnx(p: Prepared, out: Path, result: ExportResult) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("ONNX export needs the onnxruntime package to verify the file") from None
    seq = bool(p.seq_inputs and p.seq_variable)
    done = False
    if seq:
        try:
            _export_onnx(p, out, result, ort, True)
            done = True
        except ExportError:
            result.checks.clear()
            result.max_abs_diff = 0.0
            result.notes.append(fixed_note(p, "in the ONNX file", "the exporter traced the "
                                            "time loop for one length", sorted(other_steps(p))))
    if not done:
        _export_onnx(p, out, result, ort, False)
    note_graph_fixed(p, result)


def _onnx_axes(p: Prepared, names_in: list[str], names_out: list[str], seq: bool):
    """dynamic_axes: batch everywhere; with ``seq``, each varying sequence input's time
    axis under its own name (steps_<input id>, shared only by inputs the graph ties), and
    an output axis that follows an input's length under that input's name."""
    axes: dict[str, dict[int, str]] = {}
    for i, n in enumerate(names_in):
        axes[n] = {0: "batch"}
        if seq and i in other_steps(p):
            axes[n][1] = axis_name(p, i)
    with torch.no_grad():
        ref = reference(p, make_inputs(p, 2))
        alt = reference(p, make_inputs(p, 2, steps=other_steps(p))) if seq else ref
    for n, r, a in zip(names_out, ref, alt):
        axes[n] = {0: "batch"} if r.dim() else {}
        for d in range(1, r.dim()):
            if r.shape[d] == a.shape[d]:
                continue
            axes[n][d] = next((axis_name(p, g[0]) for g, t in p.seq_groups
                               if default_steps(p, g[0]) == r.shape[d] and t == a.shape[d]),
                              f"{n}_dim{d}")
    return axes


def _keep_unused_inputs(data: bytes, p: Prepared, names_in: list[str],
                        axes: dict[str, dict[int, str]]) -> bytes:
    """The exporter drops an input nothing uses; put it back (ignored) so the file takes
    the same inputs, in the same order, as every other format."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load_from_string(data)
    have = {i.name: i for i in m.graph.input}
    if all(n in have for n in names_in):
        return data
    for i, n in enumerate(names_in):
        if n in have:
            continue
        node = p.doc.nodes[n]
        shape = [axes[n].get(0, "batch")] + list(node.spec.source_shape(node.params))
        for d, name in axes[n].items():
            shape[d] = name
        dtype = make_inputs(p, 1)[i].dtype
        have[n] = helper.make_tensor_value_info(
            n, TensorProto.INT64 if dtype == torch.int64 else TensorProto.FLOAT, shape)
    rest = [v for k, v in have.items() if k not in names_in]
    del m.graph.input[:]
    m.graph.input.extend([have[n] for n in names_in] + rest)
    return m.SerializeToString()


def _export_onnx(p: Prepared, out: Path, result: ExportResult, ort, seq: bool) -> None:
    names_in = list(p.sig.inputs)
    names_out = [f"{o}" if o not in names_in else f"{o}_out" for o in p.sig.outputs]
    example = make_inputs(p, 2)
    axes = _onnx_axes(p, names_in, names_out, seq)
    buf = io.BytesIO()
    with quiet(), contextlib.redirect_stdout(io.StringIO()):
        try:
            torch.onnx.export(p.predict, example, buf, dynamo=False, input_names=names_in,
                              output_names=names_out, dynamic_axes=axes,
                              opset_version=ONNX_OPSET, do_constant_folding=True)
        except Exception as exc:
            raise ExportError(f"ONNX export failed: {first_line(exc)}") from None
    data = buf.getvalue()
    try:
        import onnx

        data = _keep_unused_inputs(data, p, names_in, axes)
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as exc:
        raise ExportError(f"the ONNX file fails onnx.checker: {first_line(exc)}") from None
    write_bytes(out, data)
    result.files = [out]
    try:
        so = ort.SessionOptions()
        # fatal only: a failed run reaches us as an exception (3 still printed onnxruntime's
        # error log to stderr, e.g. while trying a dynamic length the file cannot take)
        so.log_severity_level = 4
        sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load the exported file: {first_line(exc)}") from None
    steps = ", ".join(f"{names_in[i]} ({axes[names_in[i]][1]})"
                      for i in sorted(other_steps(p))) if seq else ""
    result.checks.append(f"written with the TorchScript-based exporter (opset {ONNX_OPSET}, "
                         "dynamic batch" + (f", dynamic steps: {steps}" if seq else "")
                         + "); checked with onnx.checker and onnxruntime "
                         f"{ort.__version__}")

    def run(x):
        feeds = {n: t.numpy() for n, t in zip(names_in, x)}
        return tuple(torch.from_numpy(a) for a in sess.run(names_out, feeds))
    check(p, run, result, "onnxruntime", check_cases(p, seq=seq))
