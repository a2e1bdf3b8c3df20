"""Look inside a network: every node's activation for any input, and the gradient of the
loss with respect to the hidden state at every time step (backpropagation through time).

    from runtime.training import probe
    result = probe(doc_or_module, {"image": x})       # or a tensor, or a tuple
    result.activations["conv1"]                       # (N, 16, 8, 8) tensor
    result.prediction                                 # what the graph predicts

    from runtime.training.probing import time_gradients
    time_gradients(doc, module, inputs, targets)      # {"rnn": array of T norms, ...}

Both work on the compiled module of runtime.compiler (every layer node is a submodule
named after its node id); nothing here touches torch's global random generator.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class ProbeResult:
    activations: dict[str, Any] = field(default_factory=dict)  # node id -> tensor (or tuple)
    prediction: Any = None  # predict mode: the output tensor(s); train mode: the output dict

    def top_k(self, k: int = 5, sample: int = 0) -> list[tuple[int, float]]:
        """(class, probability) of the k most likely classes of one sample (classifiers)."""
        pred = self.prediction
        if isinstance(pred, dict):
            pred = next((v for key, v in pred.items() if key != "loss"), None)
        if isinstance(pred, (tuple, list)):
            pred = pred[0]
        p = torch.softmax(pred[sample].float().reshape(-1, pred.shape[-1])[-1], -1)
        vals, idx = p.topk(min(k, p.numel()))
        return list(zip(idx.tolist(), vals.tolist()))


def predictor(doc, weights: dict[str, torch.Tensor] | torch.nn.Module | None = None,
              lowered: bool = True) -> torch.nn.Module:
    """The graph compiled for prediction (eval mode), with ``weights`` (a state dict or a
    trained module of the same graph) loaded where names and shapes match."""
    from ..compiler import build_module
    from ..recurrent.regions import lowering

    with lowering(lowered):
        module = build_module(doc, mode="predict")
    if weights is not None:
        load_matching(module, weights)
    return module.eval()


def load_matching(module: torch.nn.Module, weights) -> list[str]:
    """Copy the tensors of ``weights`` whose name and shape match; returns the names."""
    if isinstance(weights, torch.nn.Module):
        weights = weights.state_dict()
    own = module.state_dict()
    done = []
    with torch.no_grad():
        for k, v in weights.items():
            if k in own and tuple(own[k].shape) == tuple(v.shape):
                own[k].copy_(v.to(own[k].device, own[k].dtype))
                done.append(k)
    return done


def _arguments(module, inputs) -> tuple:
    from ..compiler import get_signature

    sig = get_signature(module)
    names = list(sig.inputs) + (list(sig.targets) if module.meta["netbuilder"]["mode"] == "train"
                                else [])
    if isinstance(inputs, dict):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ValueError(f"probe: no value for input node(s) {', '.join(missing)}")
        return tuple(inputs[n] for n in names)
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    if len(inputs) != len(names):
        raise ValueError(f"probe: the module takes {len(names)} argument(s) "
                         f"({', '.join(names)}), received {len(inputs)}")
    return inputs


@torch.no_grad()
def probe(module_or_doc, inputs, weights=None) -> ProbeResult:
    """Run the graph on ``inputs`` (a tensor, a tuple in signature order, or a dict by
    input node id; a train-mode module also takes its targets) in evaluation mode and
    return every layer node's output and the prediction. A GraphDocument is compiled
    for prediction first (with ``weights`` when given)."""
    module = module_or_doc
    if not isinstance(module, torch.nn.Module):
        module = predictor(module_or_doc, weights)
    args = _arguments(module, inputs)
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    result = ProbeResult()
    handles = []

    def hook_for(nid):
        def hook(_m, _inp, out):
            result.activations[nid] = out
        return hook

    for nid, m in module.named_children():
        handles.append(m.register_forward_hook(hook_for(nid)))
    was_training = module.training
    module.eval()
    try:
        result.prediction = module(*args)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return result


# ---- backpropagation through time -----------------------------------------------------


class _Stepper(torch.nn.Module):
    """Runs a fused torch RNN/LSTM/GRU one time step at a time, keeping each step's state
    so its gradient can be read after backward (same weights, same result)."""

    def __init__(self, rnn: torch.nn.Module, record: list):
        super().__init__()
        object.__setattr__(self, "rnn", rnn)  # not a submodule: names stay as they are
        self.record = record

    def forward(self, x, hx=None):
        outs = []
        for t in range(x.shape[1]):
            out, hx = self.rnn(x[:, t:t + 1], hx)
            states = hx if isinstance(hx, tuple) else (hx,)
            for s in (out,) + states:
                if s.requires_grad:
                    s.retain_grad()
            self.record.append((out,) + states)
            outs.append(out)
        return torch.cat(outs, 1), hx


def _step_norm(tensors: tuple, fused: bool) -> float:
    """Norm of dL/d(state) of one step, per sample. Fused layers: the step's output is the
    last layer's h, a separate tensor from the state, so its gradient adds to that row."""
    grads = [t.grad.double() if t.grad is not None else torch.zeros_like(t, dtype=torch.float64)
             for t in tensors]
    if fused:
        out, h, *rest = grads
        h = h.clone()
        h[-1] += out[:, 0]
        grads = [h] + rest
        n = h.shape[1]
    else:
        n = grads[0].shape[0]
    return float(sum(g.pow(2).sum() for g in grads)) ** 0.5 / max(n, 1)


