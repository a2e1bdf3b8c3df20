"""Recurrent graphs: hand-drawn cells equal torch's fused layers (outputs and gradients),
weights exist once whatever the sequence length, validation of cycles and time axes,
per-step analysis, unrolling, fused layers, the examples."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from runtime import GraphDocument, analyze, build_module, load_graph, validate
from runtime import recurrent
from runtime.cells import add_gru_cell, add_lstm_cell, add_rnn_cell
from runtime.cli import main as cli_main
from runtime.compiler import example_inputs
from tests.builders import hand_drawn_cell

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
T, D, H, N = 6, 3, 5, 4
ATOL = RTOL = 1e-5  # hand-drawn cells equal torch's layers to 1e-5 (float32 holds)


def cell_doc(add, out="collect", steps=T) -> tuple[GraphDocument, dict]:
    return hand_drawn_cell(add, steps=steps, features=D, hidden=H, out=out)


def _dense(m, loop, nid):
    return getattr(loop.cell, nid)


def copy_lstm(loop, ref: nn.LSTM):
    """Cell Dense over [h, x] <- torch's (W_hh | W_ih), bias b_ih + b_hh; gates i, f, g, o."""
    with torch.no_grad():
        for k, g in enumerate("ifgo"):
            lin = getattr(loop.cell, f"w_{g}")
            rows = slice(k * H, (k + 1) * H)
            lin.weight.copy_(torch.cat([ref.weight_hh_l0[rows], ref.weight_ih_l0[rows]], 1))
            lin.bias.copy_(ref.bias_ih_l0[rows] + ref.bias_hh_l0[rows])


