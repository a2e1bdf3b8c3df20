"""Compiling a graph for export: the train and predict modules sharing one set of weights,
the graph's inputs, and which sequence lengths can vary (and which the graph ties)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import fx

from ..analysis import Analysis
from ..compiler import (CompileError, Signature, build_module, class_name, random_source,
                        signature)
from ..graph import GraphDocument
from ..pipeline import analyze
from .result import ExportError
from .weights import apply_weights, load_weights, state_dict_for_file


@dataclass
class Prepared:
    doc: GraphDocument
    analysis: Analysis
    sig: Signature
    predict: fx.GraphModule
    train: fx.GraphModule | None  # superset of predict's layers; None without losses
    state: dict[str, torch.Tensor]  # weights of all layers (train module's names)
    class_name: str
    seq_inputs: tuple[int, ...]  # indices of inputs with a time axis (dim 1)
    seq_variable: bool  # the eager module accepts other sequence lengths (seq_groups)
    # inputs whose lengths vary, grouped: one group per length the graph ties together
    # (its own group for an input the graph does not tie to another), with the second
    # length each group is checked at; the seq inputs in no group have a fixed length
    seq_groups: tuple[tuple[tuple[int, ...], int], ...] = ()

    @property
    def owner(self) -> torch.nn.Module:
        return self.train if self.train is not None else self.predict

    @property
    def seq_fixed(self) -> tuple[int, ...]:
        """Sequence inputs whose length the graph itself fixes."""
        grouped = {i for g, _ in self.seq_groups for i in g}
        return tuple(i for i in self.seq_inputs if i not in grouped)


def prepare(doc: GraphDocument, weights: Mapping[str, torch.Tensor] | str | Path | None = None,
            *, weights_source: str = "weights", seed: int = 0) -> Prepared:
    """Compile ``doc`` (train and predict modules sharing one set of weights)."""
    sig = signature(doc)
    if not sig.outputs:
        raise ExportError("the graph has no output: add an Output node or a loss whose "
                          "prediction can be exported")
    analysis = analyze(doc)
    try:
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's RNG untouched
            torch.manual_seed(seed)
            train = build_module(doc, mode="train", analysis=analysis) if sig.losses else None
            predict = build_module(doc, mode="predict", analysis=analysis)
    except CompileError as exc:
        lines = [str(d) for d in exc.diagnostics if d.is_error]
        raise ExportError("the graph has errors:\n  " + "\n  ".join(lines)) from None
    owner = train if train is not None else predict
    if isinstance(weights, (str, Path)):
        weights_source = str(weights)
        weights = load_weights(weights)  # WeightsError for a bad or unsafe file
    if weights is not None:
        apply_weights(owner, weights, weights_source)
    state = state_dict_for_file(owner)
    if train is not None:
        predict.load_state_dict({k: state[k] for k in predict.state_dict()}, strict=True)
    owner.eval()
    predict.eval()
    seq_inputs = tuple(i for i, nid in enumerate(sig.inputs)
                       if doc.nodes[nid].type in ("SequenceInput", "TokenInput"))
    p = Prepared(doc, analysis, sig, predict, train, state, class_name(doc), seq_inputs, False)
    if seq_inputs:
        p.seq_groups = _length_groups(p)
        p.seq_variable = bool(p.seq_groups)
    return p


def default_steps(p: Prepared, i: int) -> int:
    """The length of sequence input ``i`` (its index in the signature) in the graph."""
    node = p.doc.nodes[p.sig.inputs[i]]
    return int(node.spec.source_shape(node.params)[0])


def _runs_at(p: Prepared, steps: dict[int, int]) -> bool:
    try:
        with torch.no_grad():
            p.predict(*make_inputs(p, 2, steps=steps))
        return True
    except Exception:
        return False


def _length_groups(p: Prepared) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Which sequence lengths can vary, and which the graph ties together: an input whose
    length varies alone gets its own group; inputs that only run when their lengths change
    together (e.g. added step by step) share one; any other input is fixed. Each group's
    second length moves in the other direction from the previous group's (20 and 24 steps
    are checked again at 17 and 27), so two independent lengths are never checked equal."""
    def candidates(t: int, k: int) -> list[int]:
        down, up = ([t - 3] if t >= 8 else []), [t + 3]
        return down + up if k % 2 == 0 else up + down

    groups: list[tuple[tuple[int, ...], int]] = []
    pending: list[int] = []
    for i in p.seq_inputs:
        t = default_steps(p, i)
        other = next((o for o in candidates(t, len(groups)) if _runs_at(p, {i: o})), None)
        if other is None:
            pending.append(i)
        else:
            groups.append(((i,), other))
    tied: list[list[int]] = []  # inputs that cannot vary alone, by the length they share
    for i in pending:
        for g in tied:
            if default_steps(p, g[0]) == default_steps(p, i):
                g.append(i)
                break
        else:
            tied.append([i])
    for g in tied:
        while len(g) > 1:
            t = default_steps(p, g[0])
            other = next((o for o in candidates(t, len(groups))
                          if _runs_at(p, {j: o for j in g})), None)
            if other is not None:
                groups.append((tuple(g), other))
                break
            g.pop()  # the last one may be fixed on its own: try the others without it
    groups.sort(key=lambda g: g[0][0])
    if groups and not _runs_at(p, steps_of(groups)):
        return ()  # the lengths interact in a way these checks do not cover: keep them all
    return tuple(groups)


