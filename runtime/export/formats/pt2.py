"""A ``torch.export`` program (.pt2) with a dynamic batch, and dynamic time axes where
torch keeps them (the recurrent runtime runs its loops as scans while exporting)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from ...diagnostics import first_line
from ..prepare import Prepared, fixed_note, make_inputs, other_steps, steps_label, steps_of
from ..result import ExportError, ExportResult
from ..staging import write_bytes
from ..verify import check, check_cases, note_graph_fixed, quiet


def _dynamic_shapes(p: Prepared, seq: bool):
    """Dim("batch") on every input's first axis; with ``seq``, Dim.AUTO (one per input, so
    torch.export keeps each length its own unless the graph ties them) on the time axis of
    every sequence input whose length can vary."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=1 << 20)
    grouped = set(other_steps(p)) if seq else set()
    shapes = []
    for i, _ in enumerate(p.sig.inputs):
        d: dict[int, Any] = {0: batch}
        if i in grouped:
            d[1] = Dim.AUTO
        shapes.append(d)
    return tuple(shapes)


def _pt2_time_symbols(p: Prepared, ep) -> dict[int, str | None]:
    """Per sequence input (signature index): the program's symbol for its time axis, None
    where torch.export fixed the length."""
    vals = {n.name: n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"}
    user = list(ep.graph_signature.user_inputs)
    out: dict[int, str | None] = {}
    for i in p.seq_inputs:
        v = vals.get(user[i]) if i < len(user) else None
        d = v.shape[1] if v is not None and getattr(v, "dim", lambda: 0)() > 1 else None
        out[i] = str(d) if isinstance(d, torch.SymInt) else None
    return out


def export_pt2(p: Prepared, out: Path, result: ExportResult) -> None:
    example = make_inputs(p, 2)
    want_seq = bool(p.seq_inputs and p.seq_variable)
    with quiet():
        try:
            ep = torch.export.export(p.predict, example, dynamic_shapes=_dynamic_shapes(p, want_seq))
        except Exception as exc:
            raise ExportError(f"torch.export failed: {first_line(exc)}") from None
        buf = io.BytesIO()
        torch.export.save(ep, buf)
        write_bytes(out, buf.getvalue())
        loaded = torch.export.load(str(out)).module()
    result.files = [out]
    cases = check_cases(p, seq=False)
    kept: list[tuple[tuple[int, ...], int]] = []  # groups whose length the program keeps
    if want_seq:
        sym = _pt2_time_symbols(p, ep)
        for g, t in p.seq_groups:
            names = {sym[i] for i in g}
            if None not in names and len(names) == 1:
                kept.append((g, t))
        # two groups the graph does not tie must not share one symbol either
        seen = [sym[g[0]] for g, _ in kept]
        kept = [(g, t) for g, t in kept if seen.count(sym[g[0]]) == 1]
        if kept:
            steps = steps_of(kept)
            seq_case = (f"batch 3, {steps_label(p, steps)}", make_inputs(p, 3, steps=steps))
            try:
                with torch.no_grad(), quiet():
                    loaded(*seq_case[1])
                cases.append(seq_case)
            except Exception:
                kept = []
        lost = sorted(i for g, t in p.seq_groups if (g, t) not in kept for i in g)
        if lost:
            result.notes.append(fixed_note(
                p, "in the .pt2 program", "torch.export could not keep it dynamic for this "
                "graph; the batch size is dynamic", lost))
        dyn = ", ".join(f"{p.sig.inputs[i]} ({sym[i]})" for g, _ in kept for i in g)
    result.checks.append("written with torch.export.export (batch dimension dynamic"
                         + (f"; time axes dynamic: {dyn}" if kept else "")
                         + "); reloaded with torch.export.load")
    note_graph_fixed(p, result)
    with quiet():
        check(p, lambda x: loaded(*x), result, ".pt2", cases)
