"""Ids out of range are caught by validation, not by an IndexError while training."""
import pytest
import torch

from runtime import GraphDocument, build_module, example_inputs, validate


def text_graph(vocab: int, table: int, classes: int, scores: int) -> GraphDocument:
    d = GraphDocument("ids")
    d.add_node("TokenInput", {"steps": 5, "vocab_size": vocab}, node_id="tokens")
    d.add_node("Embedding", {"num_embeddings": table, "dim": 4}, node_id="embed")
    d.add_node("Flatten", node_id="flat")
    d.add_node("Dense", {"units": scores}, node_id="head")
    d.add_node("Target", {"num_classes": classes}, node_id="label")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect("tokens", "out", "embed", "ids")
    d.connect("embed", "out", "flat", "x")
    d.connect("flat", "out", "head", "x")
    d.connect("head", "out", "loss", "pred")
    d.connect("label", "out", "loss", "target")
    return d


def test_consistent_ids_are_valid_and_train():
    d = text_graph(vocab=20, table=20, classes=3, scores=3)
    assert validate(d) == []
    out = build_module(d)(*example_inputs(d, batch=4, mode="train"))
    assert torch.isfinite(out["loss"])


def test_vocabulary_larger_than_embedding_is_an_error():
    d = text_graph(vocab=50, table=20, classes=3, scores=3)
    diags = [x for x in validate(d) if x.code == "id_range"]
    assert len(diags) == 1
    assert diags[0].node_id == "embed" and diags[0].param == "num_embeddings"
    assert "49" in diags[0].message and "tokens" in diags[0].message
    with pytest.raises(IndexError):  # what the user would otherwise meet at run time
        build_module(d)(*example_inputs(d, batch=4, mode="train"))


def test_classes_differ_from_scores_is_an_error():
    d = text_graph(vocab=20, table=20, classes=10, scores=3)
    diags = [x for x in validate(d) if x.code == "id_range"]
    assert len(diags) == 1
    assert diags[0].node_id == "loss" and diags[0].port == "target"
    assert "10 classes" in diags[0].message and "3" in diags[0].message


def test_one_hot_too_small():
    d = GraphDocument("onehot")
    d.add_node("TokenInput", {"steps": 3, "vocab_size": 8}, node_id="tokens")
    d.add_node("OneHot", {"num_classes": 4}, node_id="code")
    d.add_node("Output", node_id="y")
    d.connect("tokens", "out", "code", "ids")
    d.connect("code", "out", "y", "x")
    diags = [x for x in validate(d) if x.code == "id_range"]
    assert [x.node_id for x in diags] == ["code"]
