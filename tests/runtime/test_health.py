"""Node health: node_stats.jsonl, warnings that are right, the probe API, gradients through
time, and the debugging habits (overfit a tiny subset, gradient check, correlated units)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import fx, nn

from runtime.catalog import CATALOG, FLOAT, LayerSpec, Port, register
from runtime.compiler import build_module, example_inputs, signature
from runtime.graph import GraphDocument
from runtime.serialization import load_graph
from runtime.training import (TrainConfig, Trainer, check_gradients, correlated_units,
                              overfit_tiny, probe, time_gradients)
from runtime.training.health import ADVICE, judge, read_node_stats

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
CLI = [sys.executable, "-c", "import sys; from runtime.cli import main; sys.exit(main())"]


def example(stem: str) -> GraphDocument:
    return load_graph(EXAMPLES / f"{stem}.json")


def run_steps(doc, steps, out_dir=None, **overrides):
    cfg = TrainConfig.from_dict({**doc.training, "device": "cpu", "threads": 1, **overrides})
    events = []
    final = Trainer(doc, cfg, out_dir=out_dir, on_event=events.append, max_steps=steps).fit()
    assert final["status"] == "completed", final
    return final, events


# ---- node_stats.jsonl -------------------------------------------------------------------------
@pytest.mark.slow
def test_node_stats_jsonl_has_every_key_for_every_dense_and_conv_node(tmp_path):
    doc = example("digits_cnn")
    _, events = run_steps(doc, 21, out_dir=tmp_path, visualize_every=10)
    rows = read_node_stats(tmp_path)
    layers = [n.id for n in doc if n.type in ("Dense", "Conv2d")]
    assert layers == ["conv1", "conv2", "fc1", "logits"]
    for step in (0, 10, 20):
        for nid in layers:
            row = next(r for r in rows if r["step"] == step and r["node"] == nid)
            for key in ("grad_norm", "update_ratio", "act_mean", "act_std"):
                assert isinstance(row[key], float), (nid, key, row)
            assert row["grad_norm"] > 0 and 0 < row["update_ratio"] < 1
    relu = [r for r in rows if r["node"].startswith("relu")]
    assert relu and all(0 <= r["dead_fraction"] <= 1 for r in relu)
    # the same figures reach the GUI as events
    ev = [e for e in events if e["event"] == "node_stats"]
    assert [e["step"] for e in ev] == [0, 10, 20]
    assert ev[-1]["stats"]["fc1"]["grad_norm"] == next(
        r for r in rows if r["step"] == 20 and r["node"] == "fc1")["grad_norm"]


def test_saturation_and_dead_units_are_measured_where_they_happen():
    d = GraphDocument("sat")
    d.add_node("VectorInput", {"features": 4}, node_id="x")
    d.add_node("Dense", {"units": 8}, node_id="big")
    d.add_node("Sigmoid", node_id="sig")
    d.add_node("Dense", {"units": 8}, node_id="neg")
    d.add_node("ReLU", node_id="relu")
    d.add_node("Dense", {"units": 2}, node_id="out")
    d.add_node("Target", {"kind": "class", "num_classes": 2}, node_id="y")
    d.add_node("CrossEntropy", node_id="loss")
    for a, b, port in (("x", "big", "x"), ("big", "sig", "x"), ("sig", "neg", "x"),
                       ("neg", "relu", "x"), ("relu", "out", "x"), ("out", "loss", "pred"),
                       ("y", "loss", "target")):
        d.connect(a, "out", b, port)
    from runtime.training.health import HealthMonitor

    m = build_module(d)
    with torch.no_grad():
        m.big.weight.fill_(0.0)
        m.big.bias.fill_(20.0)  # sigmoid(20): saturated everywhere
        m.neg.bias.fill_(-100.0)  # every ReLU unit dead
    events = []
    mon = HealthMonitor(d, m, list(m.named_parameters()), torch.device("cpu"),
                        emit=lambda ev, **kw: events.append({"event": ev, **kw}))
    x, y = example_inputs(d, 8, mode="train")
    for step in (0, 10):  # warnings need the condition at two checks in a row
        assert not [e for e in events if e["event"] == "warning"]
        mon.arm()
        m.zero_grad()
        loss = m(x, y)["loss"]
        loss.backward()
        mon.grads([p.grad.norm() for p in m.parameters()])
        stats = mon.finish(step, loss)
        assert stats["sig"]["saturated_fraction"] == 1.0
        assert stats["relu"]["dead_fraction"] == 1.0
    kinds = {(e["node"], e["kind"]) for e in events if e["event"] == "warning"}
    assert ("sig", "saturated") in kinds and ("relu", "dead") in kinds


# ---- warnings ---------------------------------------------------------------------------------
def _stats(first_rel: float) -> dict:
    return {"dense1": {"grad_norm": first_rel, "weight_norm": 1.0, "update_ratio": 1e-4},
            "dense2": {"grad_norm": 0.5, "weight_norm": 1.0, "update_ratio": 1e-3}}


def test_vanishing_is_judged_relative_to_the_other_layers_and_not_after_convergence():
    warned = judge(_stats(1e-6), loss=2.3, first_loss=2.3)
    assert [(w["node"], w["kind"]) for w in warned] == [("dense1", "vanishing")]
    assert ADVICE["vanishing"] in warned[0]["message"] and "ReLU" in warned[0]["message"]
    assert judge(_stats(1e-6), loss=1e-8, first_loss=2.3) == []  # converged: no alarm
    assert judge(_stats(0.1), loss=2.3, first_loss=2.3) == []  # comparable: no alarm
    # tiny absolute gradients everywhere (a converged net) are no vanishing gradient
    tiny = {n: {**r, "grad_norm": r["grad_norm"] * 1e-9} for n, r in _stats(0.2).items()}
    assert judge(tiny, loss=0.5, first_loss=2.3) == []


def test_exploding_dead_and_saturated_warnings_teach():
    stats = {"fc": {"grad_norm": 50.0, "weight_norm": 1.0, "update_ratio": 0.8},
             "relu": {"dead_fraction": 0.9}, "sig": {"saturated_fraction": 0.95}}
    got = {w["kind"]: w["message"] for w in judge(stats, 2.0, 2.0)}
    assert set(got) == {"exploding", "dead", "saturated"}
    assert "clipping" in got["exploding"] and "learning rate" in got["exploding"]
    assert "Leaky ReLU" in got["dead"] and got["dead"].startswith("relu:")
    assert "batch normalisation" in got["saturated"]


@pytest.mark.slow
def test_no_vanishing_warning_on_a_converged_spirals_mlp():
    doc = example("mlp_spirals")
    final, events = run_steps(doc, 1500, epochs=60)
    assert final["train_accuracy"] == 1.0 and final["train_loss"] < 0.01
    warnings = [e for e in events if e["event"] == "warning" and e.get("kind") == "vanishing"]
    assert warnings == []
    last = [e for e in events if e["event"] == "node_stats"][-1]["stats"]
    params = {n: r for n, r in last.items() if "grad_norm" in r}
    assert judge(params, loss=1e-8, first_loss=0.7) == []


@pytest.mark.slow
def test_deep_sigmoid_mlp_vanishes_where_its_relu_bn_twin_does_not():
    ratios = {}
    for stem in ("deep_sigmoid_mlp", "deep_relu_bn_mlp"):
        _, events = run_steps(example(stem), 51, visualize_every=10)
        last = [e for e in events if e["event"] == "node_stats"][-1]
        assert last["step"] == 50
        ratios[stem] = last["stats"]["dense1"]["grad_norm"] / last["stats"]["logits"]["grad_norm"]
        vanishing = {e["node"] for e in events if e["event"] == "warning"
                     and e.get("kind") == "vanishing"}
        assert ("dense1" in vanishing) == (stem == "deep_sigmoid_mlp")
    assert ratios["deep_sigmoid_mlp"] <= 0.1
    assert ratios["deep_relu_bn_mlp"] > 0.1


# ---- probe ------------------------------------------------------------------------------------
def _intermediates(module, args) -> dict:
    """Every call_module's value, by running the fx graph node by node."""
    seen = {}

    class Recorder(fx.Interpreter):
        def call_module(self, target, a, kw):
            out = super().call_module(target, a, kw)
            seen[target] = out
            return out

    Recorder(module).run(*args)
    return seen


