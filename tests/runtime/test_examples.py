"""The example gallery: every file loads, validates cleanly, and computes exactly what a
hand-written PyTorch model of the same architecture computes.

For each example a plain torch ``nn.Module`` is written here by hand (LeNet-5's
sub-sampling, connection table and RBF units included). The compiled module's weights
are copied into it through an explicit name mapping that must cover every parameter
and buffer of both models element for element; then predictions, loss, every gradient
and the batch-norm running statistics must agree, in evaluation and training mode
(dropout masks agree because both models draw them in the same order from the same
seed). Summary numbers (parameters, MACs) are checked against the hand-written model and,
for LeNet-5, against the figures of the paper.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close
from torch.utils.flop_counter import FlopCounterMode

from runtime import build_module, example_inputs, load_graph, signature, validate
from runtime.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
BATCH = 4


# ---- hand-written models ---------------------------------------------------------------------


class HandMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(2, 32), nn.Linear(32, 32), nn.Linear(32, 2)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(torch.tanh(self.fc1(x)))))

    def loss(self, logits, label):
        return F.cross_entropy(logits, label)


# LeCun et al. 1998, Table I: row = S2 map, column = C3 map, X = connected.
LENET_TABLE_I = [
    "X---XXX--XXXX-XX",
    "XX---XXX--XXXX-X",
    "XXX---XXX--X-XXX",
    "-XXX--XXXX--X-XX",
    "--XXX--XXXX-XX-X",
    "---XXX--XXXX-XXX",
]
C3_INPUTS = [[s2 for s2 in range(6) if LENET_TABLE_I[s2][c3] == "X"] for c3 in range(16)]


def subsample(x, weight, bias):
    """LeNet sub-sampling: sum of each 2x2 block times one weight per map, plus a bias."""
    n, c, h, w = x.shape
    s = x.reshape(n, c, h // 2, 2, w // 2, 2).sum(dim=(3, 5))
    return s * weight[None, :, None, None] + bias[None, :, None, None]


class HandLeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2_weight, self.s2_bias = nn.Parameter(torch.ones(6)), nn.Parameter(torch.zeros(6))
        # C3: each of the 16 maps is its own convolution over its subset of S2's maps
        self.c3 = nn.ModuleList(nn.Conv2d(len(ins), 1, 5) for ins in C3_INPUTS)
        self.s4_weight, self.s4_bias = nn.Parameter(torch.ones(16)), nn.Parameter(torch.zeros(16))
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.rbf_centers = nn.Parameter(torch.zeros(10, 84))

    def forward(self, image):
        x = torch.tanh(self.c1(image))  # (N, 6, 28, 28)
        x = torch.tanh(subsample(x, self.s2_weight, self.s2_bias))  # (N, 6, 14, 14)
        x = torch.cat([conv(x[:, ins]) for conv, ins in zip(self.c3, C3_INPUTS)], dim=1)
        x = torch.tanh(x)  # (N, 16, 10, 10)
        x = torch.tanh(subsample(x, self.s4_weight, self.s4_bias))  # (N, 16, 5, 5)
        x = torch.tanh(self.c5(x)).flatten(1)  # (N, 120)
        x = torch.tanh(self.f6(x))  # (N, 84)
        dist = ((x[:, None, :] - self.rbf_centers[None]) ** 2).sum(-1)  # (N, 10)
        return -dist

    def loss(self, scores, label):
        return F.cross_entropy(scores, label)


def vgg_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.MaxPool2d(2))


class HandVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1, self.block2 = vgg_block(3, 32), vgg_block(32, 64)
        self.fc1, self.fc2 = nn.Linear(64 * 8 * 8, 128), nn.Linear(128, 10)

    def forward(self, image):
        x = self.block2(self.block1(image)).flatten(1)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return self.fc2(x)

    def loss(self, logits, label):
        return F.cross_entropy(logits, label)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class HandResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        self.layer1, self.layer2 = BasicBlock(16, 16, 1), BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 32, 1)
        self.fc = nn.Linear(32, 10)

    def forward(self, image):
        x = F.relu(self.bn(self.conv(image)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))

    def loss(self, logits, label):
        return F.cross_entropy(logits, label)


class InceptionModule(nn.Module):
    def __init__(self, cin, c1, r3, c3, r5, c5, cp):
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(cin, r3, 1), nn.ReLU(),
                                     nn.Conv2d(r3, c3, 3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(cin, r5, 1), nn.ReLU(),
                                     nn.Conv2d(r5, c5, 5, padding=2), nn.ReLU())
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, cp, 1), nn.ReLU())

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class HandInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.inc1 = InceptionModule(32, 16, 16, 24, 4, 8, 8)
        self.inc2 = InceptionModule(56, 24, 24, 32, 8, 16, 16)
        self.fc = nn.Linear(88, 10)

    def forward(self, image):
        x = self.inc2(self.inc1(self.stem(image)))
        return self.fc(x.mean(dim=(2, 3)))

    def loss(self, logits, label):
        return F.cross_entropy(logits, label)


class HandTextCNN(nn.Module):
    WIDTHS = (2, 3, 4)

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(1000, 32)
        self.convs = nn.ModuleList(nn.Conv1d(32, 16, w) for w in self.WIDTHS)
        self.fc = nn.Linear(16 * len(self.WIDTHS), 2)

    def forward(self, tokens):
        e = self.embedding(tokens).transpose(1, 2)  # (N, 32, 40): channels along time
        feats = [F.relu(conv(e)).max(dim=2).values for conv in self.convs]  # max over time
        h = F.dropout(torch.cat(feats, dim=1), 0.5, self.training)
        return self.fc(h)

    def loss(self, logits, label):
        return F.cross_entropy(logits, label)


class HandTriplet(nn.Module):
    """A siamese network written as such: one embedding net applied to each row."""

    def __init__(self):
        super().__init__()
        self.hidden, self.embed = nn.Linear(16, 32), nn.Linear(32, 8)

    def embed_one(self, v):  # (N, 16) -> (N, 8)
        return self.embed(F.relu(self.hidden(v)))

    def forward(self, triplet):  # (N, 3, 16) -> (N, 3, 8)
        return torch.stack([self.embed_one(triplet[:, i]) for i in range(3)], dim=1)

    def loss(self, emb):
        a, p, n = emb[:, 0], emb[:, 1], emb[:, 2]
        d_pos, d_neg = ((a - p) ** 2).sum(1), ((a - n) ** 2).sum(1)
        return (d_pos - d_neg + 1.0).clamp(min=0).mean()


class HandDigits(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(32 * 2 * 2, 64), nn.Linear(64, 10)

    def forward(self, image):
        x = F.max_pool2d(F.relu(self.conv1(image)), 2)  # (N, 16, 4, 4)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)  # (N, 128)
        return self.fc2(F.relu(self.fc1(x)))

    def loss(self, logits, label):
        return F.cross_entropy(logits, label)


class HandDeepMLP(nn.Module):
    """Eight hidden Linear(64) layers, each followed by a sigmoid, or by batch norm and ReLU."""

    def __init__(self, batch_norm: bool):
        super().__init__()
        self.batch_norm = batch_norm
        self.hidden = nn.ModuleList(nn.Linear(64, 64) for _ in range(8))
        self.norms = nn.ModuleList(nn.BatchNorm1d(64) for _ in range(8)) if batch_norm else None
        self.out = nn.Linear(64, 10)

    def forward(self, x):  # (N, 64) -> (N, 10)
        for i, fc in enumerate(self.hidden):
            x = F.relu(self.norms[i](fc(x))) if self.batch_norm else torch.sigmoid(fc(x))
        return self.out(x)

    def loss(self, logits, label):
        return F.cross_entropy(logits, label)


# ---- explicit weight mappings: (hand name, hand index, compiled name, compiled index) -----------

Entry = tuple  # (hand_name, hand_index | None, compiled_name, compiled_index | None)


def same(pairs: dict[str, str]) -> list[Entry]:
    return [(h, None, c, None) for h, c in pairs.items()]


def linear(h: str, c: str, bias: bool = True) -> dict[str, str]:
    out = {f"{h}.weight": f"{c}.weight"}
    if bias:
        out[f"{h}.bias"] = f"{c}.bias"
    return out


def bn(h: str, c: str) -> dict[str, str]:
    keys = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return {f"{h}.{k}": f"{c}.{k}" for k in keys}


def map_mlp() -> list[Entry]:
    return same({**linear("fc1", "hidden1"), **linear("fc2", "hidden2"),
                 **linear("fc3", "logits")})


def map_lenet5() -> list[Entry]:
    m = same({**linear("c1", "C1"), "s2_weight": "S2.weight", "s2_bias": "S2.bias",
              "s4_weight": "S4.weight", "s4_bias": "S4.bias", **linear("c5", "C5"),
              **linear("f6", "F6"), "rbf_centers": "out.centers"})
    k = 0  # the compiled C3 stores one 5x5 kernel per connection, map by map
    for o, ins in enumerate(C3_INPUTS):
        for j, _ in enumerate(ins):
            m.append((f"c3.{o}.weight", (0, j), "C3.weight", k))
            k += 1
        m.append((f"c3.{o}.bias", 0, "C3.bias", o))
    return m


def map_vgg() -> list[Entry]:
    d = {}
    for blk in (1, 2):
        for i, (conv_at, bn_at) in enumerate(((0, 1), (3, 4)), start=1):
            d.update(linear(f"block{blk}.{conv_at}", f"conv{blk}_{i}"))
            d.update(bn(f"block{blk}.{bn_at}", f"bn{blk}_{i}"))
    return same({**d, **linear("fc1", "fc1"), **linear("fc2", "logits")})


def map_resnet() -> list[Entry]:
    d = {"conv.weight": "stem_conv.weight", **bn("bn", "stem_bn"), **linear("fc", "logits")}
    for i in (1, 2, 3):
        for part in ("1", "2"):
            d[f"layer{i}.conv{part}.weight"] = f"res{i}_conv{part}.weight"
            d.update(bn(f"layer{i}.bn{part}", f"res{i}_bn{part}"))
    d["layer2.shortcut.0.weight"] = "res2_proj.weight"
    d.update(bn("layer2.shortcut.1", "res2_proj_bn"))
    return same(d)


def map_inception() -> list[Entry]:
    d = {**linear("stem.0", "stem_conv"), **linear("fc", "logits")}
    for name in ("inc1", "inc2"):
        d.update(linear(f"{name}.branch1.0", f"{name}_1x1"))
        d.update(linear(f"{name}.branch2.0", f"{name}_3x3_reduce"))
        d.update(linear(f"{name}.branch2.2", f"{name}_3x3"))
        d.update(linear(f"{name}.branch3.0", f"{name}_5x5_reduce"))
        d.update(linear(f"{name}.branch3.2", f"{name}_5x5"))
        d.update(linear(f"{name}.branch4.1", f"{name}_pool_proj"))
    return same(d)


def map_text_cnn() -> list[Entry]:
    d = {"embedding.weight": "embed.weight", **linear("fc", "logits")}
    for i, w in enumerate(HandTextCNN.WIDTHS):
        d.update(linear(f"convs.{i}", f"conv_w{w}"))
    return same(d)


def map_triplet() -> list[Entry]:
    return same({**linear("hidden", "hidden"), **linear("embed", "embed")})


def map_digits() -> list[Entry]:
    return same({**linear("conv1", "conv1"), **linear("conv2", "conv2"),
                 **linear("fc1", "fc1"), **linear("fc2", "logits")})


def map_deep_mlp(batch_norm: bool) -> list[Entry]:
    d = {**linear("out", "logits")}
    for i in range(8):
        d.update(linear(f"hidden.{i}", f"dense{i + 1}"))
        if batch_norm:
            d.update(bn(f"norms.{i}", f"bn{i + 1}"))
    return same(d)


@dataclass(frozen=True)
class Case:
    hand: Callable[[], nn.Module]
    mapping: Callable[[], list[Entry]]
    # compiled buffers that are fixed constants of the graph, with their expected values
    constants: tuple[tuple[str, float], ...] = ()
    flop_counted: bool = True  # torch's flop counter sees every weight multiplication


CASES = {
    "mlp_spirals": Case(HandMLP, map_mlp),
    "lenet5": Case(HandLeNet5, map_lenet5, (("scores.scale", -1.0), ("scores.shift", 0.0)),
                   flop_counted=False),
    "vgg_small": Case(HandVGG, map_vgg),
    "resnet_small": Case(HandResNet, map_resnet),
    "inception_small": Case(HandInception, map_inception),
    "text_cnn": Case(HandTextCNN, map_text_cnn),
    "triplet_embedding": Case(HandTriplet, map_triplet),
    "digits_cnn": Case(HandDigits, map_digits),
    "deep_sigmoid_mlp": Case(lambda: HandDeepMLP(False), lambda: map_deep_mlp(False)),
    "deep_relu_bn_mlp": Case(lambda: HandDeepMLP(True), lambda: map_deep_mlp(True)),
}


# ---- helpers ---------------------------------------------------------------------------------


def tensor_of(module: nn.Module, name: str) -> torch.Tensor:
    try:
        return module.get_parameter(name)
    except AttributeError:
        return module.get_buffer(name)


def pick(t: torch.Tensor, index) -> torch.Tensor:
    return t if index is None else t[index]


def check_coverage(module: nn.Module, used: list[tuple[str, object]], skip=()) -> None:
    """Every element of every parameter and persistent buffer is mapped exactly once."""
    counts = {n: torch.zeros(t.shape, dtype=torch.int32) for n, t in module.state_dict().items()
              if n not in skip}
    for name, index in used:
        assert name in counts, f"mapping names {name!r}, which the model does not have"
        view = pick(counts[name], index)
        view += 1
    for name, c in counts.items():
        assert (c == 1).all(), f"{name}: {int((c == 0).sum())} elements unmapped, " \
                               f"{int((c > 1).sum())} mapped twice"


def perturb(module: nn.Module, seed: int) -> None:
    """Move parameters and batch-norm statistics off their initial values (ones, zeros)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))


