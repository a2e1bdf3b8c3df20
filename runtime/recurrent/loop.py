"""The time loop of a recurrent region: :class:`RecurrentLoop` runs a one-step cell over
the sequence with one parameter set; :func:`scan_loop` is the same loop as torch's
``scan`` while torch.export traces (the program keeps the sequence length dynamic)."""
from __future__ import annotations

import torch
from torch import fx, nn


class RecurrentLoop(nn.Module):
    """Runs ``cell`` once per time step with one parameter set (BPTT through the loop).

    forward(sequences..., constants..., initial states of 'input' Delays...) -> one value
    per Collect (N, T, ...) or Last (N, ...) node, as a tuple. Any T works at run time.
    """

    def __init__(self, cell: fx.GraphModule, states: nn.ModuleDict, n_seq: int, n_const: int,
                 outputs: list[str], reverse: bool = False, tbptt: int = 0):
        super().__init__()
        self.cell, self.states = cell, states  # states: the Delay nodes, in region order
        self.n_seq, self.n_const = n_seq, n_const
        self.outputs = list(outputs)
        self.reverse, self.tbptt = reverse, tbptt

    def initial_states(self, n, like, inits):
        inits = list(inits)
        states = []
        for m in self.states.values():
            states.append(m.initial_state(n, like, inits.pop(0) if m.init == "input" else None))
        return states

    def forward(self, *args):
        seqs = args[:self.n_seq]
        consts = args[self.n_seq:self.n_seq + self.n_const]
        inits = args[self.n_seq + self.n_const:]
        n, steps = seqs[0].shape[0], seqs[0].shape[1]
        like = next((a for a in args if a.is_floating_point()), None)
        if like is None:
            like = next((p for p in self.parameters()), torch.zeros(()))
        states = self.initial_states(n, like, inits)
        if exporting() and not self.tbptt:
            return scan_loop(self.cell, seqs, consts, states, self.outputs, self.reverse)
        nd = len(self.states)
        collected: list[list[torch.Tensor]] = [[] for _ in self.outputs]
        last: list[torch.Tensor | None] = [None] * len(self.outputs)
        order = range(steps - 1, -1, -1) if self.reverse else range(steps)
        for i, t in enumerate(order):
            res = self.cell(*[s[:, t] for s in seqs], *states, *consts)
            states = list(res[:nd])
            for j, y in enumerate(res[nd:]):
                if self.outputs[j] == "Collect":
                    collected[j].append(y)
                else:
                    last[j] = y
            if self.tbptt and (i + 1) % self.tbptt == 0:
                states = [s.detach() for s in states]
        out = []
        for j, kind in enumerate(self.outputs):
            if kind == "Collect":
                ys = collected[j][::-1] if self.reverse else collected[j]
                out.append(torch.stack(ys, 1))
            else:
                out.append(last[j])
        return tuple(out)


def exporting() -> bool:
    """Whether torch.export is tracing the module now."""
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting())


def scan_loop(cell, seqs, consts, states, outputs, reverse=False):
    """The time loop as torch's ``scan`` (used while torch.export traces the module, so the
    program keeps the sequence length dynamic instead of unrolling one length)."""
    from torch._higher_order_ops.scan import scan

    nd = len(states)

    def step(carry, xs):
        res = cell(*xs, *carry, *consts)
        return tuple(res[:nd]), tuple(y.clone() for y in res[nd:])

    xs = tuple(torch.flip(s, [1]) if reverse else s for s in seqs)
    xs = tuple(s.transpose(0, 1) for s in xs)  # time first
    _, ys = scan(step, tuple(s.contiguous() for s in states), xs)
    out = []
    for kind, y in zip(outputs, ys):
        if kind == "Collect":
            y = y.transpose(0, 1)
            out.append(torch.flip(y, [1]) if reverse else y)
        else:
            out.append(y[-1])
    return tuple(out)

