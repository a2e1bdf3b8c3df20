"""Node health: per-node statistics at instrumentation steps, and warnings that teach.

At every ``instrument_every``-th step the trainer *arms* the monitor before the forward
pass: forward hooks on the graph's layer nodes reduce each node's output on the device
(mean, std, and for the ReLU family the share of dead units, for sigmoid/tanh the share
of saturated values). After the optimizer step the monitor also has each node's gradient
norm, weight norm and update ratio ``|w_after - w_before| / |w_before|`` (what the
optimizer really did: ``|lr * update| / |w|`` for any optimizer). All of it is read back
in one device sync, sent as a ``node_stats`` event and appended to ``node_stats.jsonl``
in the run folder (one JSON object per node and step). Other steps cost nothing.

Warnings are judged in relative terms, once per node and kind, only when the condition
holds at ``PERSIST`` instrumentation steps in a row (the first steps of Adam move every
weight by about lr, whatever its gradient), and say what they mean and what to try:

- vanishing: a layer's relative gradient ``grad_norm / weight_norm`` is below
  ``VANISH_RATIO`` of the largest one in the graph, while the loss has not converged
  (a converged loss has small gradients everywhere, and that is no fault); embeddings
  (sparse gradients) and normalisation layers (scale parameters) are not judged;
- exploding: an update ratio above ``EXPLODE_UPDATE`` (one step changes the weights by
  more than a tenth), or a non-finite gradient;
- dead units (ReLU family): more than ``DEAD_SHARE`` of the units are zero for every
  sample of the batch;
- saturation (sigmoid, tanh): more than ``SATURATED_SHARE`` of the values lie beyond
  0.99 of the range, where the derivative is almost zero.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

RELU_FAMILY = ("ReLU", "LeakyReLU", "ReLU6", "PReLU", "ELU", "GELU", "SiLU")
SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Probit": (0.0, 1.0),
              "HardSigmoid": (0.0, 1.0), "HardTanh": (-1.0, 1.0)}
SATURATION_LEVEL = 0.99  # beyond 0.99 of the range
VANISH_RATIO = 1e-2  # relative gradient below 1/100 of the graph's largest
EXPLODE_UPDATE = 0.1  # one step changes a layer's weights by more than 10 %
DEAD_SHARE = 0.5
SATURATED_SHARE = 0.5
CONVERGED_LOSS = 1e-3  # below this (or 1/100 of the first loss) the loss has converged
NO_VANISH_TYPES = ("Embedding", "BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm",
                   "LocalResponseNorm")  # sparse gradients / scale parameters: not judged
PERSIST = {"vanishing": 2, "dead": 2, "saturated": 2, "exploding": 3}  # checks in a row
KEYS = ("grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction",
        "act_mean", "act_std")

ADVICE = {
    "vanishing": (
        "the gradient reaching this layer is tiny compared with its weights and with the "
        "layers after it, so it barely learns (vanishing gradient). Try ReLU instead of "
        "sigmoid/tanh, batch normalisation, a better initialisation (He for ReLU, Xavier "
        "for tanh), residual connections, or gated cells (LSTM/GRU) in recurrent nets"),
    "exploding": (
        "one optimizer step changes this layer's weights by a large share, so training "
        "jumps around or diverges (exploding gradient). Try a lower learning rate, "
        "gradient clipping (clip_norm), batch normalisation, or a smaller initialisation"),
    "dead": (
        "most of this layer's units output zero for every sample, so no gradient flows "
        "through them (dead ReLUs). Try a lower learning rate, Leaky ReLU or ELU, He "
        "initialisation, or batch normalisation before the activation"),
    "saturated": (
        "most values sit at the flat ends of the curve, where the derivative is almost "
        "zero, so little gradient passes (saturation). Try ReLU, batch normalisation "
        "before the activation, normalised inputs, or a smaller initialisation"),
}


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


class HealthMonitor:
    """Per-node statistics of one module, taken at armed steps (see the module docstring)."""

    def __init__(self, doc, module: torch.nn.Module, named_params, device,
                 out_dir: str | Path | None = None,
                 emit: Callable[..., None] = lambda *a, **k: None):
        self.doc, self.module, self.device, self.emit = doc, module, device, emit
        self.params = [p for _, p in named_params]
        self.param_nodes = list(dict.fromkeys(n.split(".")[0] for n, _ in named_params))
        index = [self.param_nodes.index(n.split(".")[0]) for n, _ in named_params]
        self.index = np.asarray(index, dtype=np.int64)  # tensor -> node (sums on the host)
        children = dict(module.named_children())
        self.act_nodes = {nid: children[nid] for nid in children
                          if nid in doc.nodes and not doc.nodes[nid].spec.is_loss}
        self.types = {nid: doc.nodes[nid].type for nid in self.act_nodes}
        self.path = Path(out_dir) / "node_stats.jsonl" if out_dir is not None else None
        self.warned: set[tuple[str, str]] = set()
        self.streak: dict[tuple[str, str], int] = {}
        self.first_loss: float | None = None
        self.last: dict[str, dict] = {}  # the newest statistics per node
        self._handles: list = []
        self._acts: dict[str, list[torch.Tensor]] = {}
        self._before: list[torch.Tensor] | None = None
        self._grad_norms: torch.Tensor | None = None  # per tensor, on the device
        self._have: np.ndarray | None = None

    # ---- the three calls of an armed step ------------------------------------------
    def arm(self) -> None:
        """Before the forward pass: hook every layer node's output."""
        self.disarm()
        self._acts = {}
        for nid, m in self.act_nodes.items():
            self._handles.append(m.register_forward_hook(self._hook(nid)))

    def disarm(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, nid: str):
        kind = self.types[nid]

        def hook(_m, _inp, out):  # few, fast reductions; the arithmetic is on the host
            a = _first_tensor(out)
            if a is None or not a.is_floating_point() or a.numel() < 2:
                return
            a = a.detach()
            stats = [a.sum(), torch.linalg.vector_norm(a)]
            if kind in RELU_FAMILY and a.dim() >= 2:  # dead: <= 0 for every sample
                stats.append(a.reshape(a.shape[0], -1).amax(0))
            elif kind in SATURATING:
                lo, hi = SATURATING[kind]
                edge = SATURATION_LEVEL * (hi - lo) / 2
                stats.append(((a - (lo + hi) / 2).abs() > edge).sum())
            self._acts[nid] = (a.numel(), stats)
        return hook

    def grads(self, norms: list[torch.Tensor]) -> None:
        """After backward (before clipping and the step): per-tensor gradient norms (from
        GradNorms.total) summed per node on the device, and a copy of the weights."""
        self.disarm()
        have = [i for i, p in enumerate(self.params) if p.grad is not None]
        self._have = np.asarray(have, dtype=np.int64)
        self._grad_norms = torch.stack(norms) if norms else None
        self._before = torch._foreach_mul(self.params, 1.0)  # one fused copy

    def finish(self, step: int, loss: torch.Tensor | float | None = None) -> dict[str, dict]:
        """After the optimizer step: one sync; emits grad_norms and node_stats events,
        appends to node_stats.jsonl and emits any new warnings. Returns the statistics."""
        self.disarm()
        parts: list[torch.Tensor] = []
        if self._before is not None:
            with torch.no_grad():
                w = torch._foreach_norm(self._before)
                d = torch._foreach_norm(torch._foreach_sub(self.params, self._before))
            parts += [torch.stack(w), torch.stack(d)]
            if self._grad_norms is not None:
                parts.append(self._grad_norms)
        names = list(self._acts)
        parts += [s.reshape(-1) for n in names for s in self._acts[n][1]]
        if isinstance(loss, torch.Tensor):
            parts.append(loss.detach().reshape(-1))
        flat = torch.cat([t.float() for t in parts]).cpu().numpy().astype(np.float64) \
            if parts else np.zeros(0)  # the one device sync
        if isinstance(loss, torch.Tensor):
            loss, flat = float(flat[-1]), flat[:-1]
        per_node: dict[str, dict] = {}
        k = 0
        if self._before is not None:
            m, P = len(self.param_nodes), len(self.params)
            w_sq, d_sq, g_sq = np.zeros(m), np.zeros(m), np.zeros(m)
            np.add.at(w_sq, self.index, flat[:P] ** 2)
            np.add.at(d_sq, self.index, flat[P:2 * P] ** 2)
            k = 2 * P
            if self._grad_norms is not None:
                np.add.at(g_sq, self.index[self._have], flat[k:k + len(self._have)] ** 2)
                k += len(self._have)
            for i, nid in enumerate(self.param_nodes):
                wn = float(np.sqrt(w_sq[i]))
                per_node[nid] = {"grad_norm": float(np.sqrt(g_sq[i])), "weight_norm": wn,
                                 "update_ratio": float(np.sqrt(d_sq[i])) / wn if wn > 0 else None}
        for nid in names:
            n, stats = self._acts[nid]
            s1, s2 = flat[k], flat[k + 1]
            k += 2
            mean = s1 / n
            var = max(0.0, (s2 * s2 / n - mean * mean)) * n / (n - 1)
            rec = per_node.setdefault(nid, {})
            rec["act_mean"], rec["act_std"] = float(mean), float(np.sqrt(var))
            if len(stats) > 2:
                extra = stats[2].numel()
                v = flat[k:k + extra]
                k += extra
                if self.types[nid] in RELU_FAMILY:
                    rec["dead_fraction"] = float((v <= 0).mean())
                else:
                    rec["saturated_fraction"] = float(v[0] / n)
        self._before, self._grad_norms, self._acts = None, None, {}
        if not per_node:
            return {}
        self.last = per_node
        self.emit("grad_norms", step=step, norms={n: r["grad_norm"] for n, r in per_node.items()
                                                  if "grad_norm" in r})
        self.emit("node_stats", step=step, stats=per_node)
        self._write(step, per_node)
        for w in self.diagnose(per_node, loss if isinstance(loss, float) else None):
            self.emit("warning", node=w["node"], kind=w["kind"], step=step, message=w["message"])
        return per_node

    def _write(self, step: int, per_node: dict[str, dict]) -> None:
        if self.path is None:
            return
        lines = [json.dumps({"step": step, "node": nid, **{k: _finite(v) for k, v in rec.items()}})
                 for nid, rec in per_node.items()]
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    # ---- warnings --------------------------------------------------------------------
    def diagnose(self, per_node: dict[str, dict], loss: float | None) -> list[dict]:
        """New warnings (each node and kind once per run), judged as the module docstring
        says; each is {node, kind, message}."""
        if loss is not None and math.isfinite(loss) and self.first_loss is None:
            self.first_loss = loss
        found = judge(per_node, loss, self.first_loss, self.types)
        hits = {(w["node"], w["kind"]) for w in found}
        self.streak = {k: self.streak.get(k, 0) + 1 for k in hits}  # a miss resets
        new = [w for w in found if (w["node"], w["kind"]) not in self.warned
               and (self.streak[(w["node"], w["kind"])] >= PERSIST[w["kind"]]
                    or "not finite" in w["message"])]
        self.warned.update((w["node"], w["kind"]) for w in new)
        return new