@pytest.mark.parametrize("stem", ["digits_cnn", "mlp_spirals", "rnn_adding_problem"])
def test_probe_activations_equal_the_compiled_modules_intermediate_outputs(stem):
    doc = example(stem)
    module = build_module(doc, mode="predict").eval()
    args = example_inputs(doc, 4)
    got = probe(module, args)
    with torch.no_grad():
        want = _intermediates(module, args)
    assert set(got.activations) == set(want)
    for nid, value in want.items():
        a, b = got.activations[nid], value
        if isinstance(b, tuple):
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y, rtol=0, atol=0)
        else:
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(got.prediction, module(*args))
    # a document and a dict of inputs work too; top-5 are probabilities in order
    by_name = probe(doc, {signature(doc).inputs[0]: args[0]}, weights=module)
    torch.testing.assert_close(by_name.prediction, got.prediction)
    if stem == "digits_cnn":
        top = got.top_k(5)
        assert len(top) == 5 and top[0][1] >= top[-1][1] and 0 < sum(p for _, p in top) <= 1


# ---- gradients through time -------------------------------------------------------------------
def test_time_gradients_of_a_fused_rnn_match_autograd_at_the_last_step():
    doc = example("rnn_adding_problem")
    torch.manual_seed(0)
    module = build_module(doc)
    seq, target = example_inputs(doc, 3, mode="train")
    seq = seq[:, :20]
    got = time_gradients(doc, module, (seq,), (target,))["irnn"]
    assert got.shape == (20,)
    module.eval()
    h = module.irnn(seq)[0]
    h.retain_grad()
    loss = module.loss(module.sum(h), target)
    loss.backward()
    assert got[-1] == pytest.approx(h.grad.norm().item() / 3, rel=1e-5)
    assert all(g > 0 for g in got)


