"""Train-step time of compiled graphs vs hand-written nn.Modules.

One train step = zero_grad + forward (to the loss) + backward + SGD step, on CPU with
``torch.set_num_threads(2)``. Models, each compiled from a graph document with
``build_module(doc, mode="train")`` and written by hand with the same layers:

- LeNet-5 (resources/examples/lenet5.json if present, else built here with the
  GraphDocument API): ImageInput 1x32x32, C1 Conv 6@5, tanh, S2 sub-sampling, tanh,
  C3 connection-table conv, tanh, S4, tanh, C5 Conv 120@5, tanh, flatten, F6 Dense 84,
  tanh, RBF 10, Scale(-1), cross-entropy;
- MLP 2-64-64-2 and MLP 784-256-256-10 (ReLU), cross-entropy.

Two hand-written versions: module style (nn.Tanh / nn.ReLU / nn.Flatten modules and an
nn.CrossEntropyLoss criterion, the common idiom) and functional style (torch.tanh, F.relu,
F.cross_entropy: the leanest Python). Each gets the compiled model's weights and must give
the same loss. All three run in the same process in alternating blocks (rotating order);
per model we print the median step time of each and the ratio compiled/hand-written:
of the wall-time medians, the median of the per-round ratios (paired, robust to drift),
and of the process-CPU-time medians (robust to other processes on a shared machine).

    python benchmarks/bench_train_step.py
    python benchmarks/bench_train_step.py --rounds 10 --steps 20 --batch 64
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from runtime import GraphDocument, build_module, load_graph  # noqa: E402
from runtime.catalog import modules as M  # noqa: E402
from runtime.catalog.convolution import LENET5_C3_TABLE  # noqa: E402

LENET_JSON = os.path.join(ROOT, "resources", "examples", "lenet5.json")


# ---- graphs -----------------------------------------------------------------------------


def lenet5_doc() -> tuple[GraphDocument, str]:
    if os.path.exists(LENET_JSON):
        return load_graph(LENET_JSON), "resources/examples/lenet5.json"
    d = GraphDocument("LeNet-5")
    chain = [("image", "ImageInput", {"channels": 1, "height": 32, "width": 32}),
             ("C1", "Conv2d", {"filters": 6, "kernel_size": 5}), ("tanh_C1", "Tanh", {}),
             ("S2", "Subsample2d", {"kernel_size": 2}), ("tanh_S2", "Tanh", {}),
             ("C3", "TableConv2d", {}), ("tanh_C3", "Tanh", {}),
             ("S4", "Subsample2d", {"kernel_size": 2}), ("tanh_S4", "Tanh", {}),
             ("C5", "Conv2d", {"filters": 120, "kernel_size": 5}), ("tanh_C5", "Tanh", {}),
             ("flatten", "Flatten", {}), ("F6", "Dense", {"units": 84}), ("tanh_F6", "Tanh", {}),
             ("out", "RBF", {"units": 10}), ("scores", "Scale", {"scale": -1.0})]
    for i, (nid, t, p) in enumerate(chain):
        d.add_node(t, p, node_id=nid)
        if i:
            d.connect(chain[i - 1][0], "out", nid, "x")
    d.add_node("Target", {"kind": "class", "num_classes": 10}, node_id="label")
    d.add_node("CrossEntropy", {}, node_id="loss")
    d.connect("scores", "out", "loss", "pred")
    d.connect("label", "out", "loss", "target")
    return d, "built in code"


def mlp_doc(sizes: list[int]) -> GraphDocument:
    d = GraphDocument("mlp-" + "-".join(map(str, sizes)))
    d.add_node("VectorInput", {"features": sizes[0]}, node_id="x")
    prev = "x"
    for i, units in enumerate(sizes[1:]):
        d.add_node("Dense", {"units": units}, node_id=f"fc{i + 1}")
        d.connect(prev, "out", f"fc{i + 1}", "x")
        prev = f"fc{i + 1}"
        if i < len(sizes) - 2:
            d.add_node("ReLU", node_id=f"relu{i + 1}")
            d.connect(prev, "out", f"relu{i + 1}", "x")
            prev = f"relu{i + 1}"
    d.add_node("Target", {"kind": "class", "num_classes": sizes[-1]}, node_id="y")
    d.add_node("CrossEntropy", {}, node_id="loss")
    d.connect(prev, "out", "loss", "pred")
    d.connect("y", "out", "loss", "target")
    return d


# ---- hand-written models ------------------------------------------------------------------


class LeNet5(nn.Module):
    """LeNet-5 as one would write it by hand (same layer classes, same parameter names).

    ``functional``: activations, flatten and loss as torch functions (the leanest code);
    otherwise as modules (nn.Tanh, nn.Flatten, nn.CrossEntropyLoss), the common idiom.
    """

    def __init__(self, functional: bool):
        super().__init__()
        self.functional = functional
        self.C1 = nn.Conv2d(1, 6, 5)
        self.S2 = M.Subsample2d(6, 2, 2)
        self.C3 = M.SparseConv2d(6, LENET5_C3_TABLE, (5, 5))
        self.S4 = M.Subsample2d(16, 2, 2)
        self.C5 = nn.Conv2d(16, 120, 5)
        self.F6 = nn.Linear(120, 84)
        self.out = M.RBF(84, 10)
        self.scores = M.Scale(-1.0, 0.0, False)
        if not functional:
            self.t1, self.t2, self.t3, self.t4, self.t5, self.t6 = (nn.Tanh() for _ in range(6))
            self.flatten = nn.Flatten()
            self.criterion = nn.CrossEntropyLoss()

    def forward(self, image, label):
        if self.functional:
            x = torch.tanh(self.C1(image))
            x = torch.tanh(self.S2(x))
            x = torch.tanh(self.C3(x))
            x = torch.tanh(self.S4(x))
            x = torch.tanh(self.C5(x)).flatten(1)
            x = torch.tanh(self.F6(x))
            return F.cross_entropy(self.scores(self.out(x)), label)
        x = self.t1(self.C1(image))
        x = self.t2(self.S2(x))
        x = self.t3(self.C3(x))
        x = self.t4(self.S4(x))
        x = self.flatten(self.t5(self.C5(x)))
        x = self.t6(self.F6(x))
        return self.criterion(self.scores(self.out(x)), label)


class MLP(nn.Module):
    """Linear layers fc1..fcN with ReLU between; functional or module style (see LeNet5)."""

    def __init__(self, sizes: list[int], functional: bool):
        super().__init__()
        self.functional = functional
        self.n = len(sizes) - 1
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            setattr(self, f"fc{i + 1}", nn.Linear(a, b))
            if not functional and i < self.n - 1:
                setattr(self, f"relu{i + 1}", nn.ReLU())
        if not functional:
            self.criterion = nn.CrossEntropyLoss()

    def forward(self, x, y):
        if self.functional:
            for i in range(1, self.n):
                x = F.relu(getattr(self, f"fc{i}")(x))
            return F.cross_entropy(getattr(self, f"fc{self.n}")(x), y)
        for i in range(1, self.n):
            x = getattr(self, f"relu{i}")(getattr(self, f"fc{i}")(x))
        return self.criterion(getattr(self, f"fc{self.n}")(x), y)


# ---- timing ----------------------------------------------------------------------------------


def make_step(model, inputs, returns_dict: bool, lr: float = 0.01):
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(*inputs)
        loss = out["loss"] if returns_dict else out
        loss.backward()
        opt.step()
    return step


def time_block(step, n: int) -> tuple[float, float]:
    """Per-step (wall ms, process CPU ms) over ``n`` steps."""
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    return (time.perf_counter() - t) / n * 1e3, (time.process_time() - c) / n * 1e3


def compare(name, doc, make_hand, inputs, rounds, steps):
    """Compiled vs hand-written (module style and functional style), alternating blocks."""
    compiled = build_module(doc, mode="train")
    models = {"compiled": compiled, "hand": make_hand(False), "hand_functional": make_hand(True)}
    with torch.no_grad():
        ref = compiled(*inputs)["loss"]
        for key in ("hand", "hand_functional"):
            missing, _ = models[key].load_state_dict(compiled.state_dict(), strict=False)
            assert not [k for k in missing if not k.endswith(("rows", "cols"))], missing
            got = models[key](*inputs)
            assert torch.allclose(ref, got, rtol=1e-6, atol=1e-7), (name, key, ref, got)
    fns = {k: make_step(m, inputs, k == "compiled") for k, m in models.items()}
    keys = list(fns)
    for _ in range(max(10, steps)):  # warm-up (allocator, autograd, first-call caches)
        for k in keys:
            fns[k]()
    times = {k: [] for k in keys}
    cpu = {k: [] for k in keys}
    ratios = {k: [] for k in keys if k != "compiled"}
    for r in range(rounds):
        order = keys[r % 3:] + keys[:r % 3]  # rotate who goes first
        if r % 2:
            order = order[::-1]
        got = {k: time_block(fns[k], steps) for k in order}
        for k in keys:
            times[k].append(got[k][0])
            cpu[k].append(got[k][1])
        for k in ratios:
            ratios[k].append(got["compiled"][0] / got[k][0])
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    row = {"model": name, "compiled_ms": med["compiled"], "hand_ms": med["hand"],
           "hand_functional_ms": med["hand_functional"],
           "ratio": med["compiled"] / med["hand"],
           "ratio_paired": statistics.median(ratios["hand"]),
           "ratio_cpu": cmed["compiled"] / cmed["hand"],
           "ratio_functional": med["compiled"] / med["hand_functional"],
           "ratio_functional_paired": statistics.median(ratios["hand_functional"]),
           "ratio_functional_cpu": cmed["compiled"] / cmed["hand_functional"],
           "cpu_ms": cmed, "rounds": rounds, "steps_per_block": steps}
    print(f"{name:20s} wall: compiled {med['compiled']:7.3f} | hand (modules) {med['hand']:7.3f} "
          f"| hand (functional) {med['hand_functional']:7.3f} ms", flush=True)
    print(f"{'':20s} compiled/hand (modules): {row['ratio']:.3f} wall, {row['ratio_paired']:.3f} "
          f"paired, {row['ratio_cpu']:.3f} CPU | compiled/hand (functional): "
          f"{row['ratio_functional']:.3f} wall, {row['ratio_functional_paired']:.3f} paired, "
          f"{row['ratio_functional_cpu']:.3f} CPU", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20, help="A/B rounds per model")
    ap.add_argument("--steps", type=int, default=20, help="train steps per block")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    B = args.batch
    lenet, source = lenet5_doc()
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, batch {B}, "
          f"LeNet-5 graph: {source}", flush=True)
    cases = [
        ("LeNet-5", lenet, LeNet5,
         (torch.randn(B, 1, 32, 32, generator=g), torch.randint(0, 10, (B,), generator=g))),
        ("MLP 2-64-64-2", mlp_doc([2, 64, 64, 2]), lambda f: MLP([2, 64, 64, 2], f),
         (torch.randn(B, 2, generator=g), torch.randint(0, 2, (B,), generator=g))),
        ("MLP 784-256-256-10", mlp_doc([784, 256, 256, 10]), lambda f: MLP([784, 256, 256, 10], f),
         (torch.randn(B, 784, generator=g), torch.randint(0, 10, (B,), generator=g))),
    ]
    rows = [compare(name, doc, make_hand, inputs, args.rounds, args.steps)
            for name, doc, make_hand, inputs in cases]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
