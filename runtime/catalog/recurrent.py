"""Recurrent node types: the pieces of a hand-drawn recurrent cell, and fused layers.

A hand-drawn recurrent network is a *recurrent region*: the nodes between one or more
``SequenceStep`` nodes (for each time step t, the step x_t of a (T, ...) sequence) and
``Collect`` (every step's value, as a sequence: many-to-many) or ``Last`` (the final
step's value: many-to-one) nodes. A cycle inside the region must pass through a
``Delay`` node, whose output is its input's value at the previous step (the state).
The compiler runs the region once per step with one set of weights (see
runtime/recurrent.py). Shapes inside a region are per step: (D), not (T, D).
"""
from __future__ import annotations

from ._lazy import R
from . import register
from ._util import expect_rank, fmt_shape
from .spec import ANY, FLOAT, LayerSpec, Param, Port, ShapeError

CAT = "Recurrent"
NO_MACS = lambda p, s, o: 0  # noqa: E731


def _build_delay(p, s):
    shape = tuple(p["shape"])
    for port in ("x", "init"):
        if port in s and tuple(s[port]) != shape:
            raise ShapeError(f"{port}: expected {fmt_shape(shape)} (the Delay's state shape), "
                             f"received {fmt_shape(s[port])}")
    return R.Delay(shape, p["init"])


def _build_step(p, s):
    if len(s["seq"]) < 1:
        raise ShapeError("seq: expected a sequence (T, ...) per sample, received a scalar")
    return R.SequenceStep()


def _rnn_ports(mode):
    def ports(p):
        ins = [Port("x", FLOAT, "the sequence (T, D)", ranks=(2,))]
        if p.get("initial_state") == "input":
            ins.append(Port("h0", FLOAT, "initial hidden state (H)"))
            if mode == "LSTM":
                ins.append(Port("c0", FLOAT, "initial cell state (H)"))
        return tuple(ins)
    return ports


def _rnn_outputs(mode):
    outs = (Port("out", FLOAT, "every step's output (T, dirs*H), or the final one (dirs*H)"),
            Port("h", FLOAT, "final hidden state of the last layer (dirs*H)"))
    if mode == "LSTM":
        outs += (Port("c", FLOAT, "final cell state of the last layer (dirs*H)"),)
    return outs


def _build_fused(mode):
    def build(p, s):
        expect_rank(s["x"], (2,), "x")
        hidden = p["hidden_size"]
        for port in ("h0", "c0"):
            if port in s and tuple(s[port]) != (hidden,):
                raise ShapeError(f"{port}: expected ({hidden}) (hidden_size), received "
                                 f"{fmt_shape(s[port])}")
        m = R.FusedRNN(mode, s["x"][-1], hidden, p["num_layers"], p["bidirectional"],
                       p["dropout"], p["return_sequences"], p.get("nonlinearity", "tanh"),
                       p["tbptt"])
        if mode == "RNN" and p.get("init") == "identity":
            R.identity_init(m.rnn)
        return m
    return build


def _fused_macs(gates):
    def macs(p, s, o):
        t, d = s["x"]
        h, layers = p["hidden_size"], p["num_layers"]
        dirs = 2 if p["bidirectional"] else 1
        total, inp = 0, d
        for _ in range(layers):
            total += dirs * gates * h * (inp + h) * t
            inp = dirs * h
        return total
    return macs


def _fused_check(p):
    if p["dropout"] > 0 and p["num_layers"] == 1:
        return [("dropout", "inter-layer dropout needs num_layers >= 2")]
    if p["tbptt"] and p["bidirectional"]:
        return [("tbptt", "truncated BPTT needs a one-directional layer (the backward "
                          "direction reads the whole sequence)")]
    return []


def _fused(mode, title, gates, doc, extra=()):
    return LayerSpec(
        type=mode, title=title, category=CAT, doc=doc,
        inputs=_rnn_ports(mode), outputs=_rnn_outputs(mode),
        params=(
            Param("hidden_size", "int", 32, "hidden units H", min=1),
            Param("num_layers", "int", 1, "stacked layers", min=1, max=16),
            Param("bidirectional", "bool", False,
                  "add a second recurrence over reversed time; outputs are concatenated"),
            Param("dropout", "float", 0.0, "dropout between stacked layers", min=0.0, max=0.99),
            Param("return_sequences", "bool", True,
                  "out = every step (many-to-many) or only the final step (many-to-one)"),
            Param("initial_state", "choice", "zeros", "zeros, or given by inputs h0 (and c0)",
                  choices=("zeros", "input")),
            Param("tbptt", "int", 0, "truncated BPTT: detach the state every k steps while "
                  "training (0: full backpropagation through time)", min=0),
            *extra,
        ),
        build=_build_fused(mode), macs=_fused_macs(gates), check=_fused_check,
        tags=("recurrent", "sequence"),
    )


