"""Hand-drawn recurrent cells as graph-document templates (examples, tests, the editor).

Each ``add_*_cell`` adds one recurrent region to a document: a 'For each time step'
node on the sequence ``seq`` (a (node id, port) pair), the cell drawn from its formula
with Dense, Add, Multiply, Sigmoid, Tanh, OneMinus and Concat nodes, Delay nodes for the
state, and a Collect (``out='collect'``) or Last (``out='last'``) node. Node ids get
``prefix``; the layout runs left to right from ``at``. Returns the ids by role.

The GRU follows torch's formula (the reset gate acts on U_n h, after the matrix):
n = tanh(W_n x + b_in + r * (U_n h + b_hn)), h_t = (1 - z) n + z h_{t-1}.
The textbook form writes h~ = tanh(W [r * h, x]) and h_t = (1 - z) h_{t-1} + z h~: the reset
gate before the matrix and z's roles swapped. Both are GRUs; the first matches
torch.nn.GRU, so its weights can be copied.
"""
from __future__ import annotations

from .graph import GraphDocument

DX, DY = 190.0, 110.0


class _Drawer:
    def __init__(self, doc: GraphDocument, prefix: str, at):
        self.doc, self.prefix = doc, prefix
        self.x0, self.y0 = at
        self.ids: dict[str, str] = {}

    def node(self, role, type_id, params=None, col=0.0, row=0.0, label=""):
        nid = f"{self.prefix}{role}"
        self.doc.add_node(type_id, params or {}, node_id=nid, label=label,
                          position=(self.x0 + col * DX, self.y0 + row * DY))
        self.ids[role] = nid
        return nid

    def wire(self, src, dst, port, src_port="out"):
        self.doc.connect(src, src_port, dst, port)


def _begin(d: _Drawer, seq, state_shape, init, label_state="h_{t-1}"):
    step = d.node("step", "SequenceStep", {}, 0, 0, "x_t")
    d.wire(seq[0], step, "seq", seq[1])
    h_prev = d.node("h_prev", "Delay", {"shape": [state_shape], "init": init[0]}, 0, 1.5,
                    label_state)
    return step, h_prev


def _end(d: _Drawer, value, out, col, row=0.0):
    kind = {"collect": "Collect", "last": "Last"}[out]
    end = d.node("seq_out" if out == "collect" else "last", kind, {}, col, row,
                 "h (all steps)" if out == "collect" else "h (final)")
    d.wire(value, end, "x")
    return end


def _init_inputs(d: _Drawer, delays, init_from):
    for delay, src in zip(delays, init_from or ()):
        if src is not None:
            d.wire(src[0], delay, "init", src[1])


def add_rnn_cell(doc: GraphDocument, seq, hidden: int, *, prefix: str = "", at=(0.0, 0.0),
                 out: str = "collect", activation: str = "Tanh", init_from=None) -> dict:
    """h_t = f(W [h_{t-1}, x_t] + b)  (= f(W_ih x_t + W_hh h_{t-1} + b), Elman)."""
    d = _Drawer(doc, prefix, at)
    init = ["input" if init_from and init_from[0] else "zeros"]
    step, h_prev = _begin(d, seq, hidden, init)
    hx = d.node("hx", "Concat", {"inputs": 2, "axis": 0}, 1, 0.7, "[h, x]")
    d.wire(h_prev, hx, "x1")
    d.wire(step, hx, "x2")
    lin = d.node("w", "Dense", {"units": hidden}, 2, 0.7, "W [h, x] + b")
    d.wire(hx, lin, "x")
    h = d.node("h", activation, {}, 3, 0.7, "h_t")
    d.wire(lin, h, "x")
    d.wire(h, h_prev, "x")
    _init_inputs(d, [h_prev], init_from)
    _end(d, h, out, 4, 0.7)
    return d.ids


