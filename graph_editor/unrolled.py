"""The unrolled view as lectures draw it: one column per time step, the cell laid out the
same way in each, recurrent wires between steps highlighted, shared weights marked, and
the truncated-BPTT boundary drawn.

``unrolled_document`` lays the unrolled graph out (runtime.recurrent.unrolling gives the
nodes and wires); ``decorate`` adds the time-step bands, their t = 0, 1, ... labels, the
"shared" chips and the truncation lines to a scene showing it.
"""
from __future__ import annotations

import re

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsSimpleTextItem

from runtime.graph import GraphDocument

from .items import NODE_W
from .layout import TB, layered_positions

STEP_GAP = 70.0  # between two time-step columns
BAND_PAD = 26.0  # a column's band around its cell
ROW_GAP = 110.0  # between the inputs, the columns and what comes after
DEFAULT_STEPS = 3  # a few steps show the pattern (as lectures draw it); 32 would not
_COPY = re.compile(r"^(.*)_t(\d+)$")


def step_of(doc: GraphDocument, nid: str) -> int | None:
    """The time step of an unrolled copy (None for nodes outside the loop)."""
    rolled = doc.metadata.get("unrolled_from", {}).get(nid)
    m = _COPY.match(nid)
    if rolled is None or m is None or m.group(1) != rolled:
        return None
    return int(m.group(2))


def unrolled_document(doc: GraphDocument, steps: int | None = None) -> GraphDocument:
    """The unrolled graph over ``steps`` time steps (default: the sequence's length, at
    most DEFAULT_STEPS), laid out column by column. Raises ValueError when the graph has
    nothing to unroll."""
    from runtime.recurrent.unrolling import unroll
    from runtime.topology import has_recurrent_nodes

    doc = expand_fused(doc)
    if not has_recurrent_nodes(doc):
        raise ValueError("this graph has no recurrent part (no Delay or recurrent step "
                         "nodes) to unroll")
    full = None
    if steps is None:
        full = unroll(doc)
        total = int(full.metadata.get("unrolled_steps", 1))
        steps = min(total, DEFAULT_STEPS)
    u = full if full is not None and steps == int(full.metadata.get("unrolled_steps", 0)) \
        else unroll(doc, steps)
    u.metadata["unrolled_total"] = total if full is not None else steps
    u.metadata["tbptt"] = _tbptt(doc)
    for nid, node in list(u.nodes.items()):  # the column says t = ...: titles need not
        t = step_of(u, nid)
        if t is not None and node.label.endswith(f" t={t}"):
            u.set_label(nid, node.label[: -len(f" t={t}")])
    _lay_out(u, steps)
    return u


FUSED = {"RNN": "add_rnn_cell", "LSTM": "add_lstm_cell", "GRU": "add_gru_cell"}


def expand_fused(doc: GraphDocument) -> GraphDocument:
    """A copy of ``doc`` with each one-directional fused RNN/LSTM/GRU layer drawn as its
    cell (runtime/cells.py: the lecture's formula with a Delay for the state), so the
    unrolled view shows what happens inside it at every time step. Stacked layers become
    stacked cells. ``doc`` itself when there is nothing to expand."""
    from runtime import cells

    fused = [n for n in doc if n.type in FUSED and not n.params.get("bidirectional")]
    if not fused:
        return doc
    out = doc.copy()
    for node in fused:
        src = next((e for e in out.in_edges(node.id) if e.target_port == "x"), None)
        if src is None:
            continue
        outs = list(out.out_edges(node.id))
        out.remove_node(node.id)
        seq = (src.source, src.source_port)
        layers = max(1, int(node.params.get("num_layers", 1) or 1))
        last = None
        for k in range(layers):
            final = k == layers - 1
            mode = "collect" if (not final or node.params.get("return_sequences", True)) \
                else "last"
            kwargs = {}
            if node.type == "RNN":
                act = str(node.params.get("nonlinearity", "tanh")).lower()
                kwargs["activation"] = "ReLU" if act == "relu" else "Tanh"
            prefix = f"{node.id}_" if layers == 1 else f"{node.id}_l{k}_"
            ids = getattr(cells, FUSED[node.type])(
                out, seq, int(node.params.get("hidden_size", 16)), prefix=prefix,
                out=mode, **kwargs)
            step = ids.get("step")
            if step and node.params.get("tbptt"):
                out.set_param(step, "tbptt", int(node.params["tbptt"]))
            last = ids.get("seq_out") or ids.get("last")
            seq = (last, "out")
        for e in outs:
            out.connect(last, "out", e.target, e.target_port)
    return out


def _tbptt(doc: GraphDocument) -> int:
    ks = [int(n.params.get("tbptt", 0) or 0) for n in doc if n.type == "SequenceStep"]
    return max(ks, default=0)


