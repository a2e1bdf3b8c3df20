"""The course's debugging habits, one call each (also ``netbuilder train`` flags and the
Train menu):

- :func:`overfit_tiny`: train on 32 samples until the training error is zero. A network
  that cannot learn 32 samples by heart has a bug (wiring, loss, learning rate).
- :func:`check_gradients`: autograd against central differences, in float64 on a small
  batch, per node, for the whole graph (hand-drawn cells and Netbuilder's own layers
  included); reports the worst relative error and its node.
- :func:`correlated_units`: the correlation matrix of a layer's units over the probe set
  and the share of unit pairs above 0.9 (redundant units).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

GRADCHECK_TOL = 1e-4  # worst relative error allowed (float64, central differences)
CORRELATED = 0.9


# ---- overfit a tiny subset --------------------------------------------------------------


@dataclass
class OverfitResult:
    reached: bool  # training error zero (classification) / loss below 1e-3 (regression)
    steps: int
    samples: int
    train_loss: float | None
    train_accuracy: float | None
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def overfit_tiny(doc, samples: int = 32, max_steps: int = 500, config=None, data=None,
                 base_dir=None, on_event=None) -> OverfitResult:
    """Train on the first ``samples`` training samples (one full batch per step, no
    validation, no augmentation) until every one is classified right (or, without
    accuracy, the loss is below 1e-3), at most ``max_steps`` steps."""
    from ..data import load_dataset
    from . import Control, TrainConfig, Trainer

    cfg = TrainConfig.from_dict((config.to_dict() if config is not None else doc.training) or {})
    ds = data if data is not None and not isinstance(data, str) else load_dataset(
        data or cfg.dataset, doc, base_dir, cfg.seed)
    tiny = ds.subset(np.arange(min(samples, len(ds))))
    cfg.val_split, cfg.test_split, cfg.augment, cfg.early_stopping = 0.0, 0.0, [], 0
    cfg.batch_size, cfg.epochs, cfg.schedule, cfg.warmup_steps = len(tiny), max_steps, "constant", 0
    cfg.log_every = 1
    control = Control()
    state: dict[str, Any] = {"steps": 0, "loss": None, "acc": None, "reached": False}

    def watch(ev):
        if on_event is not None:
            on_event(ev)
        if ev["event"] != "epoch":
            return
        state["steps"] = ev["epoch"]
        state["loss"], state["acc"] = ev.get("train_loss"), ev.get("train_accuracy")
        acc, loss = state["acc"], state["loss"]
        if (acc is not None and acc >= 1.0) or (acc is None and loss is not None and loss < 1e-3):
            state["reached"] = True
            control.stop()

    trainer = Trainer(doc, cfg, data=tiny, on_event=watch, control=control, base_dir=base_dir)
    final = trainer.fit()
    if final.get("status") == "error":
        raise RuntimeError(final.get("error"))
    n, k = len(tiny), state["steps"]
    acc = state["acc"]
    if state["reached"]:
        msg = f"overfit {n} samples: zero training error after {k} steps"
    else:
        what = f"training accuracy {acc:.1%}" if acc is not None else f"loss {state['loss']:.3g}"
        msg = (f"could not overfit {n} samples in {k} steps ({what}): a network that cannot "
               "learn a few samples by heart usually has a bug: check the wiring, the loss "
               "and its target, and try a higher or lower learning rate")
    return OverfitResult(state["reached"], k, n, state["loss"], acc, msg)


# ---- gradient check -----------------------------------------------------------------------


@dataclass
class GradCheckResult:
    passed: bool
    worst_error: float
    worst_node: str | None
    per_node: dict[str, float] = field(default_factory=dict)  # node -> worst relative error
    checked: int = 0  # coordinates compared
    tolerance: float = GRADCHECK_TOL

    @property
    def message(self) -> str:
        if self.worst_node is None:
            return "gradient check: nothing to check (no trainable parameters)"
        verdict = "passed" if self.passed else "FAILED"
        return (f"gradient check {verdict}: worst relative error {self.worst_error:.2e} at "
                f"{self.worst_node} ({self.checked} weights compared, tolerance "
                f"{self.tolerance:g})")

    def to_dict(self) -> dict:
        return {**asdict(self), "message": self.message}


def check_gradients(doc, batch: int = 2, per_tensor: int = 3, eps: float = 1e-6,
                    seed: int = 0, inputs=None, tolerance: float = GRADCHECK_TOL) -> GradCheckResult:
    """Compare autograd's gradient of the loss with central differences
    (f(w + eps) - f(w - eps)) / 2 eps, in float64, for ``per_tensor`` weights of every
    parameter tensor (the largest gradient and random others), node by node. Inputs are
    random ones of the right shapes (or ``inputs``: a tuple of inputs and targets).
    Dropout draws the same masks in every evaluation; hand-drawn cells run as their plain
    loop. Relative error |a - n| / max(|a| + |n|, 1e-4 max(1, |loss|)): the floor keeps
    gradients below the central difference's rounding noise (about 1e-16 |loss| / eps)
    from counting as errors, while a wrong backward on any gradient that matters shows."""
    from ..compiler import build_module, example_inputs
    from ..recurrent.regions import lowering

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with lowering(False):
            module = build_module(doc, mode="train").double()
    args = inputs if inputs is not None else example_inputs(doc, batch, mode="train", seed=seed)
    args = tuple(a.double() if a.is_floating_point() else a for a in args)
    module.train()

    def loss() -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            return module(*args)["loss"]

    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    module.zero_grad(set_to_none=True)
    base = loss()
    base.backward()
    floor = 1e-4 * max(1.0, abs(float(base.detach())))
    gen = np.random.default_rng(seed)
    per_node: dict[str, float] = {}
    checked = 0
    for name, p in named:
        node = name.split(".")[0]
        grad = p.grad.detach().reshape(-1).clone() if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype)
        picks = {int(grad.abs().argmax())} if p.numel() else set()
        picks |= set(gen.choice(p.numel(), size=min(per_tensor - 1, p.numel()), replace=False).tolist())
        flat = p.data.view(-1)
        for i in sorted(picks):
            old = float(flat[i])
            with torch.no_grad():
                flat[i] = old + eps
                up = float(loss())
                flat[i] = old - eps
                down = float(loss())
                flat[i] = old
            numeric = (up - down) / (2 * eps)
            analytic = float(grad[i])
            err = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), floor)
            if not math.isfinite(err):
                err = math.inf
            per_node[node] = max(per_node.get(node, 0.0), err)
            checked += 1
    if not per_node:
        return GradCheckResult(True, 0.0, None, {}, 0, tolerance)
    worst = max(per_node, key=per_node.get)
    return GradCheckResult(per_node[worst] <= tolerance, per_node[worst], worst, per_node,
                           checked, tolerance)


# ---- correlated units ---------------------------------------------------------------------


@dataclass
class CorrelationResult:
    node: str
    units: int
    share_above: float  # share of unit pairs with |correlation| > 0.9
    matrix: np.ndarray  # units x units (constant units: 0)
    threshold: float = CORRELATED

    @property
    def message(self) -> str:
        return (f"{self.node}: {self.share_above:.1%} of the {self.units * (self.units - 1) // 2} "
                f"unit pairs correlate above {self.threshold} over the probe set"
                + (" (redundant units: a smaller layer, dropout or weight decay may do as well)"
                   if self.share_above > 0.1 else ""))


def correlated_units(module_or_doc, node: str, inputs, weights=None,
                     threshold: float = CORRELATED) -> CorrelationResult:
    """Correlation of ``node``'s units (its output features; channels of a feature map,
    averaged over positions) over the samples of ``inputs`` (see probing.probe)."""
    from .probing import probe

    got = probe(module_or_doc, inputs, weights=weights).activations.get(node)
    if isinstance(got, (tuple, list)):
        got = got[0]
    if not isinstance(got, torch.Tensor):
        raise ValueError(f"correlated units: no layer node {node!r} in the graph")
    a = got.detach().double()
    if a.dim() == 4:  # (N, C, H, W): a channel is a unit
        a = a.mean((2, 3))
    elif a.dim() == 3:  # (N, T, F) or (N, C, L): fold the middle axis into the samples
        a = a.reshape(-1, a.shape[-1])
    a = a.reshape(a.shape[0], -1).cpu().numpy()
    a = a - a.mean(0)
    std = a.std(0)
    live = std > 1e-12
    c = np.zeros((a.shape[1], a.shape[1]))
    if live.sum() > 1 and a.shape[0] > 1:
        z = a[:, live] / std[live]
        c[np.ix_(live, live)] = z.T @ z / a.shape[0]
    k = a.shape[1]
    iu = np.triu_indices(k, 1)
    share = float((np.abs(c[iu]) > threshold).mean()) if k > 1 else 0.0
    return CorrelationResult(node, k, share, c, threshold)


# ---- command line: netbuilder train FILE --overfit-tiny | --check-gradients | ... ----------


def add_habit_arguments(p) -> None:
    p.add_argument("--overfit-tiny", action="store_true", help="debugging habit: train on 32 "
                   "samples until the training error is zero, and say whether it got there")
    p.add_argument("--check-gradients", action="store_true", help="debugging habit: compare "
                   "autograd with numerical gradients (float64, small batch) node by node")
    p.add_argument("--correlated-units", metavar="NODE", help="debugging habit: correlation "
                   "of NODE's units over 256 samples (use --resume or a run folder's weights "
                   "via --weights for a trained net)")
    p.add_argument("--weights", metavar="FILE", help="with --correlated-units: a "
                   "weights.safetensors file (default: fresh weights)")


def run_habits(args, error, print_final) -> int:
    """The debugging habits of ``netbuilder train``: a message on stderr, the result as the
    last JSON line on stdout; exit status 1 when the check fails."""
    import sys
    from pathlib import Path

    from ..serialization import GraphFileError, load_graph
    from .config import ConfigError, TrainConfig

    try:
        doc = load_graph(args.file)
    except GraphFileError as exc:
        return error(f"cannot load {exc.source}: {exc.problems[0] if exc.problems else ''}")
    base = Path(args.file).resolve().parent
    try:
        cfg = TrainConfig.from_dict(doc.training)
        for name in ("seed", "lr", "device", "threads"):
            if getattr(args, name, None) is not None:
                setattr(cfg, name, getattr(args, name))
        if args.data:
            cfg.dataset = args.data
        cfg.validate()
    except ConfigError as exc:
        return error(f"{args.file}: {exc}")
    try:
        if args.check_gradients:
            res = check_gradients(doc)
            print(res.message, file=sys.stderr)
            worst = sorted(res.per_node.items(), key=lambda kv: -kv[1])[:5]
            for node, err in worst:
                print(f"  {node}: {err:.2e}", file=sys.stderr)
            print_final({"status": "passed" if res.passed else "failed", **res.to_dict()})
            return 0 if res.passed else 1
        if args.overfit_tiny:
            res = overfit_tiny(doc, config=cfg, base_dir=base,
                               max_steps=args.max_steps or 500)
            print(res.message, file=sys.stderr)
            print_final({"status": "passed" if res.reached else "failed", **res.to_dict()})
            return 0 if res.reached else 1
        res = _correlated_from_data(doc, cfg, base, args.correlated_units, args.weights)
        print(res.message, file=sys.stderr)
        print_final({"status": "completed", "node": res.node, "units": res.units,
                     "share_above": res.share_above, "threshold": res.threshold})
        return 0
    except (ValueError, RuntimeError, OSError) as exc:
        return error(str(exc))


def probe_set(doc, cfg, base_dir=None, n: int = 256) -> tuple:
    """The first ``n`` validation samples, normalised as training does (input tensors)."""
    from .probing import probe_data

    return probe_data(doc, cfg, base_dir, n).inputs


def _correlated_from_data(doc, cfg, base_dir, node, weights_file) -> CorrelationResult:
    weights = None
    if weights_file:
        from .checkpoint import load_weights

        weights = load_weights(weights_file)
    if node not in doc.nodes:
        raise ValueError(f"--correlated-units: no node {node!r} in the graph")
    return correlated_units(doc, node, probe_set(doc, cfg, base_dir), weights=weights)
