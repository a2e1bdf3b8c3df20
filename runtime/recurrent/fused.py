"""Lowering standard hand-drawn cells to torch's fused kernels: a standard LSTM, GRU
(torch's form, as runtime.cells.add_gru_cell draws it) or Elman cell drawn by hand runs
on ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_*`` with the cell's own weight tensors
(:class:`LoweredLSTM`, :class:`LoweredGRU`, :class:`LoweredRNN`), so checkpoints are
interchangeable with the plain per-step loop."""
from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from ..topology import Region
from .loop import exporting, scan_loop


class _Matcher:
    """Reads the structure of a region's cell: consumers and producers by port."""

    def __init__(self, doc, region, inc):
        self.doc, self.r, self.inc = doc, region, inc
        self.cons = defaultdict(list)
        for e in doc.edges:
            self.cons[e.source].append(e.target)

    def type(self, nid):
        return self.doc.nodes[nid].type

    def srcs(self, nid):
        node = self.doc.nodes[nid]
        return [self.inc[(nid, p.name)].source for p in node.input_ports()
                if (nid, p.name) in self.inc]

    def fed(self, delay):
        """The node whose value a Delay carries to the next step (its ``x`` input; the
        ``init`` input, when there is one, is the state before the first step)."""
        return self.inc[(delay, "x")].source

    def only(self, nid, type_id):
        """The single consumer of nid, if it has that type."""
        c = self.cons[nid]
        return c[0] if len(c) == 1 and self.type(c[0]) == type_id else None


def lower_cell(doc, r: Region, cell, inc):
    """A fused-kernel loop for a standard hand-drawn LSTM, GRU or Elman cell, else None."""
    if len(r.steps) != 1 or any(doc.nodes[d].params.get("init") == "learned"
                                for d in r.delays):
        return None
    m = _Matcher(doc, r, inc)
    step = r.steps[0]
    try:
        if len(r.delays) == 2:
            return _match_lstm(m, doc, r, cell, step)
        if len(r.delays) == 1:
            return _match_rnn(m, doc, r, cell, step) or _match_gru(m, doc, r, cell, step)
    except (KeyError, ValueError, IndexError, StopIteration):
        return None
    return None


def _concat_of(m, doc, step, h_delay):
    """The Concat [h_{t-1}, x_t] (either order) feeding the gates; (id, h_first)."""
    cats = [c for c in m.cons[h_delay] if m.type(c) == "Concat"]
    for c in cats:
        srcs = m.srcs(c)
        if sorted(srcs) == sorted([step, h_delay]) and len(srcs) == 2 and \
                doc.nodes[c].params.get("axis") in (0, -1):
            return c, srcs[0] == h_delay
    raise ValueError("no concat")


def _match_lstm(m, doc, r, cell, step):
    inner = set(r.inner)
    types = sorted(m.type(n) for n in inner)
    if types != sorted(["Concat"] + ["Dense"] * 4 + ["Sigmoid"] * 3 + ["Tanh"] * 2
                       + ["Multiply"] * 3 + ["Add"]):
        return None
    add = next(n for n in inner if m.type(n) == "Add")
    c_delay = next(d for d in r.delays if m.fed(d) == add)
    h_delay = next(d for d in r.delays if d != c_delay)
    cat, h_first = _concat_of(m, doc, step, h_delay)
    if m.cons[step] != [cat] or set(m.cons[h_delay]) != {cat}:
        return None
    denses = m.cons[cat]
    if len(denses) != 4 or any(m.type(d) != "Dense" or not doc.nodes[d].params["bias"]
                               for d in denses):
        return None
    act = {d: m.cons[d][0] for d in denses if len(m.cons[d]) == 1}
    if len(act) != 4:
        return None
    mul_fc = m.srcs(add)
    if len(mul_fc) != 2 or any(m.type(x) != "Multiply" for x in mul_fc):
        return None
    f_mul = next(x for x in mul_fc if c_delay in m.srcs(x))
    i_mul = next(x for x in mul_fc if x != f_mul)
    sig_f = next(s for s in m.srcs(f_mul) if s != c_delay)
    sig_i, tanh_g = m.srcs(i_mul)
    if m.type(sig_i) != "Sigmoid":
        sig_i, tanh_g = tanh_g, sig_i
    h_mul = m.fed(h_delay)
    sig_o, tanh_c = m.srcs(h_mul)
    if m.type(sig_o) != "Sigmoid":
        sig_o, tanh_c = tanh_c, sig_o
    if m.type(tanh_c) != "Tanh" or m.srcs(tanh_c) != [add] or m.type(h_mul) != "Multiply":
        return None
    by_act = {a: d for d, a in act.items()}
    gates = [by_act[sig_i], by_act[sig_f], by_act[tanh_g], by_act[sig_o]]  # torch order
    if [m.type(x) for x in (sig_i, sig_f, tanh_g, sig_o)] != ["Sigmoid"] * 2 + ["Tanh", "Sigmoid"]:
        return None
    if sorted(m.cons[c_delay]) != [f_mul] or len(m.cons[f_mul]) != 1:
        return None
    outs = []
    for o in r.outputs:
        src = m.srcs(o)[0]
        if src == h_mul:
            outs.append(("h", doc.nodes[o].type))
        elif src == add and doc.nodes[o].type == "Last":
            outs.append(("c", "Last"))
        else:
            return None
    init = [doc.nodes[h_delay].params["init"], doc.nodes[c_delay].params["init"]]
    # the loop's init arguments follow the region's delay order
    order = [0, 1] if r.delays.index(h_delay) < r.delays.index(c_delay) else [1, 0]
    hidden = doc.nodes[h_delay].params["shape"][0]
    return LoweredLSTM(cell, gates, h_first, hidden, outs, init, order,
                       bool(doc.nodes[step].params.get("reverse")))


