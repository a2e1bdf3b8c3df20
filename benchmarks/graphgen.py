"""Synthetic but realistic graphs for the analysis benchmarks.

``make_graph(n)`` builds a CNN trunk (plain Conv-BN-ReLU blocks, residual blocks with an
Add skip, Inception-style two-branch blocks joined by Concat), a global pool, a dense
trunk (Dense-BN-ReLU, residual Dense blocks) and a cross-entropy loss: exactly ``n``
nodes. Widths are drawn from a small palette, so many nodes share (type, params, input
shapes) as in real networks; ``unique=True`` gives every new layer its own width, so no
two nodes share an analysis result.

``rt`` is the runtime package to build with (the benchmark can compare two versions).
"""
from __future__ import annotations

import random

PALETTE = (8, 12, 16, 24, 32, 48, 64)


class _Builder:
    def __init__(self, rt, n: int, unique: bool, seed: int):
        self.doc = rt.GraphDocument(f"bench{n}{'u' if unique else ''}")
        self.n, self.unique, self.rng = n, unique, random.Random(seed)
        self.next_width = 8
        self.y = 0.0

    def width(self) -> int:
        if self.unique:
            self.next_width += 1
            return self.next_width
        return self.rng.choice(PALETTE)

    def add(self, type_id, params=None, *inputs, ports=None):
        self.y += 40.0
        node = self.doc.add_node(type_id, params or {}, position=(0.0, self.y))
        names = ports or ["x"] * len(inputs)
        for src, port in zip(inputs, names):
            self.doc.connect(src, "out", node.id, port)
        return node.id

    def left(self) -> int:
        return self.n - len(self.doc)


def make_graph(rt, n: int, *, unique: bool = False, seed: int = 0):
    """A GraphDocument of exactly ``n`` nodes (n >= 12)."""
    b = _Builder(rt, n, unique, seed)
    tail = 4  # Dense 10, Target, CrossEntropy (+ GlobalAvgPool)
    x = b.add("ImageInput", {"channels": 3, "height": 16, "width": 16})
    c = b.width()
    x = b.add("Conv2d", {"filters": c, "kernel_size": 3, "padding": 1}, x)
    conv_until = b.n // 2
    while len(b.doc) < conv_until and b.left() > 7 + tail:
        kind = b.rng.choice(("plain", "res", "res", "inception"))
        if kind == "plain":
            c = b.width()
            x = b.add("Conv2d", {"filters": c, "kernel_size": 3, "padding": 1}, x)
            x = b.add("BatchNorm", {}, x)
            x = b.add("ReLU", {}, x)
        elif kind == "res":
            h = b.add("Conv2d", {"filters": b.width(), "kernel_size": 3, "padding": 1}, x)
            h = b.add("BatchNorm", {}, h)
            h = b.add("ReLU", {}, h)
            h = b.add("Conv2d", {"filters": c, "kernel_size": 3, "padding": 1}, h)
            h = b.add("BatchNorm", {}, h)
            h = b.add("Add", {}, h, x, ports=["x1", "x2"])
            x = b.add("ReLU", {}, h)
        else:
            p = b.add("Conv2d", {"filters": b.width(), "kernel_size": 1}, x)
            q = b.add("Conv2d", {"filters": b.width(), "kernel_size": 3, "padding": 1}, x)
            j = b.add("Concat", {}, p, q, ports=["x1", "x2"])
            c = b.width()
            x = b.add("Conv2d", {"filters": c, "kernel_size": 1}, j)
            x = b.add("BatchNorm", {}, x)
            x = b.add("ReLU", {}, x)
    x = b.add("GlobalAvgPool", {}, x)
    d = c
    while b.left() > 6 + tail - 1:
        if b.rng.random() < 0.5:
            d = b.width()
            x = b.add("Dense", {"units": d}, x)
            x = b.add("BatchNorm", {}, x)
            x = b.add("ReLU", {}, x)
        else:
            h = b.add("Dense", {"units": b.width()}, x)
            h = b.add("ReLU", {}, h)
            h = b.add("Dense", {"units": d}, h)
            h = b.add("Add", {}, h, x, ports=["x1", "x2"])
            x = b.add("ReLU", {}, h)
    while b.left() > tail - 1:
        x = b.add("ReLU", {}, x)
    x = b.add("Dense", {"units": 10}, x)
    t = b.add("Target", {"kind": "class", "num_classes": 10})
    b.add("CrossEntropy", {}, x, t, ports=["pred", "target"])
    assert len(b.doc) == n, (len(b.doc), n)
    return b.doc


def middle_node(doc, type_id: str = "BatchNorm") -> str:
    """The node of ``type_id`` nearest the middle of the insertion order."""
    ids = list(doc.nodes)
    mid = len(ids) // 2
    for k in range(len(ids)):
        for i in (mid + k, mid - k):
            if 0 <= i < len(ids) and doc.nodes[ids[i]].type == type_id:
                return ids[i]
    raise ValueError(f"no {type_id} node")