def _leaky_build(p, s):
    expect_rank(s["x"], (2,), "x")
    return R.LeakyRNN(s["x"][-1], p["hidden_size"], p["leak"], p["activation"],
                      p["return_sequences"])


def _esn_build(p, s):
    expect_rank(s["x"], (2,), "x")
    return R.EchoStateReservoir(s["x"][-1], p["units"], p["spectral_radius"], p["density"],
                                p["input_scaling"], p["seed"], p["return_sequences"])


register(
    LayerSpec(
        type="SequenceStep", title="For each time step", category=CAT,
        doc="Starts a recurrent region: for each t it gives x_t, step t of a (T, ...) "
            "sequence; the nodes after it run once per step with the same weights, until "
            "a Collect or Last node. reverse runs t = T-1 ... 0 (the backward half of a "
            "bidirectional network). tbptt > 0 detaches the Delay states every k steps "
            "(truncated backpropagation through time).",
        inputs=(Port("seq", ANY, "a sequence (T, ...)"),),
        outputs=(Port("out", ANY, "this step's value (...)"),),
        params=(
            Param("reverse", "bool", False, "iterate from the last step to the first"),
            Param("tbptt", "int", 0, "truncated BPTT every k steps (0: full BPTT)", min=0),
        ),
        build=_build_step, macs=NO_MACS, tags=("sequence_in",),
    ),
    LayerSpec(
        type="Delay", title="Delay (state)", category=CAT,
        doc="A one-step delay: outputs the value its input x had at the previous step "
            "(h_{t-1}). Every cycle must pass through one. Before the first step it gives "
            "the initial state: zeros, a learned vector, or the init input.",
        inputs=lambda p: (Port("x", FLOAT, "this step's value, seen at the next step"),) + (
            (Port("init", FLOAT, "initial state (from outside the recurrent region)"),)
            if p.get("init") == "input" else ()),
        outputs=(Port("out", FLOAT, "the previous step's value"),),
        params=(
            Param("shape", "ints", [16], "per-sample shape of the state, e.g. [H]", min=1,
                  min_items=1),
            Param("init", "choice", "zeros", "initial state: zeros, learned, or the init input",
                  choices=("zeros", "learned", "input")),
        ),
        build=_build_delay, macs=NO_MACS, tags=("delay",),
    ),
    LayerSpec(
        type="Collect", title="Collect steps", category=CAT,
        doc="Ends a recurrent region: stacks every step's value into a sequence "
            "(...) -> (T, ...) (many-to-many). With a reversed region the steps are put "
            "back in time order.",
        inputs=(Port("x", ANY, "a per-step value"),), outputs=(Port("out", ANY),),
        build=lambda p, s: R.Collect(), macs=NO_MACS, tags=("sequence_out",),
    ),
    LayerSpec(
        type="Last", title="Last step", category=CAT,
        doc="Ends a recurrent region: the value of the final step (many-to-one).",
        inputs=(Port("x", ANY, "a per-step value"),), outputs=(Port("out", ANY),),
        build=lambda p, s: R.Last(), macs=NO_MACS, tags=("sequence_out",),
    ),
    _fused("RNN", "RNN (fused)", 1,
           "Elman RNN over a (T, D) sequence: h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) "
           "with f = tanh or ReLU. init=identity is the IRNN: W_hh = I, biases 0 (use ReLU).",
           extra=(Param("nonlinearity", "choice", "tanh", "f", choices=("tanh", "relu")),
                  Param("init", "choice", "default", "default (uniform) or identity (IRNN)",
                        choices=("default", "identity")))),
    _fused("LSTM", "LSTM (fused)", 4,
           "Long short-term memory over a (T, D) sequence: gates i, f, o = s(W x_t + U "
           "h_{t-1} + b), g = tanh(...), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)."),
    _fused("GRU", "GRU (fused)", 3,
           "Gated recurrent unit (torch's form): r, z = s(W x_t + U h_{t-1} + b), "
           "n = tanh(W_n x_t + b_in + r * (U_n h_{t-1} + b_hn)), h_t = (1 - z) n + z h_{t-1}."),
    LayerSpec(
        type="LeakyRNN", title="Leaky-integration units", category=CAT,
        doc="h_t = a h_{t-1} + (1 - a) f(W h_{t-1} + U x_t + b): a near 1 keeps a slow, "
            "long memory.",
        inputs=(Port("x", FLOAT, "the sequence (T, D)", ranks=(2,)),),
        outputs=(Port("out", FLOAT), Port("h", FLOAT, "final state (H)")),
        params=(
            Param("hidden_size", "int", 32, "units H", min=1),
            Param("leak", "float", 0.5, "a, the fraction of the old state kept", min=0.0,
                  max=1.0),
            Param("activation", "choice", "tanh", "f", choices=("tanh", "relu")),
            Param("return_sequences", "bool", True, "every step or only the final one"),
        ),
        build=_leaky_build, tags=("recurrent", "sequence"),
        macs=lambda p, s, o: s["x"][0] * p["hidden_size"] * (s["x"][1] + p["hidden_size"]),
    ),
    LayerSpec(
        type="EchoState", title="Echo-state reservoir", category=CAT,
        doc="h_t = tanh(W_in x_t + W h_{t-1}) with random sparse W rescaled to the chosen "
            "spectral radius and random W_in; both frozen (not trained): train only what "
            "follows (reservoir computing).",
        inputs=(Port("x", FLOAT, "the sequence (T, D)", ranks=(2,)),),
        outputs=(Port("out", FLOAT), Port("h", FLOAT, "final state (units)")),
        params=(
            Param("units", "int", 100, "reservoir size", min=1),
            Param("spectral_radius", "float", 0.9, "largest |eigenvalue| of W (below 1 for "
                  "the echo-state property)", min=0.0),
            Param("density", "float", 0.1, "fraction of non-zero recurrent weights", min=0.0,
                  max=1.0),
            Param("input_scaling", "float", 1.0, "W_in is uniform in [-s, s]", min=0.0),
            Param("seed", "int", 0, "random seed of the reservoir", min=0),
            Param("return_sequences", "bool", True, "every step or only the final one"),
        ),
        build=_esn_build, tags=("recurrent", "sequence"),
        macs=lambda p, s, o: s["x"][0] * p["units"] * (s["x"][1] + p["units"]),
    ),
)