def _match_rnn(m, doc, r, cell, step):
    inner = set(r.inner)
    if len(inner) != 3:
        return None
    h_delay = r.delays[0]
    cat, h_first = _concat_of(m, doc, step, h_delay)
    dense = m.only(cat, "Dense")
    if dense is None or not doc.nodes[dense].params["bias"] or len(m.cons[dense]) != 1:
        return None
    act = m.cons[dense][0]
    if m.type(act) not in ("Tanh", "ReLU") or m.fed(h_delay) != act:
        return None
    if m.cons[step] != [cat] or m.cons[h_delay] != [cat]:
        return None
    if any(m.srcs(o) != [act] for o in r.outputs):
        return None
    hidden = doc.nodes[h_delay].params["shape"][0]
    return LoweredRNN(cell, dense, h_first, hidden, [doc.nodes[o].type for o in r.outputs],
                      doc.nodes[h_delay].params["init"], m.type(act).lower(),
                      bool(doc.nodes[step].params.get("reverse")))


def _match_gru(m, doc, r, cell, step):
    """torch's GRU drawn as runtime.cells.add_gru_cell draws it."""
    inner = set(r.inner)
    types = sorted(m.type(n) for n in inner)
    if types != sorted(["Concat", "Dense", "Dense", "Dense", "Dense", "Sigmoid", "Sigmoid",
                        "Multiply", "Multiply", "Multiply", "Add", "Add", "Tanh", "OneMinus"]):
        return None
    h_delay = r.delays[0]
    h = m.fed(h_delay)
    cat, h_first = _concat_of(m, doc, step, h_delay)
    if m.type(h) != "Add" or sorted(m.cons[step]) != sorted([cat] + [
            c for c in m.cons[step] if c != cat]) or len(m.cons[step]) != 2:
        return None
    w_xn = next(c for c in m.cons[step] if c != cat)
    gate_dense = m.cons[cat]
    if m.type(w_xn) != "Dense" or len(gate_dense) != 2 or any(
            m.type(d) != "Dense" or len(m.cons[d]) != 1 or m.type(m.cons[d][0]) != "Sigmoid"
            for d in gate_dense):
        return None
    pre = m.cons[w_xn][0] if len(m.cons[w_xn]) == 1 else None
    if pre is None or m.type(pre) != "Add" or len(m.cons[pre]) != 1:
        return None
    cand = m.cons[pre][0]
    reset = next(x for x in m.srcs(pre) if x != w_xn)
    if m.type(cand) != "Tanh" or m.type(reset) != "Multiply":
        return None
    sig_r = next(x for x in m.srcs(reset) if m.type(x) == "Sigmoid")
    u_hn = next(x for x in m.srcs(reset) if x != sig_r)
    if m.type(u_hn) != "Dense" or m.srcs(u_hn) != [h_delay]:
        return None
    sig_z = next(m.cons[d][0] for d in gate_dense if m.cons[d][0] != sig_r)
    dense_of = {m.cons[d][0]: d for d in gate_dense}
    take_new, keep_old = m.srcs(h)
    if h_delay in m.srcs(take_new):
        take_new, keep_old = keep_old, take_new
    one_minus = next(x for x in m.srcs(take_new) if x != cand)
    if sorted(m.srcs(keep_old)) != sorted([sig_z, h_delay]) or cand not in m.srcs(take_new) \
            or m.type(one_minus) != "OneMinus" or m.srcs(one_minus) != [sig_z]:
        return None
    if any(not doc.nodes[d].params["bias"] for d in (*gate_dense, w_xn, u_hn)):
        return None
    if any(m.srcs(o) != [h] for o in r.outputs):
        return None
    hidden = doc.nodes[h_delay].params["shape"][0]
    return LoweredGRU(cell, dense_of[sig_r], dense_of[sig_z], w_xn, u_hn, h_first, hidden,
                      [doc.nodes[o].type for o in r.outputs], doc.nodes[h_delay].params["init"],
                      bool(doc.nodes[step].params.get("reverse")))


