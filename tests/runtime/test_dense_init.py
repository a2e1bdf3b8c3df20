"""Dense's ``init`` parameter: each choice sets what torch's own initialiser sets, an
impossible choice (identity on a non-square layer) is a validation error naming the node
and the parameter, a hand-drawn IRNN cell equals the fused IRNN, and the exported code
(weights included) computes the same."""
from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from torch import nn

from runtime import GraphDocument, build_module, save_graph, validate
from runtime.catalog import get_spec
from runtime.catalog.affine import INITS
from runtime.catalog.modules import WEIGHT_INITS
from runtime.cli import main as cli_main

FEATURES = 6


def dense_doc(units: int, init: str, bias: bool = True, features: int = FEATURES):
    d = GraphDocument("dense init")
    d.add_node("VectorInput", {"features": features}, node_id="v")
    d.add_node("Dense", {"units": units, "init": init, "bias": bias}, node_id="fc")
    d.add_node("Output", node_id="y")
    d.connect("v", "out", "fc", "x")
    d.connect("fc", "out", "y", "x")
    return d


# What torch does for each choice, after nn.Linear's own construction (same RNG stream).
def _oracle(init: str, units: int, features: int, bias: bool) -> nn.Linear:
    lin = nn.Linear(features, units, bias=bias)
    with torch.no_grad():
        fn = {"identity": nn.init.eye_, "xavier_uniform": nn.init.xavier_uniform_,
              "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
              "orthogonal": nn.init.orthogonal_, "zeros": nn.init.zeros_}.get(init)
        if fn is not None:
            fn(lin.weight)
            if bias:
                nn.init.zeros_(lin.bias)
    return lin


def test_choices_are_the_modules_choices():
    assert INITS == WEIGHT_INITS
    p = get_spec("Dense").param("init")
    assert p.default == "default" and p.choices == WEIGHT_INITS


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("init", WEIGHT_INITS)
def test_each_init_is_what_torch_sets(init, bias):
    units = FEATURES if init == "identity" else 4
    doc = dense_doc(units, init, bias)
    assert validate(doc) == []
    torch.manual_seed(7)
    fc = build_module(doc, mode="predict").fc
    torch.manual_seed(7)
    want = _oracle(init, units, FEATURES, bias)
    assert type(fc) is nn.Linear  # a plain torch layer whatever the init
    assert torch.equal(fc.weight, want.weight)
    assert (fc.bias is None) == (not bias)
    if bias:
        assert torch.equal(fc.bias, want.bias)
        if init != "default":
            assert not fc.bias.any()


def test_init_properties():
    torch.manual_seed(0)
    m = build_module(dense_doc(FEATURES, "identity"), mode="predict")
    assert torch.equal(m.fc.weight, torch.eye(FEATURES))
    x = torch.randn(3, FEATURES)
    assert torch.equal(m(x), x)  # y = x at the start
    w = build_module(dense_doc(4, "orthogonal"), mode="predict").fc.weight
    torch.testing.assert_close(w @ w.T, torch.eye(4))  # orthonormal rows
    w = build_module(dense_doc(4, "xavier_uniform"), mode="predict").fc.weight
    assert w.abs().max() <= math.sqrt(6 / (FEATURES + 4))
    w = build_module(dense_doc(400, "kaiming_normal", features=500), mode="predict").fc.weight
    assert abs(w.std().item() - math.sqrt(2 / 500)) < 0.05 * math.sqrt(2 / 500)
    assert not build_module(dense_doc(4, "zeros"), mode="predict").fc.weight.any()


def test_identity_on_a_non_square_layer_is_an_error_naming_node_and_parameter(tmp_path, capsys):
    doc = dense_doc(4, "identity")
    errs = [d for d in validate(doc) if d.is_error]
    assert len(errs) == 1
    e = errs[0]
    assert (e.node_id, e.param, e.port) == ("fc", "init", "x")
    assert "square" in e.message and "units is 4" in e.message and "6 features" in e.message
    assert "node 'fc'" in str(e) and "parameter 'init'" in str(e)
    path = tmp_path / "bad.json"
    save_graph(doc, path)
    for command in ("validate", "summary", "compile"):
        assert cli_main([command, str(path)]) == 1
        out, err = capsys.readouterr()
        assert "parameter 'init'" in err and "Traceback" not in out + err
    # other choices have no constraint on the shape
    for init in WEIGHT_INITS:
        if init != "identity":
            assert validate(dense_doc(4, init)) == []


