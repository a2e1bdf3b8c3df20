"""Checking an export: the inputs every format is run on, and the comparison with the
compiled graph's outputs against one tolerance."""
from __future__ import annotations

import contextlib
import warnings
from typing import Callable

import torch

from ..diagnostics import first_line
from .prepare import Prepared, fixed_note, make_inputs, other_steps, steps_label
from .result import ExportError, ExportResult

ATOL = 1e-4  # absolute tolerance (plus RTOL times the largest reference value)
RTOL = 1e-4


def seq_case(p: Prepared, batch: int = 3) -> tuple[str, tuple[torch.Tensor, ...]]:
    steps = other_steps(p)
    return (f"batch {batch}, {steps_label(p, steps)}", make_inputs(p, batch, steps=steps))


def check_cases(p: Prepared, seq: bool = True) -> list[tuple[str, tuple[torch.Tensor, ...]]]:
    """The input sets every export is checked on: two batch sizes (and sequence lengths)."""
    out = [("batch 1", make_inputs(p, 1)), ("batch 4", make_inputs(p, 4))]
    if seq and p.seq_inputs and p.seq_variable:
        out.append(seq_case(p))
    return out


def as_tuple(y) -> tuple[torch.Tensor, ...]:
    if isinstance(y, torch.Tensor):
        return (y,)
    if isinstance(y, dict):
        return tuple(y.values())
    return tuple(y)


def reference(p: Prepared, inputs) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return as_tuple(p.predict(*inputs))


def compare(ref, got, what: str) -> float:
    got = as_tuple(got)
    if len(ref) != len(got):
        raise ExportError(f"{what}: {len(got)} outputs, expected {len(ref)}")
    worst = 0.0
    for i, (r, g) in enumerate(zip(ref, got)):
        g = torch.as_tensor(g)
        if tuple(g.shape) != tuple(r.shape):
            raise ExportError(f"{what}: output {i} has shape {tuple(g.shape)}, expected "
                              f"{tuple(r.shape)}")
        if r.numel() == 0:
            continue
        diff = float((g.to(torch.float64) - r.to(torch.float64)).abs().max())
        scale = float(r.abs().max()) if r.is_floating_point() else 0.0
        if not diff <= ATOL + RTOL * scale:
            raise ExportError(f"{what}: output {i} differs by {diff:.3g} from the compiled "
                              f"model (tolerance {ATOL + RTOL * scale:.3g})")
        worst = max(worst, diff)
    return worst


def check(p: Prepared, run: Callable, result: ExportResult, label: str,
          cases=None) -> None:
    """Run the written artefact (``run(inputs) -> outputs``) on ``cases`` (default: the
    standard ones) and compare it with the compiled graph; marks ``result`` verified."""
    for name, inputs in cases or check_cases(p):
        ref = reference(p, inputs)
        try:
            with torch.no_grad():
                got = run(inputs)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{label} failed to run at {name}: {first_line(exc)}") from None
        d = compare(ref, got, f"{label} at {name}")
        result.max_abs_diff = max(result.max_abs_diff, d)
        result.checks.append(f"{label} vs compiled model at {name}: max abs diff {d:.3g}")
    result.verified = True


@contextlib.contextmanager
def quiet():
    """Silence torch's deprecation and tracer warnings (we verify numerically instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def note_graph_fixed(p: Prepared, result: ExportResult) -> None:
    """Say which sequence lengths the graph itself fixes (whatever the format)."""
    if p.seq_fixed:
        result.notes.append(fixed_note(p, "by the graph", "it needs that length, e.g. a "
                                       "Flatten or Dense over time", p.seq_fixed))
