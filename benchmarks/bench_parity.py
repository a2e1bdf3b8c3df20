"""Netbuilder's trainer against a hand-written PyTorch loop on the same model and data.

    python3 benchmarks/bench_parity.py [--samples 60000] [--rounds 2] [--epochs 1]
        [--device cpu|cuda] [--models lenet5,resnet]

Data: MNIST-shaped IDX files (28x28 grey, ``--samples`` records) and CIFAR-shaped binary
batches (3x32x32) generated on disk once (nothing downloaded). Models: LeNet-5 on the IDX
files (resources/examples/full_size/mnist_lenet5.json) and the small ResNet on the CIFAR
batches (resources/examples/resnet_small.json). The plain loop is the exported model.py, a
DataLoader over the same normalised arrays, Adam at the same learning rate and batch size;
the trainer runs at its defaults (instrumentation on). The two alternate in one run,
``--rounds`` times; training time counts the training steps (data loading included,
evaluation excluded). Prints one row per model: samples/s of each, their ratio
(trainer / plain, median over rounds; goal >= 0.97) and the validation accuracies.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plain  # noqa: E402

from runtime import load_graph  # noqa: E402
from tests.runtime.data_files import write_cifar, write_idx_pair  # noqa: E402

EX = plain.ROOT / "resources" / "examples"


def cases(folder: Path, samples: int):
    imgs, labels = write_idx_pair(folder / "mnist", n=samples)
    cifar = write_cifar(folder / "cifar", n=(max(1000, samples // 6),))
    return {"lenet5": (EX / "full_size" / "mnist_lenet5.json", f"idx:{imgs},{labels}"),
            "resnet": (EX / "resnet_small.json", f"cifar:{cifar}")}


def measure(name, graph, spec, args) -> dict:
    doc = load_graph(graph)
    cfg = doc.training
    ratios, rows = [], []
    train, val = plain.arrays(doc, spec, cfg["val_split"], cfg.get("seed", 0))
    n_in = len(doc_inputs(doc))
    for r in range(args.rounds):
        nb = plain.train_netbuilder(doc, spec, args.epochs, args.device)
        pl = plain.train_plain(plain.exported_model(doc), train, val, n_in, cfg["batch_size"],
                               cfg["lr"], args.epochs, args.device)
        ratios.append(nb["samples_per_s"] / pl["samples_per_s"])
        rows.append((nb, pl))
        print(f"  {name} round {r + 1}: trainer {nb['samples_per_s']:,.0f} samples/s, plain "
              f"{pl['samples_per_s']:,.0f} samples/s, ratio {ratios[-1]:.3f}", flush=True)
    nb, pl = rows[-1]
    return {"model": name, "trainer_sps": statistics.median(r[0]["samples_per_s"] for r in rows),
            "plain_sps": statistics.median(r[1]["samples_per_s"] for r in rows),
            "ratio": statistics.median(ratios), "trainer_acc": nb["val_accuracy"][-1],
            "plain_acc": pl["val_accuracy"][-1]}


def doc_inputs(doc):
    from runtime.compiler import signature

    return signature(doc).inputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", default="lenet5,resnet")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="nb_parity_"))
    all_cases = cases(folder, args.samples)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.samples} MNIST-shaped samples, {args.rounds} rounds of {args.epochs} epoch(s)")
    results = [measure(m, *all_cases[m], args) for m in args.models.split(",")]
    print("\n| model | trainer samples/s | plain samples/s | trainer/plain | val acc trainer | val acc plain |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['trainer_sps']:,.0f} | {r['plain_sps']:,.0f} | {r['ratio']:.3f} "
              f"| {plain.fmt(r['trainer_acc'])} | {plain.fmt(r['plain_acc'])} |")


if __name__ == "__main__":
    main()
