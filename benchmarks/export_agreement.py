"""The export agreement figures: every example in resources/examples exported in every
format (``prepare`` once, then ``export_prepared`` per format, one torch thread); prints
the largest difference each export measured against the compiled graph, per (example,
format), and with ``--json FILE`` writes them, so two versions of the code can be
compared pair by pair.

    python benchmarks/export_agreement.py --json /tmp/after.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from runtime import load_graph  # noqa: E402
from runtime.export import export_prepared, prepare  # noqa: E402

SUFFIX = {"bundle": ".zip", "torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx", "python": ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write {example/format: max abs diff} here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict[str, float | str] = {}
    for path in sorted((ROOT / "resources" / "examples").glob("*.json")):
        p = prepare(load_graph(path))
        with tempfile.TemporaryDirectory() as tmp:
            for fmt, suffix in SUFFIX.items():
                t0 = time.perf_counter()
                try:
                    r = export_prepared(p, fmt, Path(tmp) / f"m{suffix}")
                    out[f"{path.stem}/{fmt}"] = r.max_abs_diff
                except Exception as exc:  # noqa: BLE001 - a failed pair is a result too
                    out[f"{path.stem}/{fmt}"] = f"error: {exc}"
                print(f"{path.stem:20s} {fmt:12s} {out[f'{path.stem}/{fmt}']!s:24s} "
                      f"{time.perf_counter() - t0:5.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