T, D, H, N = 7, 3, 5, 4


def irnn_cell_doc(fused: bool) -> GraphDocument:
    """h_t = relu(W_x x_t + b + U h_{t-1}) drawn by hand with U = I (Dense init=identity),
    or the fused RNN with init=identity (the IRNN of Le et al.)."""
    d = GraphDocument("irnn")
    d.add_node("SequenceInput", {"steps": T, "features": D}, node_id="x")
    d.add_node("Output", node_id="y")
    if fused:
        d.add_node("RNN", {"hidden_size": H, "nonlinearity": "relu", "init": "identity"},
                   node_id="rnn")
        d.connect("x", "out", "rnn", "x")
        d.connect("rnn", "out", "y", "x")
        return d
    d.add_node("SequenceStep", node_id="step")
    d.add_node("Delay", {"shape": [H]}, node_id="h_prev")
    d.add_node("Dense", {"units": H}, node_id="w_x")
    d.add_node("Dense", {"units": H, "bias": False, "init": "identity"}, node_id="u_h")
    d.add_node("Add", node_id="pre")
    d.add_node("ReLU", node_id="h")
    d.add_node("Collect", node_id="seq_out")
    for s, t, port in (("x", "step", "seq"), ("step", "w_x", "x"), ("h_prev", "u_h", "x"),
                       ("w_x", "pre", "x1"), ("u_h", "pre", "x2"), ("pre", "h", "x"),
                       ("h", "h_prev", "x"), ("h", "seq_out", "x"), ("seq_out", "y", "x")):
        d.connect(s, "out", t, port)
    return d


def test_hand_drawn_irnn_equals_the_fused_irnn():
    drawn, fused = irnn_cell_doc(False), irnn_cell_doc(True)
    assert validate(drawn) == [] and validate(fused) == []
    torch.manual_seed(1)
    m = build_module(drawn, mode="predict")
    cell = m.step_loop.cell
    assert torch.equal(cell.u_h.weight, torch.eye(H))
    ref = build_module(fused, mode="predict")
    rnn = ref.rnn.rnn
    assert torch.equal(rnn.weight_hh_l0, torch.eye(H))
    with torch.no_grad():  # the input weights are random in both: copy them across
        rnn.weight_ih_l0.copy_(cell.w_x.weight)
        rnn.bias_ih_l0.copy_(cell.w_x.bias)
    x = torch.randn(N, T, D, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = m(x), ref(x_ref)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    w = torch.randn_like(y)
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    for got, want in ((x.grad, x_ref.grad), (cell.w_x.weight.grad, rnn.weight_ih_l0.grad),
                      (cell.w_x.bias.grad, rnn.bias_ih_l0.grad),
                      (cell.u_h.weight.grad, rnn.weight_hh_l0.grad)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_exported_code_computes_the_same(tmp_path):
    """model.py builds a plain nn.Linear and sets its init (identity here) as the graph
    does; the exported weights carry the initialised values too."""
    from runtime.export.core import export

    doc = irnn_cell_doc(False)
    out = tmp_path / "py"
    export(doc, "python", out)
    code = (out / "model.py").read_text()
    assert f"self.u_h = nn.Linear({H}, {H}, bias=False)" in code
    from safetensors.torch import load_file

    weights = load_file(str(out / "weights.safetensors"))
    u_h = next(v for k, v in weights.items() if k.endswith("u_h.weight"))
    assert torch.equal(u_h, torch.eye(H))
    spec = importlib.util.spec_from_file_location("irnn_model_py", out / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = next(getattr(mod, n) for n in dir(mod) if isinstance(getattr(mod, n), type)
                 and issubclass(getattr(mod, n), nn.Module) and hasattr(getattr(mod, n),
                                                                      "from_pretrained"))
    fresh = model()  # built without its weights file: starts where the graph does
    u_h_fresh = next(m for k, m in fresh.named_modules() if k.endswith("u_h"))
    assert torch.equal(u_h_fresh.weight, torch.eye(H))
    assert "nn.init.eye_(self.u_h.weight)" in code
    loaded = model.from_pretrained(out / "weights.safetensors").eval()
    compiled = build_module(doc, mode="predict")
    compiled.load_state_dict({k: v for k, v in weights.items() if k in compiled.state_dict()})
    x = torch.randn(2, T, D)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), compiled(x))