def load(stem: str):
    return load_graph(EXAMPLES / f"{stem}.json")


def example_files() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.json"))


# ---- tests -----------------------------------------------------------------------------------


def test_every_example_has_a_hand_written_twin():
    # the recurrent examples are checked in test_recurrent.py (cells against torch.nn.RNN,
    # LSTM and GRU; char_lstm_cell against Embedding + nn.LSTM + Linear)
    from tests.runtime.test_recurrent import RECURRENT_EXAMPLES

    assert example_files() == sorted(set(CASES) | set(RECURRENT_EXAMPLES))


@pytest.mark.parametrize("stem", sorted(CASES))
def test_example_loads_and_validates_cleanly(stem):
    doc = load(stem)
    assert validate(doc) == []  # no errors and no warnings
    assert doc.metadata["name"].strip()
    assert 40 <= len(doc.metadata["description"]) <= 700
    from runtime.training.presets import example_training  # runtime/training/presets.py

    assert doc.training == (example_training(stem) or {})  # training presets or nothing
    positions = [n.position for n in doc]
    assert len(set(positions)) == len(positions), "two nodes share a position"
    for e in doc.edges:  # laid out top to bottom (long ones wrap into columns)
        a, b = doc.nodes[e.source].position, doc.nodes[e.target].position
        assert a[1] < b[1] or a[0] + 100 < b[0], str(e)