def lstm_grads_match(loop, ref):
    for k, g in enumerate("ifgo"):
        lin = getattr(loop.cell, f"w_{g}")
        rows = slice(k * H, (k + 1) * H)
        want = torch.cat([ref.weight_hh_l0.grad[rows], ref.weight_ih_l0.grad[rows]], 1)
        torch.testing.assert_close(lin.weight.grad, want, atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(lin.bias.grad, ref.bias_ih_l0.grad[rows], atol=ATOL, rtol=RTOL)


def copy_gru(loop, ref: nn.GRU):
    """torch rows r, z, n. Gates z, r: Dense over [h, x]; n: W_n x + b_in and U_n h + b_hn."""
    with torch.no_grad():
        for k, g in ((0, "r"), (1, "z")):
            rows = slice(k * H, (k + 1) * H)
            lin = getattr(loop.cell, f"w_{g}")
            lin.weight.copy_(torch.cat([ref.weight_hh_l0[rows], ref.weight_ih_l0[rows]], 1))
            lin.bias.copy_(ref.bias_ih_l0[rows] + ref.bias_hh_l0[rows])
        rows = slice(2 * H, 3 * H)
        loop.cell.w_xn.weight.copy_(ref.weight_ih_l0[rows])
        loop.cell.w_xn.bias.copy_(ref.bias_ih_l0[rows])
        loop.cell.u_hn.weight.copy_(ref.weight_hh_l0[rows])
        loop.cell.u_hn.bias.copy_(ref.bias_hh_l0[rows])


def gru_grads_match(loop, ref):
    """Every gradient: W and b of the z and r gates (torch's b_ih + b_hh of those rows
    have one gradient, the cell's single bias), W_n, b_in, U_n, b_hn."""
    for k, g in ((0, "r"), (1, "z")):
        rows = slice(k * H, (k + 1) * H)
        lin = getattr(loop.cell, f"w_{g}")
        want = torch.cat([ref.weight_hh_l0.grad[rows], ref.weight_ih_l0.grad[rows]], 1)
        torch.testing.assert_close(lin.weight.grad, want, atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(lin.bias.grad, ref.bias_ih_l0.grad[rows], atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(lin.bias.grad, ref.bias_hh_l0.grad[rows], atol=ATOL, rtol=RTOL)
    rows = slice(2 * H, 3 * H)
    torch.testing.assert_close(loop.cell.w_xn.weight.grad, ref.weight_ih_l0.grad[rows],
                               atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(loop.cell.w_xn.bias.grad, ref.bias_ih_l0.grad[rows],
                               atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(loop.cell.u_hn.weight.grad, ref.weight_hh_l0.grad[rows],
                               atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(loop.cell.u_hn.bias.grad, ref.bias_hh_l0.grad[rows],
                               atol=ATOL, rtol=RTOL)


def copy_rnn(loop, ref: nn.RNN):
    with torch.no_grad():
        loop.cell.w.weight.copy_(torch.cat([ref.weight_hh_l0, ref.weight_ih_l0], 1))
        loop.cell.w.bias.copy_(ref.bias_ih_l0 + ref.bias_hh_l0)


def rnn_grads_match(loop, ref):
    want = torch.cat([ref.weight_hh_l0.grad, ref.weight_ih_l0.grad], 1)
    torch.testing.assert_close(loop.cell.w.weight.grad, want, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(loop.cell.w.bias.grad, ref.bias_hh_l0.grad, atol=ATOL, rtol=RTOL)


CELLS = {
    "rnn": (add_rnn_cell, lambda: nn.RNN(D, H, batch_first=True), copy_rnn, rnn_grads_match),
    "lstm": (add_lstm_cell, lambda: nn.LSTM(D, H, batch_first=True), copy_lstm,
             lstm_grads_match),
    "gru": (add_gru_cell, lambda: nn.GRU(D, H, batch_first=True), copy_gru, gru_grads_match),
}


@pytest.mark.parametrize("lower", [pytest.param(False, marks=pytest.mark.slow), True],
                         ids=["loop", "lowered"])
@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("out", ["collect", pytest.param("last", marks=pytest.mark.slow)])
def test_hand_drawn_cell_equals_torch(kind, lower, out):
    add, make_ref, copy, grads_match = CELLS[kind]
    torch.manual_seed(0)
    doc, _ = cell_doc(add, out)
    assert validate(doc) == []
    with recurrent.lowering(lower):
        m = build_module(doc, mode="predict")
    loop = m.step_loop
    expect_lowered = lower
    assert isinstance(loop, recurrent.RecurrentLoop) != expect_lowered
    ref = make_ref()
    copy(loop, ref)
    for steps in (T, T + 3):  # any length at run time
        x = torch.randn(N, steps, D, requires_grad=True)
        x_ref = x.detach().clone().requires_grad_(True)
        y = m(x)
        y_ref, h_n = ref(x_ref)
        y_ref = y_ref if out == "collect" else (h_n[0] if kind == "lstm" else h_n)[0]
        outputs_and_input_grads_match(m, ref, y, y_ref, [(x, x_ref)])
        grads_match(loop, ref)


def outputs_and_input_grads_match(m, ref, y, y_ref, inputs) -> None:
    """Outputs equal; after the same random weighting of them, each (ours, torch's) input
    pair has the same gradient."""
    torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=RTOL)
    w = torch.randn_like(y)
    m.zero_grad()
    ref.zero_grad()
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    for got, want in inputs:
        torch.testing.assert_close(got.grad, want.grad, atol=ATOL, rtol=RTOL)


LOWERED = {"rnn": recurrent.LoweredRNN, "lstm": recurrent.LoweredLSTM,
           "gru": recurrent.LoweredGRU}


def init_cell_doc(kind, out) -> GraphDocument:
    """The cell of ``kind`` with Delay init=input: h_0 (and C_0) are inputs of the graph."""
    d = GraphDocument("cell with h0")
    d.add_node("SequenceInput", {"steps": T, "features": D}, node_id="x")
    d.add_node("VectorInput", {"features": H}, node_id="h0")
    init = [("h0", "out")]
    if kind == "lstm":
        d.add_node("VectorInput", {"features": H}, node_id="c0")
        init.append(("c0", "out"))
    ids = CELLS[kind][0](d, ("x", "out"), H, out=out, init_from=init)
    d.add_node("Output", node_id="y")
    d.connect(ids["seq_out" if out == "collect" else "last"], "out", "y", "x")
    return d


@pytest.mark.slow
@pytest.mark.parametrize("lower", [False, True], ids=["loop", "lowered"])
@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("out", ["collect", "last"])
def test_hand_drawn_cell_with_initial_state_input_equals_torch(kind, lower, out):
    """Delay init=input: the plain loop and the fused kernel it is lowered to (the Elman
    cell too) compute torch's layer started from the given h_0 (C_0); outputs and every
    gradient, the initial states' included, agree."""
    _, make_ref, copy, grads_match = CELLS[kind]
    torch.manual_seed(3)
    doc = init_cell_doc(kind, out)
    assert validate(doc) == []
    with recurrent.lowering(lower):
        m = build_module(doc, mode="predict")
    loop = m.step_loop
    assert isinstance(loop, LOWERED[kind] if lower else recurrent.RecurrentLoop)
    ref = make_ref()
    copy(loop, ref)
    n_states = 2 if kind == "lstm" else 1
    for steps in (T, T + 3):
        x = torch.randn(N, steps, D, requires_grad=True)
        states = [torch.randn(N, H, requires_grad=True) for _ in range(n_states)]
        x_ref, *states_ref = [t.detach().clone().requires_grad_(True) for t in [x, *states]]
        y = m(x, *states)
        hx = tuple(s.unsqueeze(0) for s in states_ref)
        y_ref, h_n = ref(x_ref, hx if kind == "lstm" else hx[0])
        y_ref = y_ref if out == "collect" else (h_n[0] if kind == "lstm" else h_n)[0]
        outputs_and_input_grads_match(m, ref, y, y_ref, [(x, x_ref), *zip(states, states_ref)])
        assert all(s.grad.abs().sum() > 0 for s in states)
        grads_match(loop, ref)


def test_one_parameter_set_whatever_the_length():
    doc, _ = cell_doc(add_lstm_cell)
    with recurrent.lowering(False):
        m = build_module(doc, mode="predict")
    params = list(m.parameters())
    assert len(params) == 8  # 4 Dense layers: weight + bias, once
    assert sum(p.numel() for p in params) == analyze(doc).total_params == 4 * (H * (H + D) + H)
    for steps in (2, 11):
        assert m(torch.randn(N, steps, D)).shape == (N, steps, H)
    assert len(list(m.parameters())) == 8


def test_unrolled_document_computes_the_same():
    doc, _ = cell_doc(add_lstm_cell, steps=4)
    torch.manual_seed(1)
    with recurrent.lowering(False):
        rolled = build_module(doc, mode="predict")
    flat = recurrent.unroll(doc, 4)
    assert validate(flat) == []
    assert flat.metadata["unrolled_steps"] == 4
    mapping = flat.metadata["unrolled_from"]
    assert mapping["w_f_t3"] == "w_f" and mapping["seq_out"] == "seq_out"
    assert sum(1 for v in mapping.values() if v == "w_f") == 4
    unrolled = build_module(flat, mode="predict")
    with torch.no_grad():
        for name, mod in unrolled.named_children():
            rolled_id = mapping.get(name)
            if isinstance(mod, nn.Linear):
                src = getattr(rolled.step_loop.cell, rolled_id)
                mod.weight.copy_(src.weight)
                mod.bias.copy_(src.bias)
    x = torch.randn(N, 4, D)
    torch.testing.assert_close(unrolled(x), rolled(x), atol=ATOL, rtol=RTOL)
    # a view shorter than the analysis length of an example: inputs and targets follow
    view = recurrent.unroll(load_graph(EXAMPLES / "char_lstm_cell.json"), 3)
    assert validate(view) == []
    positions = [n.position for n in view]
    assert len(set(positions)) == len(positions)


def test_truncated_bptt_cuts_the_gradient():
    doc, ids = cell_doc(add_rnn_cell, out="last")
    doc.set_param(ids["step"], "tbptt", 2)
    m = build_module(doc, mode="predict")
    assert isinstance(m.step_loop, recurrent.RecurrentLoop)  # tbptt is never lowered
    x = torch.randn(N, 6, D, requires_grad=True)
    m(x).sum().backward()
    g = x.grad.abs().sum(dim=(0, 2))
    assert (g[:4] == 0).all() and (g[4:] > 0).all()  # only the last chunk of 2 steps


def test_reverse_region_is_the_backward_direction():
    doc, ids = cell_doc(add_rnn_cell)
    doc.set_param(ids["step"], "reverse", True)
    torch.manual_seed(0)
    m = build_module(doc, mode="predict")
    ref = nn.RNN(D, H, batch_first=True, bidirectional=True)
    with torch.no_grad():
        m.step_loop.cell.w.weight.copy_(torch.cat([ref.weight_hh_l0_reverse,
                                                   ref.weight_ih_l0_reverse], 1))
        m.step_loop.cell.w.bias.copy_(ref.bias_ih_l0_reverse + ref.bias_hh_l0_reverse)
    x = torch.randn(N, T, D)
    torch.testing.assert_close(m(x), ref(x)[0][..., H:], atol=ATOL, rtol=RTOL)


# ---- validation ------------------------------------------------------------------------


def delay_free_cycle() -> GraphDocument:
    d = GraphDocument("bad")
    d.add_node("VectorInput", {"features": 4}, node_id="x")
    d.add_node("Add", node_id="mix")
    d.add_node("Dense", {"units": 4}, node_id="fc")
    d.add_node("Tanh", node_id="act")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "mix", "x1")
    d.connect("mix", "out", "fc", "x")
    d.connect("fc", "out", "act", "x")
    d.connect("act", "out", "mix", "x2")
    d.connect("act", "out", "y", "x")
    return d


def test_delay_free_cycle_is_an_error_naming_the_cycle(tmp_path, capsys):
    d = delay_free_cycle()
    errs = [x for x in validate(d) if x.is_error]
    assert [x.code for x in errs] == ["cycle"]
    assert set(errs[0].nodes) == {"mix", "fc", "act"}
    assert all(n in errs[0].message for n in ("mix", "fc", "act"))
    from runtime import save_graph

    path = tmp_path / "cycle.json"
    save_graph(d, path)
    assert cli_main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cycle without a Delay" in err and "mix" in err and "act" in err


def test_cycle_through_a_delay_is_legal():
    doc, _ = cell_doc(add_rnn_cell)
    assert validate(doc) == []


def test_delay_outside_a_region_is_an_error():
    d = GraphDocument()
    d.add_node("VectorInput", {"features": 4}, node_id="x")
    d.add_node("Add", node_id="mix")
    d.add_node("Delay", {"shape": [4]}, node_id="state")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "mix", "x1")
    d.connect("state", "out", "mix", "x2")
    d.connect("mix", "out", "state", "x")
    d.connect("mix", "out", "y", "x")
    msgs = [x for x in validate(d) if x.is_error]
    assert any("state" in x.message and "not inside a recurrent region" in x.message
               for x in msgs)


def test_per_step_value_into_a_loss_is_an_error():
    d = GraphDocument()
    d.add_node("SequenceInput", {"steps": 5, "features": 3}, node_id="x")
    d.add_node("SequenceStep", node_id="step")
    d.add_node("Dense", {"units": 2}, node_id="fc")
    d.add_node("Target", {"num_classes": 2}, node_id="t")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect("x", "out", "step", "seq")
    d.connect("step", "out", "fc", "x")
    d.connect("fc", "out", "loss", "pred")
    d.connect("t", "out", "loss", "target")
    errs = [x for x in validate(d) if x.is_error]
    assert errs and errs[0].node_id == "loss" and "Collect" in errs[0].message


def test_time_axes_must_agree():
    d = GraphDocument()
    d.add_node("SequenceInput", {"steps": 5, "features": 3}, node_id="a")
    d.add_node("SequenceInput", {"steps": 7, "features": 3}, node_id="b")
    d.add_node("SequenceStep", node_id="sa")
    d.add_node("SequenceStep", node_id="sb")
    d.add_node("Add", node_id="mix")
    d.add_node("Collect", node_id="col")
    d.add_node("Output", node_id="y")
    for s, t in (("a", "sa"), ("b", "sb")):
        d.connect(s, "out", t, "seq")
    d.connect("sa", "out", "mix", "x1")
    d.connect("sb", "out", "mix", "x2")
    d.connect("mix", "out", "col", "x")
    d.connect("col", "out", "y", "x")
    errs = [x for x in validate(d) if x.is_error]
    assert [x.code for x in errs] == ["time_axis"] and errs[0].node_id == "mix"
    assert "7" in errs[0].message and "5" in errs[0].message


def test_analysis_is_per_step_and_per_sequence():
    doc, _ = cell_doc(add_lstm_cell)
    a = analyze(doc)
    assert a.nodes["w_f"].output_shape == (H,) and a.nodes["w_f"].steps == T
    assert a.nodes["seq_out"].output_shape == (T, H)
    assert a.nodes["w_f"].macs == T * H * (H + D)  # MACs per sequence of the analysis length
    assert a.nodes["w_f"].params == H * (H + D) + H  # counted once
    assert a.nodes["h_prev"].output_shape == (H,)


# ---- fused layers ------------------------------------------------------------------------


def fused_doc(kind, **params) -> GraphDocument:
    d = GraphDocument(kind)
    d.add_node("SequenceInput", {"steps": T, "features": D}, node_id="x")
    d.add_node(kind, {"hidden_size": H, **params}, node_id="rnn")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "rnn", "x")
    d.connect("rnn", "out", "y", "x")
    return d


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_fused_layers(kind):
    d = fused_doc(kind, num_layers=2, bidirectional=True, dropout=0.1, return_sequences=False)
    assert validate(d) == []
    a = analyze(d)
    assert a.nodes["rnn"].output_shape == (2 * H,)
    m = build_module(d, mode="predict")
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    assert a.total_params == sum(p.numel() for p in m.parameters())
    assert a.nodes["rnn"].macs == T * 2 * gates * H * ((D + H) + (2 * H + H))
    m.eval()
    x = torch.randn(N, T, D)
    y = m(x)
    out, _ = m.rnn.rnn(x)
    torch.testing.assert_close(y[:, :H], out[:, -1, :H])  # forward: the last step
    torch.testing.assert_close(y[:, H:], out[:, 0, H:])  # backward: the first step


FUSED_TORCH = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)], ids=["1", "2bi"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_fused_layer_initial_state_input_equals_torch(kind, layers, bidirectional):
    """initial_state=input: h0 (and c0) start every layer and direction; out, h, c and
    every gradient (the initial states' included) equal torch's layer given that hx."""
    torch.manual_seed(4)
    lstm = kind == "LSTM"
    d = GraphDocument(kind)
    d.add_node("SequenceInput", {"steps": T, "features": D}, node_id="x")
    d.add_node(kind, {"hidden_size": H, "initial_state": "input", "num_layers": layers,
                      "bidirectional": bidirectional}, node_id="rnn")
    d.connect("x", "out", "rnn", "x")
    for port in ("h0", "c0") if lstm else ("h0",):
        d.add_node("VectorInput", {"features": H}, node_id=port)
        d.connect(port, "out", "rnn", port)
    for port in ("out", "h", "c") if lstm else ("out", "h"):
        d.add_node("Output", node_id=f"y_{port}")
        d.connect("rnn", port, f"y_{port}", "x")
    assert validate(d) == []
    m = build_module(d, mode="predict")
    ref = FUSED_TORCH[kind](D, H, num_layers=layers, bidirectional=bidirectional,
                            batch_first=True)
    ref.load_state_dict(m.rnn.rnn.state_dict())
    dirs = 2 if bidirectional else 1
    rows = layers * dirs
    x = torch.randn(N, T, D, requires_grad=True)
    states = [torch.randn(N, H, requires_grad=True) for _ in range(2 if lstm else 1)]
    x_ref, *states_ref = [t.detach().clone().requires_grad_(True) for t in [x, *states]]
    ys = m(x, *states)
    hx = [s.unsqueeze(0).expand(rows, N, H) for s in states_ref]
    out, state = ref(x_ref, tuple(hx) if lstm else hx[0])
    finals = state if lstm else (state,)
    want = [out] + [torch.cat([f[i - dirs] for i in range(dirs)], -1) for f in finals]
    assert len(ys) == len(want)
    for y, y_ref in zip(ys, want):
        torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=RTOL)
    ws = [torch.randn_like(y) for y in ys]
    sum((y * w).sum() for y, w in zip(ys, ws)).backward()
    sum((y * w).sum() for y, w in zip(want, ws)).backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=ATOL, rtol=RTOL)
    for s, s_ref in zip(states, states_ref):
        assert s.grad.abs().sum() > 0
        torch.testing.assert_close(s.grad, s_ref.grad, atol=ATOL, rtol=RTOL)
    mine = dict(m.rnn.rnn.named_parameters())
    for name, p in ref.named_parameters():
        torch.testing.assert_close(mine[name].grad, p.grad, atol=ATOL, rtol=RTOL)


