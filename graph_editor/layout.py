"""Auto-layout: a layered (Sugiyama-style) drawing on networkx, top to bottom by default.

Steps, each the textbook one kept small and fast (500 nodes in ~0.1 s, see
docs/decisions.md for the measurement against grandalf):

1. layers by longest path from the inputs; a source that only feeds late layers (a loss's
   Target) sits just above its consumer, and losses sit at the bottom;
2. long edges get dummy nodes in the layers they pass, so they keep a lane of their own;
3. crossing minimisation: alternating barycentre sweeps down and up, the best order kept;
4. compact placement: each layer is placed as close as possible to the mean of its
   neighbours subject to minimum gaps (an exact 1-D least-squares solve per layer, by
   pooling adjacent violators), in sweeps down and up: a branch point sits centred above
   its branches, parallel branches (an inception module's four paths) side by side;
5. long thin drawings wrap: a chain of 100 layers becomes several side-by-side columns
   (rows when left to right), cut where one wire passes, so the whole graph fits a
   landscape window at a readable zoom.

Delay edges (recurrent connections) are left out of the layering: they are the back
edges, drawn around the nodes by the canvas (graph_editor/items.py).
"""
from __future__ import annotations

import bisect
import math
from pathlib import Path

import networkx as nx

from runtime.graph import GraphDocument
from runtime.topology import feedforward_graph

from .items import node_size

TB, LR = "TB", "LR"
DIRECTIONS = (TB, LR)
DIRECTION_KEY = "layout_direction"  # in the document's metadata
NODE_GAP = 44.0  # between neighbours in a layer
DUMMY_BREADTH = 20.0  # the lane a long edge keeps in a layer it passes
LAYER_GAP = {TB: 58.0, LR: 96.0}  # room for the shape labels between layers
SEGMENT_GAP = {TB: 80.0, LR: 80.0}  # between the columns (rows) of a wrapped drawing
ASPECT = 1.4  # width / height a wrapped drawing aims at when no view says (files)
SWEEPS = 8


def document_direction(doc: GraphDocument) -> str:
    """TB or LR: the document's choice, else what its positions show (files laid out
    left to right before the choice existed keep their look), else TB."""
    value = doc.metadata.get(DIRECTION_KEY)
    if value in DIRECTIONS:
        return value
    g = feedforward_graph(doc)
    dx = dy = 0.0
    for a, b in g.edges:
        pa, pb = doc.node(a).position, doc.node(b).position
        dx += abs(pb[0] - pa[0])
        dy += abs(pb[1] - pa[1])
    return LR if dx > 1.5 * dy and dx > 0 else TB


def layered_positions(doc: GraphDocument, node_ids=None, direction: str | None = None,
                      origin: tuple[float, float] | None = None,
                      aspect: float = ASPECT) -> dict[str, tuple[float, float]]:
    """New top-left positions for ``node_ids`` (all nodes by default).

    The block keeps the top-left corner of the nodes it lays out (or starts at
    ``origin``), so laying out a selection does not throw it across the canvas.
    """
    ids = list(doc.nodes) if node_ids is None else [n for n in node_ids if n in doc]
    if not ids:
        return {}
    direction = direction or document_direction(doc)
    sizes = {n: node_size(doc.node(n), direction) for n in ids}
    g = nx.DiGraph(feedforward_graph(doc).subgraph(ids))
    _break_cycles(g)
    layer = _layers(doc, g)
    lay = _Layered(g, layer, sizes, direction)
    lay.order()
    lay.place()
    pos = lay.coordinates(aspect)
    if origin is None:
        origin = (min(doc.node(n).position[0] for n in ids),
                  min(doc.node(n).position[1] for n in ids))
    return {n: (round(origin[0] + x), round(origin[1] + y)) for n, (x, y) in pos.items()}


def _break_cycles(g: nx.DiGraph) -> None:
    """An illegal cycle (no Delay in it) still gets a drawing: drop one edge per cycle."""
    while True:
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            return
        g.remove_edge(*cycle[-1][:2])


