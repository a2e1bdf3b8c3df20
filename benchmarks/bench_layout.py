"""Layered layout engines side by side: grandalf's SugiyamaLayout against Netbuilder's own
(graph_editor/layout.py, on networkx), on the 15 gallery examples and synthetic graphs.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_layout.py [--big 500 2000]

For each graph: edge crossings (straight segments between the port anchors), total wire
length (the same segments) and the time to compute the positions, both engines top to
bottom with the same node sizes. grandalf lays out each connected part on its own; the
parts are put side by side, as ours does. Results and the command: docs/decisions.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def grandalf_positions(doc, direction="TB") -> dict:
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    from graph_editor.items import node_size
    from graph_editor.layout import LAYER_GAP, NODE_GAP
    from runtime.validation import feedforward_graph

    class View:
        def __init__(self, w, h):
            self.w, self.h = w, h
            self.xy = (0.0, 0.0)

    g = feedforward_graph(doc)
    vs = {n: Vertex(n) for n in g.nodes}
    for n, v in vs.items():
        v.view = View(*node_size(doc.node(n), direction))
    graph = Graph(list(vs.values()), [Edge(vs[a], vs[b]) for a, b in g.edges])
    out, x0 = {}, 0.0
    for comp in graph.C:
        lay = SugiyamaLayout(comp)
        lay.xspace, lay.yspace = NODE_GAP, LAYER_GAP[direction]
        lay.init_all()
        lay.draw()
        xs = [v.view.xy[0] - v.view.w / 2 for v in comp.sV]
        right = max(v.view.xy[0] + v.view.w / 2 for v in comp.sV)
        left = min(xs)
        for v in comp.sV:
            out[v.data] = (x0 + v.view.xy[0] - v.view.w / 2 - left, v.view.xy[1] - v.view.h / 2)
        x0 += right - left + 80
    return out


def ours(doc, direction="TB") -> dict:
    from graph_editor.layout import layered_positions

    return layered_positions(doc, direction=direction, origin=(0.0, 0.0))


def measure(fn, doc, repeats: int) -> tuple[dict, float]:
    times = []
    pos = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        pos = fn(doc)
        times.append(time.perf_counter() - t0)
    return pos, statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", type=int, nargs="*", default=[500, 2000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--grandalf-max", type=int, default=2000,
                    help="skip grandalf above this many nodes")
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["bench"])  # noqa: F841 (fonts)
    import runtime
    from benchmarks.graphgen import make_graph
    from graph_editor.layout import TB, edge_crossings, wire_length
    from runtime.serialization import load_graph

    graphs = [(p.stem, load_graph(p)) for p in sorted((ROOT / "resources" / "examples").glob("*.json"))]
    graphs += [(f"synthetic {n}", make_graph(runtime, n)) for n in args.big]
    print(f"{'graph':<22}{'nodes':>6} | {'crossings':>17} | {'wire length':>19} | {'time (ms)':>19}")
    print(f"{'':<22}{'':>6} | {'ours':>8}{'grandalf':>9} | {'ours':>9}{'grandalf':>10} | "
          f"{'ours':>9}{'grandalf':>10}")
    totals = {"ours": [0, 0.0], "grandalf": [0, 0.0]}
    for name, doc in graphs:
        big = len(doc) > 100
        crossings = (lambda d, p: edge_crossings(d, p, TB)) if len(doc) <= 600 else None
        p1, t1 = measure(ours, doc, args.repeats)
        row = [edge_crossings(doc, p1, TB) if crossings else "-", wire_length(doc, p1, TB), t1]
        if len(doc) <= args.grandalf_max:
            p2, t2 = measure(grandalf_positions, doc, 1 if big else args.repeats)
            row += [edge_crossings(doc, p2, TB) if crossings else "-", wire_length(doc, p2, TB), t2]
        else:
            row += ["-", float("nan"), float("nan")]
        if not big:
            totals["ours"][0] += row[0]
            totals["ours"][1] += row[1]
            totals["grandalf"][0] += row[3]
            totals["grandalf"][1] += row[4]
        print(f"{name:<22}{len(doc):>6} | {row[0]!s:>8}{row[3]!s:>9} | {row[1]:>9.0f}"
              f"{row[4]:>10.0f} | {row[2] * 1000:>9.1f}{row[5] * 1000:>10.1f}", flush=True)
    print(f"{'gallery total':<22}{'':>6} | {totals['ours'][0]:>8}{totals['grandalf'][0]:>9} | "
          f"{totals['ours'][1]:>9.0f}{totals['grandalf'][1]:>10.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