def test_irnn_identity_init():
    d = fused_doc("RNN", nonlinearity="relu", init="identity")
    m = build_module(d, mode="predict")
    assert torch.equal(m.rnn.rnn.weight_hh_l0, torch.eye(H))
    assert not m.rnn.rnn.bias_hh_l0.any()


def test_echo_state_reservoir_is_frozen_with_the_chosen_spectral_radius():
    d = fused_doc("EchoState", units=50, spectral_radius=0.8, density=0.2)
    del d  # hidden_size is not an EchoState parameter: build it directly
    d = GraphDocument("esn")
    d.add_node("SequenceInput", {"steps": T, "features": 1}, node_id="x")
    d.add_node("EchoState", {"units": 50, "spectral_radius": 0.8, "density": 0.2}, node_id="esn")
    d.add_node("Dense", {"units": 1}, node_id="readout")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "esn", "x")
    d.connect("esn", "out", "readout", "x")
    d.connect("readout", "out", "y", "x")
    assert validate(d) == []
    a = analyze(d)
    assert a.nodes["esn"].params == 0 and a.total_params == 51
    m = build_module(d, mode="predict")
    w = m.esn.rnn.weight_hh_l0
    assert not w.requires_grad
    assert abs(torch.linalg.eigvals(w.double()).abs().max().item() - 0.8) < 1e-4
    assert 0.1 < (w != 0).float().mean().item() < 0.3
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["readout.weight",
                                                                        "readout.bias"]