@pytest.mark.parametrize("stem", sorted(CASES))
def test_summary_numbers_match_hand_written_model(stem, capsys):
    case = CASES[stem]
    assert cli_main(["summary", str(EXAMPLES / f"{stem}.json"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    hand = case.hand()
    assert summary["total_params"] == sum(p.numel() for p in hand.parameters())
    assert summary["total_params"] == sum(r["params"] for r in summary["nodes"])
    if case.flop_counted:
        doc = load(stem)
        xs = example_inputs(doc, batch=1)
        with FlopCounterMode(display=False) as counter:
            hand.eval()(*xs)
        assert summary["total_macs"] == counter.get_total_flops() // 2


SLOW_TWINS = {"inception_small", "vgg_small", "lenet5", "digits_cnn"}  # over a second each


@pytest.mark.parametrize("stem", [
    pytest.param(s, marks=[pytest.mark.slow] if s in SLOW_TWINS else []) for s in sorted(CASES)])
def test_compiled_example_equals_hand_written_model(stem):
    case = CASES[stem]
    doc = load(stem)
    sig = signature(doc)
    torch.manual_seed(0)
    compiled = build_module(doc, mode="train")
    perturb(compiled, seed=1)
    hand = case.hand()
    mapping = case.mapping()
    constants = dict(case.constants)
    check_coverage(compiled, [(c, ci) for _, _, c, ci in mapping], skip=constants)
    check_coverage(hand, [(h, hi) for h, hi, _, _ in mapping])
    for name, value in constants.items():
        assert_close(tensor_of(compiled, name), torch.tensor(value))
    with torch.no_grad():
        for h, hi, c, ci in mapping:
            pick(tensor_of(hand, h), hi).copy_(pick(tensor_of(compiled, c), ci))

    inputs = example_inputs(doc, batch=BATCH, mode="train", seed=2)
    xs, targets = inputs[:len(sig.inputs)], inputs[len(sig.inputs):]
    pred_name = sig.outputs[0]
    for training in (False, True):
        compiled.train(training)
        hand.train(training)
        compiled.zero_grad(set_to_none=True)
        hand.zero_grad(set_to_none=True)
        torch.manual_seed(3)  # same dropout masks: both draw them in the same order
        out = compiled(*inputs)
        torch.manual_seed(3)
        pred = hand(*xs)
        loss = hand.loss(pred, *targets)
        assert_close(out[pred_name], pred)
        assert_close(out["loss"], loss)
        assert loss.item() > 0
        out["loss"].backward()
        loss.backward()
        for h, hi, c, ci in mapping:
            ht, ct = tensor_of(hand, h), tensor_of(compiled, c)
            if isinstance(ct, nn.Parameter):
                assert ct.grad is not None, f"{c} got no gradient"
                assert_close(pick(ht.grad, hi), pick(ct.grad, ci), msg=lambda m: f"{c}: {m}")
            else:  # batch-norm statistics, updated alike in training mode
                assert_close(pick(ht, hi), pick(ct, ci), msg=lambda m: f"{c}: {m}")

    # the predict-mode module (losses and targets pruned) with the same weights
    predictor = build_module(doc, mode="predict")
    predictor.load_state_dict(compiled.state_dict())
    predictor.eval()
    hand.eval()
    with torch.no_grad():
        assert_close(predictor(*xs), hand(*xs))


def test_lenet5_summary_matches_the_paper(capsys):
    """`netbuilder summary --json` reproduces LeNet-5's published parameter counts."""
    from runtime.cli import main as cli_main

    assert cli_main(["summary", str(EXAMPLES / "lenet5.json"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = {r["label"]: r for r in summary["nodes"]}
    assert rows["C1"]["params"] == 156
    assert rows["C1"]["macs"] == 117_600  # 6 maps x 28 x 28 positions x 25 weights
    assert rows["C1"]["output_shape"] == [6, 28, 28]
    assert rows["S2"]["params"] == 12
    assert rows["S2"]["output_shape"] == [6, 14, 14]
    assert rows["C3"]["params"] == 1_516
    assert rows["S4"]["params"] == 32
    assert rows["C5"]["params"] == 48_120
    assert rows["C5"]["output_shape"] == [120, 1, 1]
    assert rows["F6"]["params"] == 10_164
    assert rows["output"]["params"] == 840
    assert rows["output"]["output_shape"] == [10]
    assert summary["total_params"] == 60_840