def _layers(doc: GraphDocument, g: nx.DiGraph) -> dict[str, int]:
    layer: dict[str, int] = {}
    order = list(nx.topological_sort(g))
    for n in order:
        layer[n] = max((layer[p] + 1 for p in g.predecessors(n)), default=0)
    # losses at the bottom (of their connected part)
    for comp in nx.weakly_connected_components(g):
        bottom = max(layer[n] for n in comp)
        for n in comp:
            if g.out_degree(n) == 0 and doc.node(n).spec.category == "Loss":
                layer[n] = bottom
    # sources pulled down next to their first consumer (a Target beside the prediction)
    for n in reversed(order):
        if g.in_degree(n) == 0 and g.out_degree(n):
            layer[n] = max(layer[n], min(layer[s] for s in g.successors(n)) - 1)
    return layer


class _Layered:
    """The layered graph with dummies: orders layers and assigns coordinates."""

    def __init__(self, g: nx.DiGraph, layer: dict, sizes: dict, direction: str):
        self.direction = direction
        # breadth: size across the flow; depth: size along it
        self.breadth = {n: (w if direction == TB else h) for n, (w, h) in sizes.items()}
        self.depth = {n: (h if direction == TB else w) for n, (w, h) in sizes.items()}
        self.layer = dict(layer)
        self.up: dict[object, list] = {n: [] for n in layer}  # neighbours one layer above
        self.down: dict[object, list] = {n: [] for n in layer}
        self.dummy: set = set()
        k = 0
        for a, b in g.edges:
            prev = a
            for lv in range(layer[a] + 1, layer[b]):
                d = ("dummy", k)
                k += 1
                self.dummy.add(d)
                self.layer[d] = lv
                self.breadth[d], self.depth[d] = DUMMY_BREADTH, 0.0
                self.up[d], self.down[d] = [], []
                self.down[prev].append(d)
                self.up[d].append(prev)
                prev = d
            self.down[prev].append(b)
            self.up[b].append(prev)
        nlayers = max(self.layer.values()) + 1
        self.layers: list[list] = [[] for _ in range(nlayers)]
        # first order: depth-first from the sources in document order (keeps chains and
        # branches together before any sweep)
        seen = set()
        for n in layer:  # document order
            if self.up[n] or n in seen:
                continue
            stack = [n]
            while stack:
                v = stack.pop()
                if v in seen:
                    continue
                seen.add(v)
                self.layers[self.layer[v]].append(v)
                stack.extend(reversed(self.down[v]))
        for v in self.layer:  # what the walk missed (nothing, for a legal graph)
            if v not in seen:
                self.layers[self.layer[v]].append(v)
        self.pos = {v: float(i) for lv in self.layers for i, v in enumerate(lv)}

    # ---- crossing minimisation ---------------------------------------------------------
    def _crossings(self) -> int:
        total = 0
        for i in range(len(self.layers) - 1):
            index = {v: j for j, v in enumerate(self.layers[i + 1])}
            ends = sorted((self.pos[u], index[w]) for u in self.layers[i] for w in self.down[u])
            total += _inversions([w for _, w in ends], len(index))
        return total

    def order(self) -> None:
        best = self._crossings()
        best_layers = [list(lv) for lv in self.layers]
        for sweep in range(SWEEPS):
            if best == 0:
                break
            down = sweep % 2 == 0
            rng = range(1, len(self.layers)) if down else range(len(self.layers) - 2, -1, -1)
            for i in rng:
                nb = self.up if down else self.down
                lv = self.layers[i]

                def key(v, nb=nb):
                    ps = [self.pos[u] for u in nb[v]]
                    return (sum(ps) / len(ps)) if ps else self.pos[v]
                lv.sort(key=lambda v: (key(v), self.pos[v]))
                for j, v in enumerate(lv):
                    self.pos[v] = float(j)
            c = self._crossings()
            if c < best:
                best, best_layers = c, [list(lv) for lv in self.layers]
        self.layers = best_layers
        self.pos = {v: float(i) for lv in self.layers for i, v in enumerate(lv)}
        self.crossings = best

    # ---- coordinates across the flow ---------------------------------------------------
    def _gap(self, a, b) -> float:
        gap = NODE_GAP if a not in self.dummy and b not in self.dummy else NODE_GAP / 3
        return (self.breadth[a] + self.breadth[b]) / 2 + gap

    def place(self) -> None:
        x: dict = {}
        for lv in self.layers:  # packed and centred on 0
            at = 0.0
            for j, v in enumerate(lv):
                if j:
                    at += self._gap(lv[j - 1], v)
                x[v] = at
            for v in lv:
                x[v] -= at / 2
        n = len(self.layers)
        sweeps = 2 * SWEEPS if len(self.layer) < 1500 else SWEEPS
        for sweep in range(sweeps):
            down = sweep % 2 == 0
            for i in (range(n) if down else range(n - 1, -1, -1)):
                lv = self.layers[i]
                want, weight = [], []
                for v in lv:
                    nbs = self.up[v] + self.down[v]
                    if nbs:
                        want.append(sum(x[u] for u in nbs) / len(nbs))
                        weight.append(len(nbs) * (4.0 if v in self.dummy else 1.0))
                    else:
                        want.append(x[v])
                        weight.append(0.01)
                gaps = [self._gap(lv[j - 1], lv[j]) for j in range(1, len(lv))]
                for v, xv in zip(lv, _place_row(want, weight, gaps)):
                    x[v] = xv
        self._straighten(x)
        self.x = x

    def _straighten(self, x: dict) -> None:
        """A chain link (one wire from a node with one way out into a node with one way
        in) that is nearly vertical becomes exactly vertical, room permitting."""
        for lv in self.layers:
            for j, v in enumerate(lv):
                if len(self.up[v]) != 1:
                    continue
                u = self.up[v][0]
                if len(self.down[u]) != 1 or abs(x[u] - x[v]) > 24 or x[u] == x[v]:
                    continue
                left_ok = j == 0 or x[u] - x[lv[j - 1]] >= self._gap(lv[j - 1], v) - 1e-6
                right_ok = j == len(lv) - 1 or x[lv[j + 1]] - x[u] >= self._gap(v, lv[j + 1]) - 1e-6
                if left_ok and right_ok:
                    x[v] = x[u]

    # ---- final coordinates, wrapping long drawings ----------------------------------------
    def coordinates(self, aspect: float) -> dict[str, tuple[float, float]]:
        n = len(self.layers)
        gap = LAYER_GAP[self.direction]
        depth = [max((self.depth[v] for v in lv), default=0.0) for lv in self.layers]
        lo = [min((self.x[v] - self.breadth[v] / 2 for v in lv), default=0.0)
              for lv in self.layers]
        hi = [max((self.x[v] + self.breadth[v] / 2 for v in lv), default=0.0)
              for lv in self.layers]
        segments = self._segments(depth, lo, hi, aspect)
        out: dict[str, tuple[float, float]] = {}
        across0 = 0.0
        for first, last in segments:
            seg_lo = min(lo[first:last])
            seg_hi = max(hi[first:last])
            along = 0.0
            for i in range(first, last):
                for v in self.layers[i]:
                    if v in self.dummy:
                        continue
                    a = along + (depth[i] - self.depth[v]) / 2  # centred in its layer
                    c = across0 + self.x[v] - seg_lo - self.breadth[v] / 2
                    out[v] = (c, a) if self.direction == TB else (a, c)
                along += depth[i] + gap
            across0 += seg_hi - seg_lo + SEGMENT_GAP[self.direction]
        return out

    def _segments(self, depth, lo, hi, aspect) -> list[tuple[int, int]]:
        """Cut the layers into columns (rows for LR) so the drawing fits a window of
        ``aspect`` at the largest zoom: the k minimising max(width / aspect, height)."""
        n = len(self.layers)
        if n < 6:
            return [(0, n)]
        gap, seg_gap = LAYER_GAP[self.direction], SEGMENT_GAP[self.direction]
        acc = [0.0]
        for i in range(n):
            acc.append(acc[-1] + depth[i] + gap)
        narrow = {i for i in range(1, n) if self._wires_between(i) <= 1}

        narrow_sorted = sorted(narrow)
        narrow_acc = [acc[i] for i in narrow_sorted]

        def cuts(k: int) -> list[tuple[int, int]]:
            starts = [0]
            for s in range(1, k):
                ideal = acc[n] * s / k
                # only where one wire passes: a cut never splits a block
                lo = bisect.bisect_left(narrow_sorted, starts[-1] + 2)
                j = bisect.bisect_left(narrow_acc, ideal, lo)
                cands = [narrow_sorted[c] for c in (j - 1, j) if lo <= c < len(narrow_sorted)
                         and narrow_sorted[c] < n - 1]
                if not cands:
                    break
                starts.append(min(cands, key=lambda i: abs(acc[i] - ideal)))
            starts.append(n)
            return [(a, b) for a, b in zip(starts, starts[1:]) if b > a]

        def cost(segs) -> float:
            along = max(acc[b] - acc[a] - gap for a, b in segs)
            across = sum(max(hi[a:b]) - min(lo[a:b]) for a, b in segs) + seg_gap * (len(segs) - 1)
            w, h = (across, along) if self.direction == TB else (along, across)
            return max(w / aspect, h)

        best = [(0, n)]
        best_cost = cost(best)
        # the best k is near the one for equal columns of the typical width: search around
        typical = sorted(h - l for h, l in zip(hi, lo))[n // 2] + seg_gap
        k0 = math.sqrt((aspect if self.direction == TB else 1 / aspect) * acc[n] / typical)
        for k in range(max(2, int(k0 / 3)), min(n // 3, int(3 * k0) + 2) + 1):
            segs = cuts(k)
            c = cost(segs)
            if c < best_cost * 0.97:
                best, best_cost = segs, c
        return best

    def _wires_between(self, i: int) -> int:
        """Wires from layer i-1 into layer i."""
        return sum(len(self.down[v]) for v in self.layers[i - 1])


def _place_row(want: list[float], weight: list[float], gaps: list[float]) -> list[float]:
    """Positions minimising sum w_i (x_i - want_i)^2 with x_{i+1} - x_i >= gaps_i
    (pool adjacent violators on the shifted problem y_i = x_i - offset_i)."""
    offset = [0.0]
    for g in gaps:
        offset.append(offset[-1] + g)
    blocks: list[list[float]] = []  # [weighted mean, total weight, count]
    for w_i, t, o in zip(weight, want, offset):
        blocks.append([t - o, w_i, 1])
        while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out = []
    for m, _, c in blocks:
        out.extend([m] * c)
    return [y + o for y, o in zip(out, offset)]


def _inversions(seq: list[int], size: int) -> int:
    """Pairs i < j with seq[i] > seq[j] (a Fenwick tree: O(n log n))."""
    tree = [0] * (size + 1)
    count = 0
    for seen, v in enumerate(seq):
        i = v + 1
        le = 0
        while i > 0:
            le += tree[i]
            i -= i & -i
        count += seen - le
        i = v + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


def edge_crossings(doc: GraphDocument, positions: dict, direction: str) -> int:
    """Crossings of straight segments between port-side anchors (for measurements)."""
    segs = []
    for e in doc.edges:
        if e.source not in positions or e.target not in positions:
            continue
        a = _anchor(doc, e.source, positions, direction, True)
        b = _anchor(doc, e.target, positions, direction, False)
        segs.append((a, b, e.source, e.target))
    count = 0
    for i in range(len(segs)):
        a1, b1, s1, t1 = segs[i]
        for j in range(i + 1, len(segs)):
            a2, b2, s2, t2 = segs[j]
            if {s1, t1} & {s2, t2}:
                continue
            if _cross(a1, b1, a2, b2):
                count += 1
    return count


def wire_length(doc: GraphDocument, positions: dict, direction: str) -> float:
    total = 0.0
    for e in doc.edges:
        if e.source in positions and e.target in positions:
            a = _anchor(doc, e.source, positions, direction, True)
            b = _anchor(doc, e.target, positions, direction, False)
            total += math.dist(a, b)
    return total


def _anchor(doc, nid, positions, direction, out):
    w, h = node_size(doc.node(nid), direction)
    x, y = positions[nid]
    if direction == TB:
        return (x + w / 2, y + (h if out else 0))
    return (x + (w if out else 0), y + h / 2)


def _cross(p1, p2, p3, p4) -> bool:
    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (v > 1e-9) - (v < -1e-9)
    return (orient(p1, p2, p3) * orient(p1, p2, p4) < 0
            and orient(p3, p4, p1) * orient(p3, p4, p2) < 0)


def relayout_files(paths) -> None:
    """Re-lay out graph files in place, changing nothing but the node positions
    (``python -m graph_editor.layout resources/examples/*.json``)."""
    import json

    from runtime.serialization import atomic_write_text, load_graph

    for path in paths:
        doc = load_graph(path)
        positions = layered_positions(doc, direction=doc.metadata.get(DIRECTION_KEY, TB),
                                      origin=(0.0, 0.0))
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for node in data["nodes"]:
            x, y = positions[node["id"]]
            node["position"] = [float(x), float(y)]
        atomic_write_text(Path(path), json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    import sys

    relayout_files(sys.argv[1:])
