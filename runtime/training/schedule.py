"""Optimizers and learning-rate schedules: the one source for the Trainer and for the
generated train.py.

train.py carries these functions as they are written here (``inspect.getsource``), so they
use only ``math``, ``torch`` and attributes of ``cfg`` (a TrainConfig, or train.py's
namespace of the same settings), with no annotations naming this package's types.
"""
from __future__ import annotations

import math

import torch


def make_optimizer(cfg, groups):
    """The optimizer ``cfg.optimizer`` over parameter ``groups`` at ``cfg.lr``."""
    o, lr = cfg.optimizer, cfg.lr
    if o in ("sgd", "momentum", "nesterov"):
        m = 0.0 if o == "sgd" else cfg.momentum
        return torch.optim.SGD(groups, lr=lr, momentum=m, nesterov=(o == "nesterov" and m > 0))
    return {"adagrad": lambda: torch.optim.Adagrad(groups, lr=lr),
            "adadelta": lambda: torch.optim.Adadelta(groups, lr=lr),
            "rmsprop": lambda: torch.optim.RMSprop(groups, lr=lr, momentum=cfg.momentum),
            "adam": lambda: torch.optim.Adam(groups, lr=lr),
            "adamw": lambda: torch.optim.AdamW(groups, lr=lr)}[o]()


def get_lr(cfg, step, steps_per_epoch, total_steps):
    """The scheduled learning rate at ``step`` (plateau decay is applied on top)."""
    lr0 = cfg.lr
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return lr0 * (step + 1) / cfg.warmup_steps
    s = cfg.schedule
    if s == "step":
        return lr0 * cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    if s == "linear":  # eps_k = (1 - a) eps_0 + a eps_tau, a = k / tau, constant after tau
        a = min(1.0, step / (cfg.decay_steps or total_steps))
        return (1 - a) * lr0 + a * cfg.final_lr
    if s in ("cosine", "warmup"):
        length = (cfg.decay_steps or total_steps) - cfg.warmup_steps
        a = min(1.0, (step - cfg.warmup_steps) / max(1, length))
        return cfg.final_lr + 0.5 * (lr0 - cfg.final_lr) * (1 + math.cos(math.pi * a))
    return lr0  # constant, plateau


def plateau_update(cfg, state, watch):
    """The plateau schedule at an epoch's end: multiply the rate's scale
    ``state["plateau_scale"]`` by ``cfg.gamma`` when the watched loss has not improved for
    more than ``cfg.plateau_patience`` epochs (``state`` also keeps plateau_best and
    plateau_bad)."""
    if cfg.schedule != "plateau":
        return
    if watch < state["plateau_best"] - 1e-12:
        state["plateau_best"], state["plateau_bad"] = watch, 0
    else:
        state["plateau_bad"] += 1
        if state["plateau_bad"] > cfg.plateau_patience:
            state["plateau_scale"] *= cfg.gamma
            state["plateau_bad"] = 0


FUNCTIONS = (make_optimizer, get_lr, plateau_update)  # what train.py carries