def _head(d: GraphDocument, src: str) -> GraphDocument:
    d.add_node("Dense", {"units": 2}, node_id="head")
    d.connect(src, "out", "head", "x")
    d.add_node("Target", {"kind": "class", "num_classes": 2}, node_id="y")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect("head", "out", "loss", "pred")
    d.connect("y", "out", "loss", "target")
    return d


def test_time_gradients_of_a_hand_drawn_cell_equal_its_fused_twin():
    """A hand-drawn Elman cell (run as a loop) and torch's fused RNN layer with the same
    weights give the same gradient norm at every step."""
    from runtime.cells import add_rnn_cell

    steps, hidden = 12, 5
    drawn = GraphDocument("cell")
    drawn.add_node("SequenceInput", {"steps": steps, "features": 3}, node_id="seq")
    ids = add_rnn_cell(drawn, ("seq", "out"), hidden, prefix="c", out="last")
    _head(drawn, ids["last"])
    fused = GraphDocument("fused")
    fused.add_node("SequenceInput", {"steps": steps, "features": 3}, node_id="seq")
    fused.add_node("RNN", {"hidden_size": hidden, "return_sequences": False}, node_id="rnn")
    fused.connect("seq", "out", "rnn", "x")
    _head(fused, "rnn")
    torch.manual_seed(0)
    a = build_module(drawn)
    b = build_module(fused)
    with torch.no_grad():
        w = a.get_submodule("cstep_loop.cell.cw")  # W [h, x] + b: h first
        b.rnn.rnn.weight_hh_l0.copy_(w.weight[:, :hidden])
        b.rnn.rnn.weight_ih_l0.copy_(w.weight[:, hidden:])
        b.rnn.rnn.bias_ih_l0.copy_(w.bias)
        b.rnn.rnn.bias_hh_l0.zero_()
        b.head.load_state_dict(a.head.state_dict())
    seq, y = example_inputs(drawn, 4, mode="train")
    (name_a, ga), = time_gradients(drawn, a, (seq,), (y,)).items()
    (name_b, gb), = time_gradients(fused, b, (seq,), (y,)).items()
    assert (name_a, name_b) == ("cstep_loop", "rnn")
    assert ga.shape == gb.shape == (steps,) and (ga > 0).all()
    assert ga == pytest.approx(gb, rel=1e-4)
    assert ga[0] < ga[-1]  # tanh: the gradient fades going back in time