def test_leaky_units_follow_the_formula():
    d = GraphDocument("leaky")
    d.add_node("SequenceInput", {"steps": T, "features": D}, node_id="x")
    d.add_node("LeakyRNN", {"hidden_size": H, "leak": 0.7}, node_id="rnn")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "rnn", "x")
    d.connect("rnn", "out", "y", "x")
    m = build_module(d, mode="predict")
    x = torch.randn(N, T, D)
    y = m(x)
    cell = m.rnn
    h = torch.zeros(N, H)
    for t in range(T):
        h = 0.7 * h + 0.3 * torch.tanh(cell.W(h) + cell.U(x[:, t]))
        torch.testing.assert_close(y[:, t], h)


def test_fused_truncated_bptt():
    d = fused_doc("LSTM", tbptt=2, return_sequences=False)
    m = build_module(d, mode="predict")
    x = torch.randn(N, 6, D, requires_grad=True)
    m(x).sum().backward()
    g = x.grad.abs().sum(dim=(0, 2))
    assert (g[:4] == 0).all() and (g[4:] > 0).all()


# ---- examples -------------------------------------------------------------------------------

RECURRENT_EXAMPLES = ["char_lstm", "char_lstm_cell", "gru_cell", "rnn_adding_problem",
                      "bigru_tagger", "seq2seq", "echo_state_sine"]


