"""Memory of a streamed training run on a large generated image folder.

    python3 benchmarks/bench_stream_memory.py --gb 2 [--folder /tmp/big_images] [--steps 150]

Generates (once; kept for reruns) an image folder of ``--gb`` gigabytes of 3x224x224 PPM
files in 10 classes, then trains a small CNN on it with the Netbuilder trainer (the data
streamed through DataLoader workers) for ``--steps`` steps and prints the trainer
process's peak resident memory before and after the run, as one JSON line. A warm-up run
on a 300-image folder comes first, so imports, kernels and batch-sized buffers are counted
before the measurement; what grows after is what the data costs.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.data.images import write_pgm  # noqa: E402
from runtime.graph import GraphDocument  # noqa: E402
from runtime.training import TrainConfig, Trainer  # noqa: E402

SIDE = 224
IMAGE_BYTES = SIDE * SIDE * 3 + 15


def make_folder(root: Path, n: int) -> None:
    marker = root / f".complete-{n}"
    if marker.exists():
        return
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, (64, SIDE, SIDE, 3)).astype(np.uint8)
    for i in range(n):
        k = i % 10
        d = root / f"class{k}"
        d.mkdir(parents=True, exist_ok=True)
        img = base[i % 64].copy()
        img[20 * k:20 * k + 20, :, k % 3] = 255
        write_pgm(d / f"{i:06d}.ppm", img)
    marker.write_text("ok")


def cnn() -> GraphDocument:
    d = GraphDocument("stream")
    d.add_node("ImageInput", {"channels": 3, "height": SIDE, "width": SIDE}, node_id="image")
    d.add_node("Conv2d", {"filters": 8, "kernel_size": 7, "stride": 4}, node_id="conv")
    d.add_node("ReLU", node_id="relu")
    d.add_node("MaxPool", {"kernel_size": 4}, node_id="pool")
    d.add_node("Flatten", node_id="flat")
    d.add_node("Dense", {"units": 10}, node_id="logits")
    d.add_node("Target", {"kind": "class", "num_classes": 10}, node_id="label")
    d.add_node("CrossEntropy", node_id="loss")
    for a, b in (("image", "conv"), ("conv", "relu"), ("relu", "pool"), ("pool", "flat"),
                 ("flat", "logits")):
        d.connect(a, "out", b, "x")
    d.connect("logits", "out", "loss", "pred")
    d.connect("label", "out", "loss", "target")
    return d


def fit(folder: Path, steps: int, workers: int) -> tuple[dict, float]:
    # streamed in both runs (the warm-up's 300 images would otherwise be read into memory
    # and raise the peak that the measured run is compared with)
    cfg = TrainConfig.from_dict({"dataset": f"images:{folder}?stream=on&workers={workers}",
                                 "batch_size": 32, "epochs": 1, "val_split": 0.01,
                                 "visualize_every": 10**9})
    t0 = time.perf_counter()
    final = Trainer(cnn(), cfg, device="cpu", max_steps=steps).fit()
    return final, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--folder", default="/tmp/netbuilder_big_images")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    root = Path(args.folder)
    n = int(args.gb * 2**30 / IMAGE_BYTES)
    t0 = time.perf_counter()
    make_folder(root / "big", n)
    make_folder(root / "small", 300)
    made = time.perf_counter() - t0
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    fit(root / "small", 20, args.workers)
    before = rss()
    final, secs = fit(root / "big", args.steps, args.workers)
    after = rss()
    print(json.dumps({"images": n, "folder_gb": round(n * IMAGE_BYTES / 2**30, 2),
                      "float32_gb": round(n * 3 * SIDE * SIDE * 4 / 2**30, 2),
                      "status": final["status"], "steps": final["steps"],
                      "peak_rss_before_mb": round(before), "peak_rss_after_mb": round(after),
                      "grew_mb": round(after - before), "train_s": round(secs, 1),
                      "generate_s": round(made, 1)}))


if __name__ == "__main__":
    main()