def steps_of(groups) -> dict[int, int]:
    return {i: t for g, t in groups for i in g}


def other_steps(p: Prepared) -> dict[int, int]:
    """The second length of every sequence input that can vary (signature index -> steps)."""
    return steps_of(p.seq_groups)


def steps_label(p: Prepared, steps: Mapping[int, int]) -> str:
    """'source 17 steps, previous 27 steps' (one name per input)."""
    return ", ".join(f"{p.sig.inputs[i]} {t} steps" for i, t in sorted(steps.items()))


def _fixed_lengths(p: Prepared, indices=None) -> str:
    """'source at 20 steps, previous at 24 steps': each input's fixed length."""
    idx = p.seq_inputs if indices is None else indices
    return ", ".join(f"{p.sig.inputs[i]} at {default_steps(p, i)} steps" for i in idx)


def fixed_note(p: Prepared, where: str, why: str, indices=None) -> str:
    idx = tuple(p.seq_inputs if indices is None else indices)
    what = "the sequence length is" if len(idx) == 1 else "the sequence lengths are"
    return f"{what} fixed {where}: {_fixed_lengths(p, idx)} ({why})"


def axis_name(p: Prepared, i: int) -> str:
    """The dynamic time axis of sequence input ``i``: its own (steps_<input id>), or the one
    it shares with the inputs the graph ties it to (steps_<id>_<id>...)."""
    group = next(g for g, _ in p.seq_groups if i in g)
    return "steps_" + "_".join(p.sig.inputs[j] for j in group)


def make_inputs(p: Prepared, batch: int, *, steps: int | Mapping[int, int] | None = None,
                seed: int = 1, targets: bool = False) -> tuple[torch.Tensor, ...]:
    """Random inputs (and targets); ``steps``: one length for every sequence input, or a
    length per sequence input (signature index -> steps; the others keep the graph's)."""
    if isinstance(steps, int):
        steps = {i: steps for i in p.seq_inputs}
    steps = dict(steps or {})
    gen = torch.Generator().manual_seed(seed + 1000 * batch + sum(steps.values()))
    ids = p.sig.inputs + (p.sig.targets if targets else ())
    out = []
    for i, nid in enumerate(ids):
        node = p.doc.nodes[nid]
        shape = [batch] + list(node.spec.source_shape(node.params))
        if i < len(p.sig.inputs) and i in steps:
            shape[1] = steps[i]
        out.append(random_source(node, shape, gen))
    return tuple(out)