def _lay_out(u: GraphDocument, steps: int) -> None:
    copies: dict[int, list[str]] = {}
    outside: list[str] = []
    for nid in u.nodes:
        t = step_of(u, nid)
        if t is None:
            outside.append(nid)
        else:
            copies.setdefault(t, []).append(nid)
    if not copies:
        for nid, pos in layered_positions(u, direction=TB).items():
            u.move_node(nid, pos)
        return
    import networkx as nx

    from runtime.topology import feedforward_graph

    g = feedforward_graph(u)
    cell_ids = set(copies.get(0, []))
    before = [n for n in outside if any(c in cell_ids or step_of(u, c) is not None
                                        for c in nx.descendants(g, n))
              and not any(step_of(u, a) is not None for a in nx.ancestors(g, n))]
    after = [n for n in outside if n not in before]
    cell = layered_positions(u, copies[0], direction=TB, origin=(0.0, 0.0), aspect=0.01)
    width = max(x for x, _ in cell.values()) + NODE_W
    height = max(y + _height(u, n) for n, (_, y) in cell.items())
    top = 0.0
    if before:
        pre = layered_positions(u, before, direction=TB, origin=(0.0, 0.0), aspect=50.0)
        pre_h = max(y + _height(u, n) for n, (_, y) in pre.items())
        pre_w = max(x for x, _ in pre.values()) + NODE_W
        total_w = steps * width + (steps - 1) * STEP_GAP
        x0 = (total_w - pre_w) / 2
        for n, (x, y) in pre.items():
            u.move_node(n, (round(x0 + x), round(y)))
        top = pre_h + ROW_GAP
    for t, ids in copies.items():
        for nid in ids:
            rolled = _COPY.match(nid).group(1)
            x, y = cell[f"{rolled}_t0"] if f"{rolled}_t0" in cell else (0.0, 0.0)
            u.move_node(nid, (round(x + t * (width + STEP_GAP)), round(top + y)))
    if after:
        post = layered_positions(u, after, direction=TB, origin=(0.0, 0.0), aspect=50.0)
        post_w = max(x for x, _ in post.values()) + NODE_W
        total_w = steps * width + (steps - 1) * STEP_GAP
        x0 = (total_w - post_w) / 2
        for n, (x, y) in post.items():
            u.move_node(n, (round(x0 + x), round(top + height + ROW_GAP + y)))
    u.metadata["layout_direction"] = TB
    u.metadata["unrolled_columns"] = {"width": width, "gap": STEP_GAP, "top": top,
                                      "height": height, "steps": steps}


def _height(doc: GraphDocument, nid: str) -> float:
    from .items import node_size

    return node_size(doc.node(nid), TB)[1]


def decorate(scene, doc: GraphDocument) -> None:
    """Time-step bands with t = ... labels, highlighted recurrent wires, "shared" chips on
    the copies of weighted layers, and the truncated-BPTT boundaries."""
    cols = doc.metadata.get("unrolled_columns")
    theme = scene.theme
    dark = theme.name == "dark"
    if cols:
        scene.backdrops.append(_Bands(cols, int(doc.metadata.get("tbptt", 0) or 0), theme))
        scene.extra_rect = _Bands(cols, 0, theme).rect()
    for edge, item in scene.edge_items.items():
        ts, tt = step_of(doc, edge.source), step_of(doc, edge.target)
        if ts is not None and tt is not None and ts != tt:
            item.delay = True  # a wire across time: drawn like a recurrent one
            item.setToolTip(f"state from t = {ts} to t = {tt}")
            item.update()
    shared_font = QFont()
    shared_font.setPixelSize(11)
    shared_font.setBold(True)
    for nid, item in scene.node_items.items():
        t = step_of(doc, nid)
        if t is None or not item.params_count:
            continue
        rolled = doc.metadata["unrolled_from"][nid]
        chip = QGraphicsSimpleTextItem("shared", item)
        chip.setFont(shared_font)
        chip.setBrush(QColor("#6f42c1") if not dark else QColor("#c8a2ff"))
        chip.setPos(0, -16)
        chip.setToolTip(f"the same weights as {rolled} at every time step")


class _Bands:
    """Draws the time-step columns, their t = ... titles and the truncation lines."""

    def __init__(self, cols: dict, tbptt: int, theme):
        self.w, self.gap, self.top, self.h, self.steps = (
            cols[k] for k in ("width", "gap", "top", "height", "steps"))
        self.tbptt, self.theme = tbptt, theme

    def band(self, t: int) -> QRectF:
        x = t * (self.w + self.gap)
        return QRectF(x - BAND_PAD, self.top - BAND_PAD - 40, self.w + 2 * BAND_PAD,
                      self.h + 2 * BAND_PAD + 40)

    def rect(self) -> QRectF:
        r = self.band(0).united(self.band(self.steps - 1))
        return r.adjusted(0, -40, 0, 0)

    def __call__(self, painter, exposed: QRectF) -> None:
        dark = self.theme.name == "dark"
        font = QFont()
        font.setPixelSize(24)
        font.setBold(True)
        painter.save()
        for t in range(self.steps):
            r = self.band(t)
            if not r.intersects(exposed):
                continue
            fill = QColor("#ffffff" if not dark else "#2a2c31")
            fill.setAlpha(230 if t % 2 == 0 else 120)
            painter.setBrush(fill)
            painter.setPen(QPen(self.theme.c("node_border"), 1.2, Qt.DashLine))
            painter.drawRoundedRect(r, 14, 14)
            painter.setFont(font)
            painter.setPen(self.theme.c("text"))
            painter.drawText(QRectF(r.left(), r.top() + 4, r.width(), 32), Qt.AlignCenter,
                             f"t = {t}")
        if self.tbptt:
            small = QFont()
            small.setPixelSize(15)
            small.setBold(True)
            painter.setFont(small)
            red = QColor("#d62728")
            for t in range(self.tbptt, self.steps, self.tbptt):
                x = t * (self.w + self.gap) - self.gap / 2
                painter.setPen(QPen(red, 4, Qt.DashLine))
                painter.drawLine(QPointF(x, self.top - BAND_PAD - 50),
                                 QPointF(x, self.top + self.h + BAND_PAD))
                painter.setPen(red)
                painter.drawText(QRectF(x - 120, self.top - BAND_PAD - 76, 240, 22),
                                 Qt.AlignCenter, f"truncated BPTT (every {self.tbptt} steps)")
        painter.restore()
