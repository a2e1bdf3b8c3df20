"""Bundle export time and size, weights stored vs deflate-compressed, side by side.

A VGG-16 graph at 64x64 (13 convolutions in five blocks, two Dense 4096, 10 classes;
about 40 M parameters, 160 MB of float32 weights) is compiled once; then the .zip bundle
is exported (written, reloaded, recompiled and compared: the whole export) with the
weights stored (the current format) and deflated (as before), alternating, ``--rounds``
times each. Prints the median seconds and the file size of each and the ratio.

    python benchmarks/bench_bundle.py
    python benchmarks/bench_bundle.py --rounds 3 --size 64 --threads 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402

from runtime import GraphDocument  # noqa: E402
from runtime.export import export_prepared, prepare  # noqa: E402
from runtime.export.formats import bundle  # noqa: E402

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16(size: int) -> GraphDocument:
    d = GraphDocument("vgg16")
    d.add_node("ImageInput", {"channels": 3, "height": size, "width": size}, node_id="image")
    prev, i = "image", 0
    for v in VGG16:
        i += 1
        if v == "M":
            d.add_node("MaxPool", {"kernel_size": 2}, node_id=f"pool{i}")
            d.connect(prev, "out", f"pool{i}", "x")
            prev = f"pool{i}"
            continue
        d.add_node("Conv2d", {"filters": v, "kernel_size": 3, "padding": 1}, node_id=f"conv{i}")
        d.add_node("ReLU", node_id=f"relu{i}")
        d.connect(prev, "out", f"conv{i}", "x")
        d.connect(f"conv{i}", "out", f"relu{i}", "x")
        prev = f"relu{i}"
    d.add_node("Flatten", node_id="flat")
    d.connect(prev, "out", "flat", "x")
    prev = "flat"
    for j, units in enumerate((4096, 4096, 10)):
        d.add_node("Dense", {"units": units}, node_id=f"fc{j + 1}")
        d.connect(prev, "out", f"fc{j + 1}", "x")
        prev = f"fc{j + 1}"
        if units != 10:
            d.add_node("ReLU", node_id=f"fc_relu{j + 1}")
            d.connect(prev, "out", f"fc_relu{j + 1}", "x")
            prev = f"fc_relu{j + 1}"
    d.add_node("Output", node_id="scores")
    d.connect(prev, "out", "scores", "x")
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = prepare(vgg16(args.size))
    n_params = sum(v.numel() for v in p.state.values())
    print(f"VGG-16 at {args.size}x{args.size}: {n_params / 1e6:.1f} M parameters, "
          f"torch {torch.__version__}, {args.threads} threads")
    kinds = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = list(kinds) if r % 2 == 0 else list(kinds)[::-1]
            for name in order:
                bundle.COMPRESSION = kinds[name]
                out = Path(tmp) / f"{name}{r}.zip"
                t0 = time.perf_counter()
                export_prepared(p, "bundle", out)
                times[name].append(time.perf_counter() - t0)
                sizes[name] = out.stat().st_size
                out.unlink()
    bundle.COMPRESSION = zipfile.ZIP_STORED
    for name in kinds:
        print(f"{name:9s} median {statistics.median(times[name]):6.2f} s  "
              f"(all: {', '.join(f'{t:.2f}' for t in times[name])})  {sizes[name] / 1e6:7.1f} MB")
    ratio = statistics.median(times["stored"]) / statistics.median(times["deflated"])
    print(f"stored / deflated: time {ratio:.2f}, size {sizes['stored'] / sizes['deflated']:.3f}")


if __name__ == "__main__":
    main()
