"""TorchScript: ``torch.jit.script`` of the compiled module, ``torch.jit.trace`` where a
layer cannot be scripted (the note says which and why)."""
from __future__ import annotations

import io
import re
from pathlib import Path

import torch

from ...diagnostics import first_line
from ..prepare import Prepared, fixed_note, make_inputs
from ..result import ExportError, ExportResult
from ..staging import write_bytes
from ..verify import check, check_cases, compare, note_graph_fixed, quiet, reference


def export_torchscript(p: Prepared, out: Path, result: ExportResult) -> None:
    with quiet():
        try:
            scripted = torch.jit.script(p.predict)
            how = "torch.jit.script"
        except Exception as exc:
            why = _script_failure(p, exc)
            example = make_inputs(p, 2)
            try:
                scripted = torch.jit.trace(p.predict, example, check_trace=False, strict=False)
            except Exception as exc2:
                raise ExportError(f"TorchScript: cannot script ({why}) nor trace "
                                  f"({first_line(exc2)}) the model") from None
            how = "torch.jit.trace"
            result.notes.append(f"scripting failed: {why}; traced instead (control flow is "
                                "fixed to the traced path)")
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
        write_bytes(out, buf.getvalue())
        loaded = torch.jit.load(str(out), map_location="cpu")
    result.files = [out]
    result.checks.append(f"written with {how}; reloaded with torch.jit.load")
    cases = check_cases(p)
    if how == "torch.jit.trace" and p.seq_inputs and p.seq_variable:
        name, xs = cases[-1]
        try:
            with torch.no_grad(), quiet():
                compare(reference(p, xs), loaded(*xs), "trace")
        except Exception:
            cases = cases[:-1]
            result.notes.append(fixed_note(p, "in the traced TorchScript module",
                                            "the trace unrolled the time loop"))
    note_graph_fixed(p, result)
    with quiet():
        check(p, lambda x: loaded(*x), result, "TorchScript", cases)


def _script_failure(p: Prepared, exc: Exception) -> str:
    """Why torch.jit.script refused the module, whole and in one line: torch's first
    sentence (without the source excerpt it points into) and the layer that caused it,
    found from the class torch names ("called from 'FusedRNN.forward'") or, where it
    names none, as the first layer that cannot be scripted on its own."""
    why = first_line(exc).rstrip(":").strip()
    names = re.findall(r"called from '(\w+)\.forward'", str(exc))
    culprit = None
    if names:
        culprit = next((n for n, m in p.predict.named_children()
                        if type(m).__name__ == names[-1]), None)
    if culprit is None:
        for name, m in p.predict.named_children():
            try:
                torch.jit.script(m)
            except Exception as inner:  # a class torch half-compiled above says so: skip
                if not str(inner).startswith("Can't redefine method"):
                    culprit = name
                    break
    if culprit is None:
        return why
    node = p.doc.nodes.get(culprit)
    kind = node.type if node is not None else type(getattr(p.predict, culprit)).__name__
    return f"layer {culprit} ({kind}): {why}"