class LoweredCell(nn.Module):
    """Shared parts: keeps the cell (the same parameters and names as the plain loop, so
    checkpoints are interchangeable) and splits a Dense over [h, x] into (W_x, W_h)."""

    def __init__(self, cell, h_first, hidden, reverse):
        super().__init__()
        self.cell, self.h_first, self.hidden, self.reverse = cell, h_first, hidden, reverse

    def split(self, name):
        lin = self.cell.get_submodule(name)
        w = lin.weight
        if self.h_first:
            return w[:, self.hidden:], w[:, :self.hidden], lin.bias
        return w[:, :-self.hidden], w[:, -self.hidden:], lin.bias

    def _io(self, x):
        return torch.flip(x, [1]) if self.reverse else x

    def export_forward(self, x, inits, modes, kinds):
        """While torch.export traces: the cell in a scan loop (dynamic length), with the
        same weights. ``modes``: init mode per Delay in region order."""
        given, states = list(inits), []
        for mode in modes:
            states.append(given.pop(0) if mode == "input" else
                          x.new_zeros(x.shape[0], self.hidden))
        return scan_loop(self.cell, [x], [], states, kinds, self.reverse)

    def _state(self, x, mode, given):
        if mode == "input":
            return given.unsqueeze(0)
        return x.new_zeros(1, x.shape[0], self.hidden)


class LoweredLSTM(LoweredCell):
    """A hand-drawn LSTM cell run by torch's fused LSTM kernel with the cell's weights."""

    def __init__(self, cell, gates, h_first, hidden, outs, init, order, reverse):
        super().__init__(cell, h_first, hidden, reverse)
        self.gates, self.outs, self.init, self.order = list(gates), outs, init, order

    def forward(self, x, *inits):
        if exporting():
            modes = [self.init[k] for k in self.order]
            return self.export_forward(x, inits, modes, [k for _, k in self.outs])
        parts = [self.split(g) for g in self.gates]
        w_ih = torch.cat([p[0] for p in parts], 0)
        w_hh = torch.cat([p[1] for p in parts], 0)
        b_ih = torch.cat([p[2] for p in parts], 0)
        b_hh = torch.zeros_like(b_ih)
        x = self._io(x.to(w_ih.dtype))
        given = list(inits)
        by_delay = [None, None]
        for k in self.order:  # inits arrive in the region's delay order
            if self.init[k] == "input":
                by_delay[k] = given.pop(0)
        h0 = self._state(x, self.init[0], by_delay[0])
        c0 = self._state(x, self.init[1], by_delay[1])
        out, h_n, c_n = torch.lstm(x, (h0, c0), [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0,
                                   self.training, False, True)
        res = []
        for which, kind in self.outs:
            if which == "c":
                res.append(c_n[0])
            elif kind == "Collect":
                res.append(self._io(out))
            else:
                res.append(h_n[0])
        return tuple(res)


class LoweredRNN(LoweredCell):
    """A hand-drawn Elman cell (Concat [h, x] -> Dense -> tanh/ReLU) on torch's kernel."""

    def __init__(self, cell, dense, h_first, hidden, outs, init, act, reverse):
        super().__init__(cell, h_first, hidden, reverse)
        self.dense, self.outs, self.init, self.act = dense, outs, init, act

    def forward(self, x, *inits):
        if exporting():
            return self.export_forward(x, inits, [self.init], self.outs)
        w_ih, w_hh, b_ih = self.split(self.dense)
        x = self._io(x.to(w_ih.dtype))
        h0 = self._state(x, self.init, inits[0] if inits else None)
        fn = torch.rnn_tanh if self.act == "tanh" else torch.rnn_relu
        out, h_n = fn(x, h0, [w_ih, w_hh, b_ih, torch.zeros_like(b_ih)], True, 1, 0.0,
                      self.training, False, True)
        return tuple(self._io(out) if k == "Collect" else h_n[0] for k in self.outs)


class LoweredGRU(LoweredCell):
    """A hand-drawn GRU cell in torch's form (runtime.cells.add_gru_cell) on torch's kernel."""

    def __init__(self, cell, r, z, xn, hn, h_first, hidden, outs, init, reverse):
        super().__init__(cell, h_first, hidden, reverse)
        self.r, self.z, self.xn, self.hn = r, z, xn, hn
        self.outs, self.init = outs, init

    def forward(self, x, *inits):
        if exporting():
            return self.export_forward(x, inits, [self.init], self.outs)
        wx_r, wh_r, b_r = self.split(self.r)
        wx_z, wh_z, b_z = self.split(self.z)
        xn, hn = self.cell.get_submodule(self.xn), self.cell.get_submodule(self.hn)
        w_ih = torch.cat([wx_r, wx_z, xn.weight], 0)
        w_hh = torch.cat([wh_r, wh_z, hn.weight], 0)
        b_ih = torch.cat([b_r, b_z, xn.bias], 0)
        b_hh = torch.cat([torch.zeros_like(b_r), torch.zeros_like(b_z), hn.bias], 0)
        x = self._io(x.to(w_ih.dtype))
        h0 = self._state(x, self.init, inits[0] if inits else None)
        out, h_n = torch.gru(x, h0, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, self.training,
                             False, True)
        return tuple(self._io(out) if k == "Collect" else h_n[0] for k in self.outs)
