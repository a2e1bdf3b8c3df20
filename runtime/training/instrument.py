"""Instrumentation: per-node gradient norms, feature maps, filters, histograms, sampled text.

Gradient norms come from ``torch._foreach_norm`` (one fused kernel for all gradients);
per-node norms are summed on the device and read back only at sampled steps. Feature
maps and histograms come from a forward hook on the probe node during one evaluation
pass over a fixed probe batch. Nothing here touches torch's global random generator, so
instrumentation never changes the losses.
"""
from __future__ import annotations

import numpy as np
import torch

CONV_TYPES = ("Conv2d", "Conv1d", "LocallyConnected2d", "TableConv2d")
MAX_MAPS = 64  # feature maps sent per event
BINS = 40


class GradNorms:
    """Total and per-node gradient L2 norms of a module's trainable parameters."""

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], device):
        self.params = [p for _, p in named_params]
        self.nodes = list(dict.fromkeys(n.split(".")[0] for n, _ in named_params))
        index = [self.nodes.index(n.split(".")[0]) for n, _ in named_params]
        self.index = torch.tensor(index, dtype=torch.long, device=device)
        self.device = device

    def total(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(total norm as a 0-d device tensor, per-tensor norms); no host sync."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self.device), []
        norms = torch._foreach_norm(grads)
        return torch.linalg.vector_norm(torch.stack(norms).float()), norms

    def per_node(self, norms: list[torch.Tensor]) -> dict[str, float]:
        """sqrt of the sum of squared tensor norms per node (one host sync)."""
        if not norms:
            return {}
        have = [i for i, p in enumerate(self.params) if p.grad is not None]
        sq = torch.stack(norms).float() ** 2
        out = torch.zeros(len(self.nodes), device=sq.device).index_add_(0, self.index[have], sq)
        return dict(zip(self.nodes, out.sqrt().tolist()))


def clip_by_norm_(grads_of: list[torch.nn.Parameter], total: torch.Tensor, max_norm: float) -> None:
    """g <- max_norm g / ||g|| when ||g|| > max_norm, using the already computed total (no sync)."""
    grads = [p.grad for p in grads_of if p.grad is not None]
    if grads:
        scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        torch._foreach_mul_(grads, scale.to(grads[0].dtype))


def default_probe(doc, module) -> str | None:
    """The first convolution node, else the first node with parameters."""
    from ..pipeline import analyze

    order = analyze(doc).order
    names = dict(module.named_children())
    for nid in order:
        if doc.nodes[nid].type in CONV_TYPES and nid in names:
            return nid
    for nid in order:
        if nid in names and any(True for _ in names[nid].parameters()):
            return nid
    return None


def first_conv(doc, module) -> str | None:
    from ..pipeline import analyze

    names = dict(module.named_children())
    return next((n for n in analyze(doc).order if doc.nodes[n].type in CONV_TYPES and n in names
                 and hasattr(names[n], "weight")), None)


def _hist(t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) over the finite values, computed by torch (faster than numpy)."""
    a = t.detach().float().flatten()
    a = a[torch.isfinite(a)]
    if a.numel() == 0:
        a = torch.zeros(1, device=t.device)
    lo, hi = a.min().item(), a.max().item()
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(a, BINS, lo, hi)
    edges = np.linspace(lo, hi, BINS + 1, dtype=np.float32)
    return counts.cpu().numpy().astype(np.int64), edges


@torch.no_grad()
def probe(module, node: str, args: tuple) -> dict | None:
    """Run ``module`` (eval mode) on the probe batch; return maps of sample 0 and
    histograms of the node's weights and activations."""
    try:
        sub = module.get_submodule(node)
    except AttributeError:
        return None
    captured = {}

    def hook(_m, _inp, out):
        captured["out"] = out[0] if isinstance(out, (tuple, list)) else out

    handle = sub.register_forward_hook(hook)
    was_training = module.training
    module.eval()
    try:
        module(*args)
    finally:
        handle.remove()
        module.train(was_training)
    act = captured.get("out")
    if not isinstance(act, torch.Tensor):
        return None
    maps = act[0].detach().float()
    if maps.dim() == 1:
        maps = maps[None]
    elif maps.dim() > 3:
        maps = maps.flatten(0, maps.dim() - 3)
    params = [p.detach().flatten() for p in sub.parameters()]
    weights = _hist(torch.cat(params)) if params else None
    return {"maps": maps[:MAX_MAPS].cpu().numpy().astype(np.float32),
            "weights": weights, "activations": _hist(act)}


def filters(module, node: str) -> np.ndarray:
    return module.get_submodule(node).weight.detach().float().cpu().numpy()


@torch.no_grad()
def sample_text(module, pred_key: str, context: torch.Tensor, targets: tuple, vocab: list[str],
                length: int, temperature: float, seed: int) -> str:
    """Sample ``length`` characters: feed the last T tokens, draw the next one from
    softmax(logits / temperature) with a private generator (global RNG untouched)."""
    gen = torch.Generator().manual_seed(seed)
    steps = context.shape[-1]
    tokens = context.flatten().tolist()
    was_training = module.training
    module.eval()
    try:
        for _ in range(length):
            x = torch.tensor(tokens[-steps:], device=context.device)[None]
            logits = module(x, *targets)[pred_key][0, -1].float().cpu()
            probs = torch.softmax(logits / temperature, -1)
            tokens.append(int(torch.multinomial(probs, 1, generator=gen)))
    finally:
        module.train(was_training)
    return "".join(vocab[t] if t < len(vocab) else "?" for t in tokens[steps:])
