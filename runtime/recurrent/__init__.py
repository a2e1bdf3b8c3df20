"""Recurrent graphs: checks, per-step analysis, compiling and lowering, unrolling.

Regions themselves (what runs once per time step) are found in runtime/topology.py. This
package holds one module per stage, each in its layer of the runtime:

- ``checks``: structural checks of recurrent regions (part of validation);
- ``steps``: per-step analysis (the time axis T, per-sequence MACs), used by analysis;
- ``loop``: :class:`RecurrentLoop`, the time loop of a compiled region, and its
  ``scan`` form for torch.export;
- ``fused``: a standard hand-drawn LSTM, GRU or Elman cell lowered to torch's fused
  kernel;
- ``regions``: each region as one looping submodule of the compiled module
  (``lowering(False)`` turns the fused kernels off);
- ``unrolling``: the rolled document as an acyclic one over T steps (the unrolled view).

The names below are loaded on first use (nothing is imported with the package), so
that validation can import ``runtime.recurrent.checks`` without the compiler.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "check_recurrent": "checks",
    "per_step": "steps", "delay_shape": "steps",
    "RecurrentLoop": "loop", "scan_loop": "loop",
    "LoweredCell": "fused", "LoweredLSTM": "fused", "LoweredGRU": "fused", "LoweredRNN": "fused",
    "lower_cell": "fused",
    "RegionCompiler": "regions", "compile_plan": "regions", "lowering": "regions",
    "unroll": "unrolling",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