def add_lstm_cell(doc: GraphDocument, seq, hidden: int, *, prefix: str = "", at=(0.0, 0.0),
                  out: str = "collect", init_from=None) -> dict:
    """The textbook LSTM gates: f, i, o = s(W [h_{t-1}, x_t] + b), C~ = tanh(W_C [h, x] + b_C),
    C_t = f C_{t-1} + i C~, h_t = o tanh(C_t)."""
    d = _Drawer(doc, prefix, at)
    init = ["input" if init_from and init_from[0] else "zeros",
            "input" if init_from and len(init_from) > 1 and init_from[1] else "zeros"]
    step, h_prev = _begin(d, seq, hidden, init)
    c_prev = d.node("c_prev", "Delay", {"shape": [hidden], "init": init[1]}, 3, 3.2, "C_{t-1}")
    hx = d.node("hx", "Concat", {"inputs": 2, "axis": 0}, 1, 0.7, "[h, x]")
    d.wire(h_prev, hx, "x1")
    d.wire(step, hx, "x2")
    acts = {}
    for row, (g, act, label) in enumerate((("f", "Sigmoid", "f_t"), ("i", "Sigmoid", "i_t"),
                                           ("g", "Tanh", "C~_t"), ("o", "Sigmoid", "o_t"))):
        lin = d.node(f"w_{g}", "Dense", {"units": hidden}, 2, row * 1.0 - 0.8, f"W_{g}")
        d.wire(hx, lin, "x")
        acts[g] = d.node(f"gate_{g}", act, {}, 3, row * 1.0 - 0.8, label)
        d.wire(lin, acts[g], "x")
    keep = d.node("keep", "Multiply", {"inputs": 2}, 4, -0.8, "f * C_{t-1}")
    d.wire(acts["f"], keep, "x1")
    d.wire(c_prev, keep, "x2")
    write = d.node("write", "Multiply", {"inputs": 2}, 4, 0.7, "i * C~")
    d.wire(acts["i"], write, "x1")
    d.wire(acts["g"], write, "x2")
    c = d.node("c", "Add", {"inputs": 2}, 5, 0.0, "C_t")
    d.wire(keep, c, "x1")
    d.wire(write, c, "x2")
    d.wire(c, c_prev, "x")
    squash = d.node("squash", "Tanh", {}, 6, 0.0, "tanh C_t")
    d.wire(c, squash, "x")
    h = d.node("h", "Multiply", {"inputs": 2}, 7, 1.0, "h_t")
    d.wire(acts["o"], h, "x1")
    d.wire(squash, h, "x2")
    d.wire(h, h_prev, "x")
    _init_inputs(d, [h_prev, c_prev], init_from)
    _end(d, h, out, 8, 1.0)
    return d.ids


def add_gru_cell(doc: GraphDocument, seq, hidden: int, *, prefix: str = "", at=(0.0, 0.0),
                 out: str = "collect", init_from=None) -> dict:
    """torch's GRU: z, r = s(W [h_{t-1}, x_t] + b), n = tanh(W_n x + b_in + r * (U_n h +
    b_hn)), h_t = (1 - z) n + z h_{t-1}."""
    d = _Drawer(doc, prefix, at)
    init = ["input" if init_from and init_from[0] else "zeros"]
    step, h_prev = _begin(d, seq, hidden, init)
    hx = d.node("hx", "Concat", {"inputs": 2, "axis": 0}, 1, -0.5, "[h, x]")
    d.wire(h_prev, hx, "x1")
    d.wire(step, hx, "x2")
    gates = {}
    for row, g in enumerate(("z", "r")):
        lin = d.node(f"w_{g}", "Dense", {"units": hidden}, 2, row - 1.0, f"W_{g}")
        d.wire(hx, lin, "x")
        gates[g] = d.node(f"gate_{g}", "Sigmoid", {}, 3, row - 1.0, f"{g}_t")
        d.wire(lin, gates[g], "x")
    wx = d.node("w_xn", "Dense", {"units": hidden}, 2, 1.2, "W_n x + b_in")
    d.wire(step, wx, "x")
    uh = d.node("u_hn", "Dense", {"units": hidden}, 2, 2.2, "U_n h + b_hn")
    d.wire(h_prev, uh, "x")
    reset = d.node("reset", "Multiply", {"inputs": 2}, 3, 2.0, "r * (U_n h + b_hn)")
    d.wire(gates["r"], reset, "x1")
    d.wire(uh, reset, "x2")
    pre = d.node("pre_n", "Add", {"inputs": 2}, 4, 1.5, "pre-activation of n")
    d.wire(wx, pre, "x1")
    d.wire(reset, pre, "x2")
    n = d.node("cand", "Tanh", {}, 5, 1.5, "n_t")
    d.wire(pre, n, "x")
    one_minus = d.node("one_minus_z", "OneMinus", {}, 4, -1.0, "1 - z")
    d.wire(gates["z"], one_minus, "x")
    new = d.node("take_new", "Multiply", {"inputs": 2}, 6, 0.5, "(1 - z) n")
    d.wire(one_minus, new, "x1")
    d.wire(n, new, "x2")
    old = d.node("keep_old", "Multiply", {"inputs": 2}, 6, -0.5, "z h_{t-1}")
    d.wire(gates["z"], old, "x1")
    d.wire(h_prev, old, "x2")
    h = d.node("h", "Add", {"inputs": 2}, 7, 0.0, "h_t")
    d.wire(new, h, "x1")
    d.wire(old, h, "x2")
    d.wire(h, h_prev, "x")
    _init_inputs(d, [h_prev], init_from)
    _end(d, h, out, 8, 0.0)
    return d.ids
