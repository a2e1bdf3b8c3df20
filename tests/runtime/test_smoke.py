"""A first end-to-end check of the core: build, validate, analyse, compile, run."""
import torch

from runtime import GraphDocument, analyze, build_module, example_inputs, validate


def test_mlp_end_to_end():
    d = GraphDocument("mlp")
    d.add_node("VectorInput", {"features": 2}, node_id="x")
    d.add_node("Dense", {"units": 16}, node_id="h")
    d.add_node("ReLU", node_id="r")
    d.add_node("Dense", {"units": 2}, node_id="o")
    d.add_node("Target", {"num_classes": 2}, node_id="t")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect("x", "out", "h", "x")
    d.connect("h", "out", "r", "x")
    d.connect("r", "out", "o", "x")
    d.connect("o", "out", "loss", "pred")
    d.connect("t", "out", "loss", "target")
    assert validate(d) == []
    a = analyze(d)
    assert a.nodes["h"].params == 2 * 16 + 16
    assert a.nodes["o"].output_shape == (2,)
    m = build_module(d)
    out = m(*example_inputs(d, batch=4, mode="train"))
    assert out["loss"].shape == ()
    out["loss"].backward()
    assert m.h.weight.grad is not None and torch.isfinite(m.h.weight.grad).all()