# Node types of an unrolled view (runtime.recurrent.unroll); usable in any graph.
MAX_STEPS = 4096


def _stack_ports(p):
    k = p.get("inputs")
    k = k if isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_STEPS else 2
    return tuple(Port(f"x{i + 1}", ANY) for i in range(k))


def _build_stack(p, s):
    first = s[next(iter(s))]
    for n, sh in s.items():
        if tuple(sh) != tuple(first):
            raise ShapeError(f"{n}: expected {fmt_shape(first)} like x1, received {fmt_shape(sh)}")
    return R.StackSteps()


def _build_select(p, s):
    if not s["seq"] or p["step"] >= s["seq"][0]:
        raise ShapeError(f"seq: step {p['step']} does not exist in a sequence of shape "
                         f"{fmt_shape(s['seq'])}")
    return R.SelectStep(p["step"])


def _build_initial(p, s):
    if p["init"] == "input" and tuple(s["init"]) != tuple(p["shape"]):
        raise ShapeError(f"init: expected {fmt_shape(p['shape'])}, received "
                         f"{fmt_shape(s['init'])}")
    return R.InitialState(p["shape"], p["init"])


register(
    LayerSpec(
        type="SelectStep", title="Select step", category=CAT,
        doc="Step t of a (T, ...) sequence: (T, ...) -> (...). The unrolled view's x_t.",
        inputs=(Port("seq", ANY, "a sequence (T, ...)"),), outputs=(Port("out", ANY),),
        params=(Param("step", "int", 0, "the time step t (from 0)", min=0),),
        build=_build_select, macs=NO_MACS,
    ),
    LayerSpec(
        type="StackSteps", title="Stack steps", category=CAT,
        doc="Stacks k per-step values into a sequence (k, ...). The unrolled view's Collect.",
        inputs=_stack_ports, outputs=(Port("out", ANY),),
        params=(Param("inputs", "int", 2, "number of steps k", min=1, max=MAX_STEPS),),
        build=_build_stack, macs=NO_MACS,
    ),
    LayerSpec(
        type="InitialState", title="Initial state", category=CAT,
        doc="The state before the first step (the unrolled view's Delay at t = 0): the init "
            "input, zeros, or a learned vector; with zeros/learned the input only gives the "
            "batch size.",
        inputs=lambda p: (Port("init", FLOAT, "the initial state"),) if p.get("init") == "input"
        else (Port("like", ANY, "any tensor of the batch (gives the batch size)"),),
        outputs=(Port("out", FLOAT),),
        params=(
            Param("shape", "ints", [16], "per-sample shape of the state", min=1, min_items=1),
            Param("init", "choice", "zeros", "zeros, learned, or the init input",
                  choices=("zeros", "learned", "input")),
        ),
        build=_build_initial, macs=NO_MACS,
    ),
)
