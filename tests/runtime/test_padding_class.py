"""CrossEntropy's ignore_index: a padding class that counts neither in the loss nor in
accuracy (seq2seq pads its targets with 0 after the end token)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from runtime.catalog.modules import CrossEntropy
from runtime.data.dataset import Dataset
from runtime.graph import GraphDocument
from runtime.training import TrainConfig, Trainer


def test_loss_leaves_out_the_padding_class_as_torch_does():
    logits = torch.randn(4, 6, 5, requires_grad=True)
    target = torch.randint(0, 5, (4, 6))
    target[:, 4:] = 0  # padding
    ours = CrossEntropy(ignore_index=0)(logits, target)
    ref = F.cross_entropy(logits.reshape(-1, 5), target.reshape(-1), ignore_index=0)
    torch.testing.assert_close(ours, ref)
    every = CrossEntropy()(logits, target)  # -1: every position counts
    torch.testing.assert_close(every, F.cross_entropy(logits.reshape(-1, 5), target.reshape(-1)))
    assert not torch.allclose(ours, every)


def _tagger(ignore: int) -> GraphDocument:
    d = GraphDocument("tagger")
    d.add_node("SequenceInput", {"steps": 6, "features": 3}, node_id="x")
    d.add_node("Dense", {"units": 4}, node_id="scores")
    d.add_node("Target", {"kind": "class", "shape": [6], "num_classes": 4}, node_id="t")
    d.add_node("CrossEntropy", {"ignore_index": ignore}, node_id="loss")
    d.connect("x", "out", "scores", "x")
    d.connect("scores", "out", "loss", "pred")
    d.connect("t", "out", "loss", "target")
    return d


def _trainer(ignore: int) -> Trainer:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 3)).astype(np.float32)
    y = rng.integers(1, 4, (64, 6))
    y[:, 3:] = 0  # half of every sequence is padding
    data = Dataset("padded", [x], [y], "sequence", 4)
    cfg = TrainConfig.from_dict({"epochs": 2, "batch_size": 16, "val_split": 0.25,
                                 "optimizer": "adam", "lr": 0.05, "seed": 0})
    return Trainer(_tagger(ignore), cfg, data=data)


def test_accuracy_is_over_the_real_positions_only():
    t = _trainer(0)
    t.setup()
    y = torch.tensor([[1, 2, 3, 0, 0, 0], [3, 3, 1, 2, 0, 0]])
    scores = torch.full((2, 6, 4), -5.0)
    # predictions: 5 of the 7 real tokens right ((0, 2) and (1, 1) wrong), padding as 1
    pred = torch.tensor([[1, 2, 0, 1, 1, 1], [3, 1, 1, 2, 1, 1]])
    scores.scatter_(2, pred.unsqueeze(-1), 5.0)
    correct, _, count = t._correct({t.acc["key"]: scores}, [y])
    assert (int(correct), int(count)) == (5, 7)
    plain = _trainer(-1)
    plain.setup()
    correct, _, count = plain._correct({plain.acc["key"]: scores}, [y])
    assert (int(correct), int(count)) == (5, 12)  # padding counted (and all wrong here)


def test_training_with_a_padding_class_reports_accuracy():
    final = _trainer(0).fit()
    assert final["status"] == "completed" and 0.0 <= final["val_accuracy"] <= 1.0
