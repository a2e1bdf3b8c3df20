"""Graphs the tests share: one builder per kind of network, instead of one copy per file.

    from tests.builders import mlp, small_cnn, image_classifier, token_classifier, lenet5

Node ids are fixed (tests refer to them): see each builder.
"""
from __future__ import annotations

from pathlib import Path

from runtime import GraphDocument, load_graph

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "resources" / "examples"


def example(name: str) -> GraphDocument:
    """A bundled example (resources/examples/<name>.json), freshly loaded."""
    return load_graph(EXAMPLES / f"{name}.json")


def lenet5() -> GraphDocument:
    """LeNet-5 as in the paper (the bundled example): C1, S2, C3, S4, C5, F6, RBF."""
    return example("lenet5")


def _chain(d: GraphDocument, ids: list[str], pred: str, target: str, loss: str) -> None:
    for a, b in zip(ids, ids[1:]):
        d.connect(a, "out", b, "x")
    d.connect(pred, "out", loss, "pred")
    d.connect(target, "out", loss, "target")


def mlp(features: int = 2, hidden: tuple[int, ...] = (32, 32), classes: int = 2,
        act: str = "Tanh", loss: str = "CrossEntropy", name: str = "mlp") -> GraphDocument:
    """x -> h1 -> a1 -> h2 -> a2 ... -> out -> loss <- y (a class or value target)."""
    d = GraphDocument(name)
    d.add_node("VectorInput", {"features": features}, node_id="x")
    chain = ["x"]
    for i, units in enumerate(hidden, 1):
        d.add_node("Dense", {"units": units}, node_id=f"h{i}")
        d.add_node(act, node_id=f"a{i}")
        chain += [f"h{i}", f"a{i}"]
    d.add_node("Dense", {"units": classes}, node_id="out")
    if loss == "CrossEntropy":
        d.add_node("Target", {"kind": "class", "num_classes": classes}, node_id="y")
    else:
        d.add_node("Target", {"kind": "value", "shape": [classes]}, node_id="y")
    d.add_node(loss, node_id="loss")
    _chain(d, chain + ["out"], "out", "y", "loss")
    return d


def small_cnn(c: int = 3, h: int = 12, w: int = 12, classes: int = 3) -> GraphDocument:
    """image -> conv (4 filters 3x3, padding 1) -> relu -> flat -> logits -> loss <- label."""
    d = GraphDocument("cnn")
    d.add_node("ImageInput", {"channels": c, "height": h, "width": w}, node_id="image")
    d.add_node("Conv2d", {"filters": 4, "kernel_size": 3, "padding": 1}, node_id="conv")
    d.add_node("ReLU", node_id="relu")
    d.add_node("Flatten", node_id="flat")
    d.add_node("Dense", {"units": classes}, node_id="logits")
    d.add_node("Target", {"kind": "class", "num_classes": classes}, node_id="label")
    d.add_node("CrossEntropy", node_id="loss")
    _chain(d, ["image", "conv", "relu", "flat", "logits"], "logits", "label", "loss")
    return d


def image_classifier(c: int = 1, h: int = 28, w: int = 28, classes: int = 10) -> GraphDocument:
    """image -> flat -> logits -> loss <- label: the smallest image model."""
    d = GraphDocument("img")
    d.add_node("ImageInput", {"channels": c, "height": h, "width": w}, node_id="image")
    d.add_node("Flatten", node_id="flat")
    d.add_node("Dense", {"units": classes}, node_id="logits")
    d.add_node("Target", {"kind": "class", "num_classes": classes}, node_id="label")
    d.add_node("CrossEntropy", node_id="loss")
    _chain(d, ["image", "flat", "logits"], "logits", "label", "loss")
    return d


def token_classifier(vocab: int, table: int, classes: int, scores: int,
                     steps: int = 5) -> GraphDocument:
    """tokens (ids < vocab) -> embed (a table of ``table`` rows) -> flat -> head (``scores``
    outputs) -> loss <- label (``classes`` classes): ids out of range when they differ."""
    d = GraphDocument("ids")
    d.add_node("TokenInput", {"steps": steps, "vocab_size": vocab}, node_id="tokens")
    d.add_node("Embedding", {"num_embeddings": table, "dim": 4}, node_id="embed")
    d.add_node("Flatten", node_id="flat")
    d.add_node("Dense", {"units": scores}, node_id="head")
    d.add_node("Target", {"num_classes": classes}, node_id="label")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect("tokens", "out", "embed", "ids")
    _chain(d, ["embed", "flat", "head"], "head", "label", "loss")
    return d


def hand_drawn_cell(add, *, steps: int, features: int, hidden: int,
                    out: str = "collect") -> tuple[GraphDocument, dict]:
    """x (steps, features) -> a cell drawn by ``add`` (runtime.cells.add_lstm_cell,
    add_gru_cell or add_rnn_cell) -> y (every step with ``out="collect"``, the last with
    ``"last"``). Returns the document and the cell's node ids."""
    d = GraphDocument("cell")
    d.add_node("SequenceInput", {"steps": steps, "features": features}, node_id="x")
    ids = add(d, ("x", "out"), hidden, out=out)
    d.add_node("Output", node_id="y")
    d.connect(ids["seq_out" if out == "collect" else "last"], "out", "y", "x")
    return d, ids
