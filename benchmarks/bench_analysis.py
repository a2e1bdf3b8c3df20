"""Validation + analysis time on large graphs.

Measures, for graphs of 100, 1,000 and 5,000 nodes (see graphgen.py: a realistic variant
whose widths repeat, and a variant where every layer is unique):

- full:        validate(doc, shapes=False) + analyze(doc) on a new document with the
               analysis memo cleared (cold cache);
- incremental: the same two calls after one ``doc.set_param`` on the BatchNorm node
               nearest the middle (a new ``eps`` each time, so that node is always a memo
               miss) on a document analysed before (warm);
- structural:  the same after adding one ReLU node fed by the middle node, and after
               removing it again (both recorded).

Prints median and p90 (ms) per case, of wall time and of this thread's CPU time (the
machine is shared and noisy: CPU time is what the code costs, wall time what a user waits). ``--baseline REF`` also loads the runtime package of
git revision REF (e.g. ``f0ee682``, the core before its restructuring) and measures it in the same
process, alternating A/B blocks, and prints the ratio new/baseline (of CPU medians).

    python benchmarks/bench_analysis.py                      # all sizes
    python benchmarks/bench_analysis.py --sizes 100,1000 --baseline f0ee682
    python benchmarks/bench_analysis.py --quick              # smoke run, few repetitions
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from graphgen import make_graph, middle_node  # noqa: E402


def load_runtime(ref: str | None):
    """The working tree's runtime package, or the one of git revision ``ref`` (renamed)."""
    if ref is None:
        return importlib.import_module("runtime")
    tmp = tempfile.mkdtemp(prefix="nb_base_")
    atexit.register(shutil.rmtree, tmp, True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "runtime", "resources"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    name = "runtime_base"
    os.rename(os.path.join(tmp, "runtime"), os.path.join(tmp, name))
    sys.path.insert(0, tmp)
    return importlib.import_module(name)


def p90(xs):
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(0.9 * len(s) + 0.5)) - 1))]


class Case:
    """One runtime package under test: its modules and timing helpers."""

    def __init__(self, rt, label):
        self.rt, self.label = rt, label
        self.analysis = importlib.import_module(rt.__name__ + ".analysis")  # clear_cache

    def run(self, doc):
        """What the editor does after an edit (the public entry points of either tree)."""
        diags = self.rt.validate(doc, shapes=False)
        a = self.rt.analyze(doc)
        return diags, a

    def timed(self, doc):
        """(wall ms, CPU ms of this thread): CPU time is robust to other processes."""
        t, c = time.perf_counter(), time.thread_time()
        self.run(doc)
        return (time.perf_counter() - t) * 1e3, (time.thread_time() - c) * 1e3


def check_clean(case, doc):
    diags, a = case.run(doc)
    errors = [d for d in list(diags) + list(a.diagnostics) if d.is_error]
    assert not errors, errors[:3]
    return a


def bench_cold(cases, n, unique, reps):
    out = {c.label: [] for c in cases}
    for r in range(reps):
        for c in (cases if r % 2 == 0 else cases[::-1]):  # alternate A/B order
            doc = make_graph(c.rt, n, unique=unique, seed=r)
            c.analysis.clear_cache()
            out[c.label].append(c.timed(doc))
    return out


def bench_incremental(cases, n, unique, reps, block=5):
    docs = {}
    for c in cases:
        doc = make_graph(c.rt, n, unique=unique)
        check_clean(c, doc)  # warm: analysed once
        docs[c.label] = (doc, middle_node(doc, "BatchNorm"))
    out = {c.label: [] for c in cases}
    k = 0
    for b in range(0, reps, block):
        for c in (cases if (b // block) % 2 == 0 else cases[::-1]):
            doc, mid = docs[c.label]
            for _ in range(min(block, reps - b)):
                k += 1
                doc.set_param(mid, "eps", 1e-5 * (1.0 + k * 1e-4))  # a new value: a memo miss
                out[c.label].append(c.timed(doc))
    for c in cases:  # the incremental results equal a cold analysis of a copy
        doc, _ = docs[c.label]
        a = c.run(doc)[1]
        c.analysis.clear_cache()
        b = c.run(doc.copy())[1]
        assert a.nodes == b.nodes and a.order == b.order, "incremental result differs"
    return out


def bench_structural(cases, n, unique, reps):
    docs = {}
    for c in cases:
        doc = make_graph(c.rt, n, unique=unique)
        check_clean(c, doc)
        docs[c.label] = (doc, middle_node(doc, "ReLU"))
    out = {c.label: [] for c in cases}
    for r in range(reps):
        for c in (cases if r % 2 == 0 else cases[::-1]):
            doc, mid = docs[c.label]
            if r % 2 == 0:
                node = doc.add_node("ReLU", node_id="probe")
                doc.connect(mid, "out", node.id, "x")
            else:
                doc.remove_node("probe")
            out[c.label].append(c.timed(doc))
    return out


def summarise(name, n, unique, res, cases):
    rows = []
    base = cases[0].label if len(cases) > 1 else None
    for c in cases[::-1]:
        xs = [w for w, _ in res[c.label]]
        cpu = [u for _, u in res[c.label]]
        row = {"case": name, "nodes": n, "variant": "unique" if unique else "realistic",
               "core": c.label, "median_ms": statistics.median(xs), "p90_ms": p90(xs),
               "cpu_median_ms": statistics.median(cpu), "cpu_p90_ms": p90(cpu),
               "reps": len(xs)}
        if base and c.label != base:
            bcpu = [u for _, u in res[base]]
            row["cpu_ratio_vs_baseline"] = statistics.median(cpu) / statistics.median(bcpu)
        rows.append(row)
        extra = (f"  CPU ratio {row['cpu_ratio_vs_baseline']:.3f}"
                 if "cpu_ratio_vs_baseline" in row else "")
        print(f"{name:12s} {n:5d} {row['variant']:9s} {c.label:9s} wall median "
              f"{row['median_ms']:9.2f} p90 {row['p90_ms']:9.2f} | CPU median "
              f"{row['cpu_median_ms']:9.2f} p90 {row['cpu_p90_ms']:9.2f} ms (n={len(xs)}){extra}",
              flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--baseline", default=None, help="git revision to compare against")
    ap.add_argument("--variants", default="realistic,unique")
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke test)")
    ap.add_argument("--json", default=None, help="write the rows to this file")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    cases = []
    if args.baseline:
        cases.append(Case(load_runtime(args.baseline), "baseline"))
    cases.append(Case(load_runtime(None), "current"))
    for c in cases:  # warm-up: imports, torch's meta kernels, dispatch caches
        for unique in (False, True):
            check_clean(c, make_graph(c.rt, 200, unique=unique, seed=99))
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}", flush=True)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        for variant in args.variants.split(","):
            unique = variant == "unique"
            if args.quick:
                cold, inc, struct = 2, 6, 4
            else:
                cold = {100: 15, 1000: 7}.get(n, 3)
                inc, struct = 30, 10
            rows += summarise("full(cold)", n, unique, bench_cold(cases, n, unique, cold), cases)
            rows += summarise("incremental", n, unique,
                              bench_incremental(cases, n, unique, inc), cases)
            rows += summarise("structural", n, unique,
                              bench_structural(cases, n, unique, struct), cases)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