# ---- debugging habits -------------------------------------------------------------------------
@pytest.mark.slow
def test_overfitting_32_digits_reaches_zero_training_error():
    res = overfit_tiny(example("digits_cnn"))
    assert res.reached and res.train_accuracy == 1.0 and res.samples == 32
    assert "zero training error" in res.message


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_gradient_check_passes_on_every_gallery_example(path):
    res = check_gradients(load_graph(path))
    assert res.passed, res.message
    assert res.checked > 0 and res.worst_node is not None


class _WrongGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g * w, 2 * (g * x).sum(0)  # the weight's gradient is twice what it should be


class _Scale(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(0.5, 1.5, n))

    def forward(self, x):
        return _WrongGrad.apply(x, self.w)


@pytest.fixture
def wrong_layer():
    spec = LayerSpec(type="TestWrongScale", title="Wrong scale", category="Test",
                     doc="x * w with a deliberately wrong backward (tests only).",
                     inputs=(Port("x", FLOAT),), build=lambda p, s: _Scale(s["x"][-1]),
                     same_shape=True)
    register(spec)
    try:
        yield spec.type
    finally:
        del CATALOG[spec.type]


def test_gradient_check_fails_naming_a_layer_whose_backward_is_wrong(wrong_layer):
    d = GraphDocument("wrong")
    d.add_node("VectorInput", {"features": 4}, node_id="x")
    d.add_node("Dense", {"units": 6}, node_id="fc")
    d.add_node(wrong_layer, node_id="scale")
    d.add_node("Dense", {"units": 3}, node_id="out")
    d.add_node("Target", {"kind": "class", "num_classes": 3}, node_id="y")
    d.add_node("CrossEntropy", node_id="loss")
    for a, b, port in (("x", "fc", "x"), ("fc", "scale", "x"), ("scale", "out", "x"),
                       ("out", "loss", "pred"), ("y", "loss", "target")):
        d.connect(a, "out", b, port)
    res = check_gradients(d)
    assert not res.passed
    assert res.worst_node == "scale" and res.worst_error > 0.1
    assert res.per_node["fc"] < 1e-4 and res.per_node["out"] < 1e-4
    assert "FAILED" in res.message and "scale" in res.message


def test_correlated_units_finds_duplicated_units():
    doc = example("mlp_spirals")
    module = build_module(doc, mode="predict")
    with torch.no_grad():
        module.hidden1.weight[1] = module.hidden1.weight[0]  # unit 1 copies unit 0
        module.hidden1.bias[1] = module.hidden1.bias[0]
        module.hidden1.weight[2] = -module.hidden1.weight[0]  # unit 2 mirrors it
        module.hidden1.bias[2] = -module.hidden1.bias[0]
    x = example_inputs(doc, 200)
    res = correlated_units(module, "hidden1", x)
    assert res.matrix.shape == (32, 32)
    assert res.matrix[0, 1] == pytest.approx(1.0) and res.matrix[0, 2] == pytest.approx(-1.0)
    assert res.share_above >= 3 / (32 * 31 / 2)
    with pytest.raises(ValueError, match="no layer node"):
        correlated_units(module, "nope", x)


@pytest.mark.slow
def test_cli_flags_run_the_habits(tmp_path):
    spirals = str(EXAMPLES / "mlp_spirals.json")
    r = subprocess.run(CLI + ["train", spirals, "--check-gradients"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["passed"] and "gradient check passed" in r.stderr
    r = subprocess.run(CLI + ["train", spirals, "--correlated-units", "hidden2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["node"] == "hidden2" and last["units"] == 32 and 0 <= last["share_above"] <= 1