@pytest.mark.slow
@pytest.mark.parametrize("name", RECURRENT_EXAMPLES)
def test_example_validates_summarises_and_trains_a_step(name, capsys):
    path = EXAMPLES / f"{name}.json"
    doc = load_graph(path)
    assert [d for d in validate(doc) if d.is_error] == []
    assert cli_main(["summary", str(path)]) == 0
    assert "total" in capsys.readouterr().out
    meta = json.loads(path.read_text())["metadata"]
    assert meta["name"] and meta["description"]
    m = build_module(doc)
    out = m(*example_inputs(doc, batch=3, mode="train"))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


def _with_steps(doc: GraphDocument, steps: int) -> GraphDocument:
    doc = doc.copy()
    for n in doc:
        if "steps" in n.params:
            doc.set_param(n.id, "steps", steps)
        if n.type == "Target" and n.params["shape"]:
            doc.set_param(n.id, "shape", [steps] + list(n.params["shape"][1:]))
    return doc


@pytest.mark.slow
@pytest.mark.parametrize("name", ["char_lstm", "char_lstm_cell"])
def test_char_models_take_any_length_with_one_parameter_set(name):
    doc = load_graph(EXAMPLES / f"{name}.json")
    m = build_module(doc)
    n_tensors = len(list(m.parameters()))
    for steps in (7, 19):
        inputs = example_inputs(_with_steps(doc, steps), batch=2, mode="train")
        assert inputs[0].shape[1] == steps
        out = m(*inputs)
        assert torch.isfinite(out["loss"])
        assert len(list(m.parameters())) == n_tensors
    if name == "char_lstm_cell":
        with recurrent.lowering(False):
            plain = build_module(doc)
        assert len(list(plain.parameters())) == n_tensors
        plain.load_state_dict(m.state_dict())
        inputs = example_inputs(doc, batch=2, mode="train")
        torch.testing.assert_close(plain(*inputs)["loss"], m(*inputs)["loss"])