def converged(loss: float | None, first_loss: float | None) -> bool:
    if loss is None or not math.isfinite(loss):
        return False
    return loss < CONVERGED_LOSS or (first_loss is not None and first_loss > 0
                                      and loss < first_loss / 100)


def judge(per_node: dict[str, dict], loss: float | None, first_loss: float | None,
          types: dict[str, str] | None = None) -> list[dict]:
    """Warnings for one set of node statistics (a pure function, for tests and replays)."""
    types = types or {}
    out: list[dict] = []

    def warn(nid, kind, what):
        out.append({"node": nid, "kind": kind, "message": f"{nid}: {what}: {ADVICE[kind]}"})

    rel = {n: r["grad_norm"] / r["weight_norm"] for n, r in per_node.items()
           if r.get("grad_norm") is not None and r.get("weight_norm")
           and math.isfinite(r["grad_norm"]) and types.get(n) not in NO_VANISH_TYPES}
    for nid, r in per_node.items():
        g = r.get("grad_norm")
        if g is not None and not math.isfinite(g):
            warn(nid, "exploding", "gradient norm is not finite")
            continue
        u = r.get("update_ratio")
        if u is not None and math.isfinite(u) and u > EXPLODE_UPDATE:
            warn(nid, "exploding", f"update ratio {u:.2g} (healthy is about 1e-3)")
    top = max(rel.values(), default=0.0)
    if top > 0 and not converged(loss, first_loss):
        for nid, v in rel.items():
            if v < VANISH_RATIO * top:
                warn(nid, "vanishing", f"relative gradient {v:.2g}, {top / max(v, 1e-30):.0f}x "
                     "smaller than the largest layer's")
    for nid, r in per_node.items():
        if r.get("dead_fraction") is not None and r["dead_fraction"] > DEAD_SHARE:
            warn(nid, "dead", f"{r['dead_fraction']:.0%} dead units")
        if r.get("saturated_fraction") is not None and r["saturated_fraction"] > SATURATED_SHARE:
            warn(nid, "saturated", f"{r['saturated_fraction']:.0%} of values saturated")
    return out


def _finite(v):
    return v if not isinstance(v, float) or math.isfinite(v) else None


def read_node_stats(path: str | Path) -> list[dict]:
    """The rows of a run folder's node_stats.jsonl (a folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "node_stats.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows
