"""Torch modules of the recurrent node types (plain torch: no Netbuilder imports).

Tensors are batch-first: a sequence is (N, T, D), a per-step value (N, D).
"""
from __future__ import annotations

import torch
from torch import nn

# ---- structural nodes of a hand-drawn recurrent region --------------------------------
# The compiled loop (runtime/recurrent.py) does the work of these three; their forward is
# what one step looks like, which is what shape analysis runs.


class SequenceStep(nn.Module):
    """(N, T, ...) -> (N, ...): the value of the current time step (analysis: step 0)."""

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return seq[:, 0]


class Collect(nn.Module):
    """Per-step (N, ...) values -> (N, T, ...) (analysis sees one step: T = 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)


class Last(nn.Module):
    """The value of the final step (per step: the value itself)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Delay(nn.Module):
    """A one-step delay: outputs the previous step's value of its input (the state).

    ``init`` gives the state before the first step: zeros, a learned vector
    (``self.initial``), or the optional ``init`` input.
    """

    def __init__(self, shape, init: str = "zeros"):
        super().__init__()
        self.shape, self.init = tuple(shape), init
        if init == "learned":
            self.initial = nn.Parameter(torch.zeros(self.shape))

    def initial_state(self, n: int, like: torch.Tensor, init: torch.Tensor | None = None):
        if self.init == "input":
            return init
        if self.init == "learned":
            return self.initial.expand((n,) + self.shape)
        return torch.zeros((n,) + self.shape, dtype=like.dtype, device=like.device)

    def forward(self, x: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
        return x  # shape analysis only: the compiled loop feeds the previous step's value


# ---- fused layers -------------------------------------------------------------------


def _exporting() -> bool:
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting())


def rnn_scan(rnn: nn.RNNBase, mode: str, x: torch.Tensor, hx=None):
    """What ``rnn(x, hx)`` computes (batch first, eval), as torch ``scan`` loops: used while
    torch.export traces, so the program keeps the sequence length dynamic (the fused
    kernels make torch.export fix it). Returns (out, h_n) or (out, (h_n, c_n)) for LSTM."""
    from torch._higher_order_ops.scan import scan

    layers, hidden = rnn.num_layers, rnn.hidden_size
    dirs = 2 if rnn.bidirectional else 1
    n = x.shape[0]
    lstm = mode == "LSTM"
    if hx is None:
        h0 = c0 = x.new_zeros(layers * dirs, n, hidden)
    elif lstm:
        h0, c0 = hx
    else:
        h0, c0 = hx, None
    act = torch.relu if getattr(rnn, "nonlinearity", "tanh") == "relu" else torch.tanh
    inp, hs, cs = x, [], []
    for layer in range(layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(rnn, "weight_ih" + sfx), getattr(rnn, "weight_hh" + sfx)
            b_ih = getattr(rnn, "bias_ih" + sfx) if rnn.bias else None
            b_hh = getattr(rnn, "bias_hh" + sfx) if rnn.bias else None

            def step(carry, xt, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh):
                h = carry[0]
                gi = nn.functional.linear(xt, w_ih, b_ih)
                gh = nn.functional.linear(h, w_hh, b_hh)
                if lstm:
                    i, f, g, o = (gi + gh).chunk(4, -1)
                    c = torch.sigmoid(f) * carry[1] + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    return (h, c), h.clone()
                if mode == "GRU":
                    i_r, i_z, i_n = gi.chunk(3, -1)
                    h_r, h_z, h_n = gh.chunk(3, -1)
                    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
                    h = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
                    return (h,), h.clone()
                h = act(gi + gh)
                return (h,), h.clone()

            k = layer * dirs + d
            xs = (torch.flip(inp, [1]) if d else inp).transpose(0, 1)
            carry0 = (h0[k], c0[k]) if lstm else (h0[k],)
            last, ys = scan(step, carry0, xs)
            ys = ys.transpose(0, 1)
            outs.append(torch.flip(ys, [1]) if d else ys)
            hs.append(last[0])
            if lstm:
                cs.append(last[1])
        inp = torch.cat(outs, -1) if dirs > 1 else outs[0]
    h_n = torch.stack(hs, 0)
    return inp, ((h_n, torch.stack(cs, 0)) if lstm else h_n)


class FusedRNN(nn.Module):
    """torch's fused RNN/LSTM/GRU (batch first) with Netbuilder's ports.

    forward(x (N, T, D), h0 (N, H) optional, c0 (N, H) optional, LSTM only) ->
    (out, h[, c]): out is (N, T, dirs*H) or the final hidden (N, dirs*H); h and c are
    the last layer's final states, both directions concatenated. h0/c0 start every layer
    and direction. ``tbptt`` > 0 detaches the state every tbptt steps while training.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0,
                 return_sequences: bool = True, nonlinearity: str = "tanh", tbptt: int = 0):
        super().__init__()
        kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=True,
                  dropout=dropout if num_layers > 1 else 0.0)
        if mode == "LSTM":
            self.rnn = nn.LSTM(input_size, hidden_size, **kw)
        elif mode == "GRU":
            self.rnn = nn.GRU(input_size, hidden_size, **kw)
        else:
            self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, **kw)
        self.mode, self.return_sequences, self.tbptt = mode, return_sequences, tbptt
        self.dirs = 2 if bidirectional else 1

    def _hx(self, x, h0, c0):
        if h0 is None and c0 is None:
            return None
        rows = self.rnn.num_layers * self.dirs
        n, hs = x.shape[0], self.rnn.hidden_size
        zeros = x.new_zeros(rows, n, hs)
        h = h0.unsqueeze(0).expand(rows, n, hs).contiguous() if h0 is not None else zeros
        if self.mode != "LSTM":
            return h
        c = c0.unsqueeze(0).expand(rows, n, hs).contiguous() if c0 is not None else zeros
        return (h, c)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None,
                c0: torch.Tensor | None = None):
        hx = self._hx(x, h0, c0)
        if _exporting():  # keep the sequence length dynamic in torch.export programs
            out, state = rnn_scan(self.rnn, self.mode, x, hx)
        elif self.tbptt and self.training and self.dirs == 1 and x.shape[1] > self.tbptt:
            outs = []
            for i, chunk in enumerate(torch.split(x, self.tbptt, dim=1)):
                if i:  # the state enters the next chunk without its gradient history
                    hx = tuple(s.detach() for s in hx) if isinstance(hx, tuple) else hx.detach()
                out, hx = self.rnn(chunk, hx)
                outs.append(out)
            out, state = torch.cat(outs, 1), hx
        else:
            out, state = self.rnn(x, hx)
        h_n = state[0] if self.mode == "LSTM" else state
        d = self.dirs
        h = torch.cat([h_n[i - d] for i in range(d)], -1)  # last layer, every direction
        y = out if self.return_sequences else h
        if self.mode == "LSTM":
            c = torch.cat([state[1][i - d] for i in range(d)], -1)
            return y, h, c
        return y, h


def identity_init(rnn: nn.RNN) -> None:
    """IRNN (Le et al. 2015): recurrent matrices = identity, biases = zero."""
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if p.device.type == "meta":
                continue
            if name.startswith("weight_hh"):
                p.copy_(torch.eye(p.shape[0], p.shape[1]))
            elif name.startswith("bias"):
                p.zero_()


class LeakyRNN(nn.Module):
    """Leaky-integration units: h_t = a h_{t-1} + (1 - a) f(W h_{t-1} + U x_t + b)."""

    def __init__(self, input_size: int, hidden_size: int, leak: float = 0.5,
                 activation: str = "tanh", return_sequences: bool = True):
        super().__init__()
        self.U = nn.Linear(input_size, hidden_size)
        self.W = nn.Linear(hidden_size, hidden_size, bias=False)
        self.leak, self.return_sequences = float(leak), return_sequences
        self.f = torch.tanh if activation == "tanh" else torch.relu

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        u = self.U(x)  # (N, T, H): the input term of every step at once
        h = h0 if h0 is not None else u.new_zeros(u.shape[0], u.shape[2])
        a = self.leak
        if _exporting():  # a scan keeps the sequence length dynamic in torch.export
            from torch._higher_order_ops.scan import scan

            def step(h, ut):
                h = a * h + (1 - a) * self.f(self.W(h) + ut)
                return h, h.clone()
            h, ys = scan(step, h, u.transpose(0, 1))
            return (ys.transpose(0, 1) if self.return_sequences else h), h
        outs = []
        for t in range(u.shape[1]):
            h = a * h + (1 - a) * self.f(self.W(h) + u[:, t])
            outs.append(h)
        y = torch.stack(outs, 1) if self.return_sequences else h
        return y, h


class EchoStateReservoir(nn.Module):
    """Echo-state reservoir: h_t = tanh(W_in x_t + W h_{t-1}) with random, frozen weights.

    W is sparse (a fraction ``density`` of non-zeros) and rescaled so its spectral radius
    (largest |eigenvalue|) is ``spectral_radius``; W_in is uniform in
    [-input_scaling, input_scaling]. Neither is trained (requires_grad False): only the
    layers after the reservoir learn. ``seed`` makes the reservoir reproducible.
    """

    def __init__(self, input_size: int, units: int, spectral_radius: float = 0.9,
                 density: float = 0.1, input_scaling: float = 1.0, seed: int = 0,
                 return_sequences: bool = True):
        super().__init__()
        self.rnn = nn.RNN(input_size, units, bias=False, batch_first=True)
        self.return_sequences = return_sequences
        for p in self.rnn.parameters():
            p.requires_grad_(False)
        if self.rnn.weight_hh_l0.device.type != "meta":
            g = torch.Generator().manual_seed(seed)
            w = torch.rand(units, units, generator=g) * 2 - 1
            w = w * (torch.rand(units, units, generator=g) < density)
            radius = torch.linalg.eigvals(w.double()).abs().max().item()
            if radius > 0:
                w = w * (spectral_radius / radius)
            w_in = (torch.rand(units, input_size, generator=g) * 2 - 1) * input_scaling
            with torch.no_grad():
                self.rnn.weight_hh_l0.copy_(w)
                self.rnn.weight_ih_l0.copy_(w_in)

    def forward(self, x: torch.Tensor):
        out, h = rnn_scan(self.rnn, "RNN", x) if _exporting() else self.rnn(x)
        return (out if self.return_sequences else h[-1]), h[-1]


# ---- nodes of an unrolled view (runtime.recurrent.unroll) ------------------------------


class SelectStep(nn.Module):
    """(N, T, ...) -> (N, ...): step ``step`` of the sequence."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return seq[:, self.step]


class StackSteps(nn.Module):
    """k values (N, ...) -> (N, k, ...): a sequence again."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs, 1)


class InitialState(nn.Module):
    """The state before the first step: the given one, zeros or a learned vector
    (zeros/learned read only the batch size of their input)."""

    def __init__(self, shape, init: str = "zeros"):
        super().__init__()
        self.shape, self.init = tuple(shape), init
        if init == "learned":
            self.initial = nn.Parameter(torch.zeros(self.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.init == "input":
            return x
        if self.init == "learned":
            return self.initial.expand((x.shape[0],) + self.shape)
        return torch.zeros((x.shape[0],) + self.shape, device=x.device)