def time_gradients(doc, module: torch.nn.Module | None, inputs, targets=()) -> dict[str, np.ndarray]:
    """For every recurrent node (a fused RNN/LSTM/GRU layer or a hand-drawn cell's loop):
    the norm of dL/dh_t, the gradient of the loss with respect to the hidden state after
    each time step t (averaged over the batch), as an array of length T. ``module`` is a
    trained train-mode module of ``doc`` (its weights are used) or None (fresh weights).
    Hand-drawn cells run as a plain loop here even where training uses torch's fused
    kernel; bidirectional layers are left out (their two directions have no one state
    per step)."""
    from ..catalog.recurrent_modules import FusedRNN
    from ..compiler import build_module
    from ..recurrent.loop import RecurrentLoop
    from ..recurrent.regions import lowering

    with lowering(False):
        net = build_module(doc, mode="train")
    if module is not None:
        load_matching(net, module)
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        net = net.to(device)
    else:
        device = torch.device("cpu")
    records: dict[str, list] = {}
    undo: list = []
    for nid, m in net.named_children():
        if isinstance(m, FusedRNN) and m.dirs == 1:
            rec = records.setdefault(nid, [])
            original = m.rnn
            m._modules["rnn"] = _Stepper(original, rec)
            undo.append((m, original))
        elif isinstance(m, RecurrentLoop):
            rec = records.setdefault(nid, [])
            nd = len(m.states)

            def hook(_c, _inp, res, rec=rec, nd=nd):
                states = tuple(res[:nd])
                for s in states:
                    if s.requires_grad:
                        s.retain_grad()
                rec.append(states)
            undo.append(m.cell.register_forward_hook(hook))
    if not records:
        return {}
    args = tuple(a.to(device) for a in (_as_tuple(inputs) + _as_tuple(targets)))
    net.eval()  # no dropout: the picture of one deterministic pass
    try:
        with torch.enable_grad():
            net(*args)["loss"].backward()
    finally:
        for u in undo:
            if isinstance(u, tuple):
                u[0]._modules["rnn"] = u[1]
            else:
                u.remove()
    out = {}
    for nid, rec in records.items():
        m = net.get_submodule(nid)
        norms = [_step_norm(states, isinstance(m, FusedRNN)) for states in rec]
        if isinstance(m, RecurrentLoop) and m.reverse:
            norms = norms[::-1]
        out[nid] = np.asarray(norms, dtype=np.float64)
    return out


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, torch.Tensor):
        return (x,)
    return tuple(x)


@dataclass
class ProbeData:
    """Samples to probe with, as training sees them: ``inputs`` normalised with the
    training split's statistics (a tuple in signature order), ``raw`` as the dataset gives
    them (for display), ``targets``, and what is needed to prepare new inputs."""

    inputs: tuple
    raw: list
    targets: list
    stats: list  # per input: (mean, std) or None
    class_names: list | None = None
    vocab: list | None = None
    ranges: list = field(default_factory=list)  # per input: (min, max) of the raw values

    def __len__(self) -> int:
        return len(self.raw[0]) if self.raw else 0

    def sample(self, i: int) -> tuple:
        return tuple(t[i:i + 1] for t in self.inputs)


def probe_data(doc, cfg=None, base_dir=None, n: int = 256) -> ProbeData:
    """The first ``n`` validation samples (training samples without a validation split)."""
    from ..data import bind, load_dataset, normalisation, split
    from .config import TrainConfig

    cfg = cfg if cfg is not None else TrainConfig.from_dict(doc.training)
    ds = load_dataset(cfg.dataset, doc, base_dir, cfg.seed)
    train, val, _ = split(ds, cfg.val_split, cfg.test_split, cfg.seed)
    part = val if val is not None else train
    tx, _ = bind(train, doc)
    xs, ys = bind(part.subset(np.arange(min(n, len(part)))), doc)
    stats = normalisation(tx) if cfg.normalize else [None] * len(xs)
    ranges = [(float(a.min()), float(a.max())) if a.size else (0.0, 1.0) for a in tx]
    return ProbeData(normalise(xs, stats), xs, ys, stats, ds.class_names, ds.vocab, ranges)


def normalise(arrays, stats) -> tuple:
    """Raw input arrays (N, ...) -> tensors as training sees them."""
    out = []
    for a, s in zip(arrays, stats):
        a = np.asarray(a)
        if s is not None:
            a = ((a - s[0]) / s[1]).astype(np.float32)
        out.append(torch.from_numpy(np.ascontiguousarray(a)))
    return tuple(out)