# ---- export: ONNX (legacy exporter, dynamic batch and sequence axes) and torch.export ---------
# runtime/export/ owns the product's exporters and their checks;
# this helper checks the recurrent examples on the full grid of two batch sizes x two
# sequence lengths with onnxruntime.

SEQ_TYPES = ("SequenceInput", "TokenInput")


def export_onnx_dynamic(doc: GraphDocument, path: Path):
    """Export the predict module with every batch and time axis dynamic; returns
    (module, input names, output names)."""
    from runtime.compiler import signature

    m = build_module(doc, mode="predict").eval()
    sig = signature(doc)
    names_in = list(sig.inputs)
    names_out = [f"{o}_out" for o in sig.outputs]
    example = example_inputs(doc, batch=2)
    longer = example_inputs(_with_steps(doc, 11), batch=2)
    with torch.no_grad():
        ys, ys_long = m(*example), m(*longer)
    ys = ys if isinstance(ys, tuple) else (ys,)
    ys_long = ys_long if isinstance(ys_long, tuple) else (ys_long,)
    axes = {}
    for n in names_in:
        axes[n] = {0: "batch"}
        if doc.nodes[n].type in SEQ_TYPES:
            axes[n][1] = f"steps_{n}"
    for i, (n, a, b) in enumerate(zip(names_out, ys, ys_long)):
        axes[n] = {0: "batch"}
        axes[n].update({d: f"len_{i}_{d}" for d in range(1, a.dim()) if a.shape[d] != b.shape[d]})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, example, str(path), dynamo=False, input_names=names_in,
                          output_names=names_out, dynamic_axes=axes, opset_version=17)
    return m, names_in, names_out


@pytest.mark.slow
@pytest.mark.parametrize("name", RECURRENT_EXAMPLES)
def test_onnx_export_with_dynamic_batch_and_length(name, tmp_path):
    import onnxruntime as ort

    doc = load_graph(EXAMPLES / f"{name}.json")
    path = tmp_path / f"{name}.onnx"
    m, names_in, names_out = export_onnx_dynamic(doc, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for steps in (5, 13):
        for batch in (1, 3):
            xs = example_inputs(_with_steps(doc, steps), batch=batch, seed=steps)
            with torch.no_grad():
                want = m(*xs)
            want = want if isinstance(want, tuple) else (want,)
            got = sess.run(names_out, {n: x.numpy() for n, x in zip(names_in, xs)})
            for w, g in zip(want, got):
                assert w.shape[0] == batch
                torch.testing.assert_close(torch.from_numpy(g), w, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", RECURRENT_EXAMPLES)
def test_torch_export_keeps_batch_and_length_dynamic(name):
    """While torch.export traces, time loops (hand-drawn and fused) run as torch scans."""
    from torch.export import Dim

    from runtime.compiler import signature

    doc = load_graph(EXAMPLES / f"{name}.json")
    m = build_module(doc, mode="predict").eval()
    batch = Dim("batch", min=1, max=4096)
    dims = tuple({0: batch, **({1: Dim(f"steps_{n}", min=2, max=4096)}
                               if doc.nodes[n].type in SEQ_TYPES else {})}
                 for n in signature(doc).inputs)
    ep = torch.export.export(m, example_inputs(doc, batch=2), dynamic_shapes=dims)
    assert len(ep.state_dict) == len(m.state_dict())  # one parameter set
    exported = ep.module()
    for steps in (5, 13):
        for n in (1, 3):
            xs = example_inputs(_with_steps(doc, steps), batch=n, seed=steps)
            with torch.no_grad():
                torch.testing.assert_close(exported(*xs), m(*xs), atol=ATOL, rtol=RTOL)


# ---- hand-written twins of the recurrent examples: same weights, outputs and gradients ----


def _h_first(doc: GraphDocument, concat: str, h_delay: str) -> bool:
    """Whether the cell's Concat puts h_{t-1} before x_t (then a gate's W is [W_hh | W_ih])."""
    return next(e.source for e in doc.in_edges(concat) if e.target_port == "x1") == h_delay


def _split(w, hidden, h_first):
    """A gate's Dense weight over the Concat -> (W_ih, W_hh)."""
    return (w[:, hidden:], w[:, :hidden]) if h_first else (w[:, :-hidden], w[:, -hidden:])


def _grads_equal(pairs):
    for got, want in pairs:
        assert got is not None and want is not None
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)


def _copy_of(module: nn.Module) -> nn.Module:
    import copy

    twin = copy.deepcopy(module)
    twin.zero_grad(set_to_none=True)
    return twin


@pytest.mark.slow
@pytest.mark.parametrize("lower", [False, True], ids=["loop", "lowered"])
def test_char_lstm_cell_equals_embedding_lstm_linear(lower):
    """The example, end to end, against Embedding -> nn.LSTM -> Linear -> cross-entropy
    written by hand with the compiled model's weights: loss and every gradient."""
    doc = load_graph(EXAMPLES / "char_lstm_cell.json")
    with recurrent.lowering(lower):
        m = build_module(doc)
    cell = m.step_loop.cell
    hidden = cell.w_f.out_features
    h_first = _h_first(doc, "hx", "h_prev")
    emb, scores = _copy_of(m.embed), _copy_of(m.scores)
    lstm = nn.LSTM(emb.embedding_dim, hidden, batch_first=True)
    gates = [getattr(cell, f"w_{g}") for g in "ifgo"]  # torch's gate order
    with torch.no_grad():
        for k, w in enumerate(gates):
            rows = slice(k * hidden, (k + 1) * hidden)
            lstm.weight_ih_l0[rows], lstm.weight_hh_l0[rows] = _split(w.weight, hidden, h_first)
            lstm.bias_ih_l0[rows] = w.bias
            lstm.bias_hh_l0[rows] = 0
    chars, label = example_inputs(doc, batch=3, mode="train", seed=4)
    loss = m(chars, label)["loss"]
    logits = scores(lstm(emb(chars))[0])
    want = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), label.reshape(-1))
    torch.testing.assert_close(loss, want, atol=ATOL, rtol=RTOL)
    loss.backward()
    want.backward()
    pairs = [(m.embed.weight.grad, emb.weight.grad), (m.scores.weight.grad, scores.weight.grad),
             (m.scores.bias.grad, scores.bias.grad)]
    for k, w in enumerate(gates):
        rows = slice(k * hidden, (k + 1) * hidden)
        g_ih, g_hh = _split(w.weight.grad, hidden, h_first)
        pairs += [(g_ih, lstm.weight_ih_l0.grad[rows]), (g_hh, lstm.weight_hh_l0.grad[rows]),
                  (w.bias.grad, lstm.bias_ih_l0.grad[rows])]
    _grads_equal(pairs)


@pytest.mark.parametrize("lower", [False, True], ids=["loop", "lowered"])
def test_gru_cell_equals_gru_linear(lower):
    """gru_cell.json (a GRU drawn in torch's form, last step, Dense, cross-entropy) against
    nn.GRU -> Linear -> cross-entropy written by hand: loss and every gradient."""
    doc = load_graph(EXAMPLES / "gru_cell.json")
    with recurrent.lowering(lower):
        m = build_module(doc)
    assert isinstance(m.step_loop, recurrent.LoweredGRU if lower else recurrent.RecurrentLoop)
    cell = m.step_loop.cell
    hidden = cell.u_hn.out_features
    h_first = _h_first(doc, "hx", "h_prev")
    scores = _copy_of(m.scores)
    gru = nn.GRU(cell.w_xn.in_features, hidden, batch_first=True)
    with torch.no_grad():
        for k, w in enumerate((cell.w_r, cell.w_z)):  # torch's rows: r, z, n
            rows = slice(k * hidden, (k + 1) * hidden)
            gru.weight_ih_l0[rows], gru.weight_hh_l0[rows] = _split(w.weight, hidden, h_first)
            gru.bias_ih_l0[rows] = w.bias
            gru.bias_hh_l0[rows] = 0
        rows = slice(2 * hidden, 3 * hidden)
        gru.weight_ih_l0[rows], gru.bias_ih_l0[rows] = cell.w_xn.weight, cell.w_xn.bias
        gru.weight_hh_l0[rows], gru.bias_hh_l0[rows] = cell.u_hn.weight, cell.u_hn.bias
    signal, label = example_inputs(doc, batch=5, mode="train", seed=6)
    signal.requires_grad_(True)
    signal_twin = signal.detach().clone().requires_grad_(True)
    loss = m(signal, label)["loss"]
    want = nn.functional.cross_entropy(scores(gru(signal_twin)[1][0]), label)
    torch.testing.assert_close(loss, want, atol=ATOL, rtol=RTOL)
    loss.backward()
    want.backward()
    pairs = [(signal.grad, signal_twin.grad), (m.scores.weight.grad, scores.weight.grad),
             (m.scores.bias.grad, scores.bias.grad)]
    for k, w in enumerate((cell.w_r, cell.w_z)):
        rows = slice(k * hidden, (k + 1) * hidden)
        g_ih, g_hh = _split(w.weight.grad, hidden, h_first)
        pairs += [(g_ih, gru.weight_ih_l0.grad[rows]), (g_hh, gru.weight_hh_l0.grad[rows]),
                  (w.bias.grad, gru.bias_ih_l0.grad[rows]), (w.bias.grad, gru.bias_hh_l0.grad[rows])]
    rows = slice(2 * hidden, 3 * hidden)
    pairs += [(cell.w_xn.weight.grad, gru.weight_ih_l0.grad[rows]),
              (cell.w_xn.bias.grad, gru.bias_ih_l0.grad[rows]),
              (cell.u_hn.weight.grad, gru.weight_hh_l0.grad[rows]),
              (cell.u_hn.bias.grad, gru.bias_hh_l0.grad[rows])]
    _grads_equal(pairs)


def test_rnn_adding_problem_equals_irnn_linear():
    """rnn_adding_problem.json (fused IRNN, ReLU, last step, Dense 1, squared error)
    against nn.RNN -> Linear -> 1/2 sum (y - t)^2 written by hand: the compiled model
    starts as the IRNN (W_hh = I, biases 0), and loss and every gradient agree."""
    doc = load_graph(EXAMPLES / "rnn_adding_problem.json")
    m = build_module(doc)
    rnn = m.irnn.rnn
    assert torch.equal(rnn.weight_hh_l0, torch.eye(rnn.hidden_size))
    assert not rnn.bias_ih_l0.any() and not rnn.bias_hh_l0.any()
    twin = nn.RNN(rnn.input_size, rnn.hidden_size, nonlinearity="relu", batch_first=True)
    twin.load_state_dict(rnn.state_dict())
    head = _copy_of(m.sum)
    seq, target = example_inputs(doc, batch=4, mode="train", seed=8)
    seq.requires_grad_(True)
    seq_twin = seq.detach().clone().requires_grad_(True)
    loss = m(seq, target)["loss"]
    y = head(twin(seq_twin)[0][:, -1])
    want = 0.5 * ((y - target) ** 2).sum(1).mean()
    torch.testing.assert_close(loss, want, atol=ATOL, rtol=RTOL)
    loss.backward()
    want.backward()
    mine = dict(rnn.named_parameters())
    _grads_equal([(seq.grad, seq_twin.grad), (m.sum.weight.grad, head.weight.grad),
                  (m.sum.bias.grad, head.bias.grad)]
                 + [(mine[n].grad, p.grad) for n, p in twin.named_parameters()])


def test_outside_value_enters_every_step_and_learned_initial_state():
    """h_t = tanh(W [x_t, h_{t-1}, ctx] + b) with ctx from outside the region, a learned
    h_0, Collect of the pre-activation and Last of h, against a hand-written loop."""
    d = GraphDocument("ctx")
    d.add_node("SequenceInput", {"steps": T, "features": D}, node_id="x")
    d.add_node("VectorInput", {"features": 2}, node_id="ctx")
    d.add_node("SequenceStep", node_id="step")
    d.add_node("Delay", {"shape": [H], "init": "learned"}, node_id="h_prev")
    d.add_node("Concat", {"inputs": 3}, node_id="cat")
    d.add_node("Dense", {"units": H}, node_id="w")
    d.add_node("Tanh", node_id="h")
    d.add_node("Last", node_id="last")
    d.add_node("Collect", node_id="col")
    for o in ("y1", "y2"):
        d.add_node("Output", node_id=o)
    for s, sp, t, tp in (("x", "out", "step", "seq"), ("step", "out", "cat", "x1"),
                         ("h_prev", "out", "cat", "x2"), ("ctx", "out", "cat", "x3"),
                         ("cat", "out", "w", "x"), ("w", "out", "h", "x"),
                         ("h", "out", "h_prev", "x"), ("h", "out", "last", "x"),
                         ("w", "out", "col", "x"), ("last", "out", "y1", "x"),
                         ("col", "out", "y2", "x")):
        d.connect(s, sp, t, tp)
    assert validate(d) == []
    assert analyze(d).nodes["h_prev"].params == H
    m = build_module(d, mode="predict")
    loop = m.step_loop
    assert isinstance(loop, recurrent.RecurrentLoop)
    with torch.no_grad():
        loop.states.h_prev.initial.normal_()
    x, ctx = torch.randn(N, T, D), torch.randn(N, 2)
    last, col = m(x, ctx)
    h = loop.states.h_prev.initial.expand(N, H)
    pre = []
    for t in range(T):
        a = loop.cell.w(torch.cat([x[:, t], h, ctx], 1))
        pre.append(a)
        h = torch.tanh(a)
    torch.testing.assert_close(last, h)
    torch.testing.assert_close(col, torch.stack(pre, 1))
    last.sum().backward()
    assert loop.states.h_prev.initial.grad.abs().sum() > 0
