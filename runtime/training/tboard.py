"""TensorBoard event files for a run, written from the Trainer's events.

Written into ``<run folder>/tensorboard/`` when the ``tensorboard`` package is installed
(the optional extra ``tensorboard``), so ``tensorboard --logdir runs`` shows every run.
Without it (or with ``NETBUILDER_TENSORBOARD=0``) nothing is written and training is
unchanged.

What goes in: the loss of every step, the learning rate and gradient norm every
``log_every`` steps (``train/*``); epoch losses and
accuracies (``epoch/*``); per-layer gradient norms at the instrumentation steps
(``grad_norm/<node>``); histograms of every layer's weights and of the probe node's
activations at the visualisation steps (``weights/<node>``, ``activations/<node>``); the
training settings as hyper-parameters with the final metrics (the HPARAMS tab).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = "tensorboard"
HPARAM_METRICS = ("epoch/val_loss", "epoch/val_accuracy", "epoch/train_loss",
                  "epoch/train_accuracy")


def available() -> bool:
    if os.environ.get("NETBUILDER_TENSORBOARD", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def open_writer(out: Path, trainer: Any, purge_step: int | None = None) -> "TensorBoardLog | None":
    """A writer for the run in ``out``, or None when TensorBoard is not installed."""
    if not available():
        return None
    return TensorBoardLog(Path(out) / FOLDER, trainer, purge_step)


def _hparam_value(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


class TensorBoardLog:
    def __init__(self, folder: Path, trainer: Any, purge_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        self.trainer = trainer
        self.w = SummaryWriter(str(folder), purge_step=purge_step, flush_secs=10)
        self.step = purge_step or 0
        self.every = max(1, int(trainer.cfg.log_every))
        from torch.utils.tensorboard.summary import hparams

        self.hparams = {k: _hparam_value(v) for k, v in trainer.cfg.to_dict().items()
                        if v is not None}
        exp, ssi, _ = hparams(self.hparams, {m: 0.0 for m in HPARAM_METRICS})
        self.w.file_writer.add_summary(exp)
        self.w.file_writer.add_summary(ssi)

    def event(self, e: dict) -> None:
        kind, w = e.get("event"), self.w
        if kind == "step":
            s = self.step = e["step"]
            w.add_scalar("train/loss", e["loss"], s)  # (~80 us a scalar: the rest sampled)
            if s % self.every == 0:
                w.add_scalar("train/lr", e["lr"], s)
                if e.get("grad_norm") is not None:
                    w.add_scalar("train/grad_norm", e["grad_norm"], s)
        elif kind == "epoch":
            for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
                if e.get(key) is not None:
                    w.add_scalar(f"epoch/{key}", e[key], e["epoch"])
            w.flush()
        elif kind == "grad_norms":
            for node, value in (e.get("norms") or {}).items():
                w.add_scalar(f"grad_norm/{node}", value, e["step"])
        elif kind == "histograms":
            self._histograms(e)

    def _histograms(self, e: dict) -> None:
        step = e["step"]
        if e.get("activations") is not None:
            self._raw(f"activations/{e['node']}", e["activations"], step)
        module = getattr(self.trainer, "module", None)
        if module is None:
            return
        import torch

        from .instrument import _hist

        groups: dict[str, list] = {}
        for name, p in module.named_parameters():
            groups.setdefault(name.split(".")[0], []).append(p.detach().flatten())
        with torch.no_grad():
            for node, tensors in groups.items():
                values = torch.cat(tensors).float()
                self._raw(f"weights/{node}", _hist(values), step, values)

    def _raw(self, tag: str, hist: tuple, step: int, values: Any = None) -> None:
        counts, edges = np.asarray(hist[0], dtype=np.float64), np.asarray(hist[1], dtype=np.float64)
        if counts.sum() <= 0:
            return
        if values is not None:
            total, squares = float(values.sum()), float((values * values).sum())
        else:  # bin centres stand in for the values
            mid = (edges[:-1] + edges[1:]) / 2
            total, squares = float((counts * mid).sum()), float((counts * mid * mid).sum())
        self.w.add_histogram_raw(tag, min=float(edges[0]), max=float(edges[-1]),
                                 num=int(counts.sum()), sum=total, sum_squares=squares,
                                 bucket_limits=edges[1:].tolist(),
                                 bucket_counts=counts.tolist(), global_step=step)

    def close(self, final: dict | None) -> None:
        if final is not None:  # the hyper-parameter session ends (the HPARAMS tab)
            from torch.utils.tensorboard.summary import hparams

            self.w.file_writer.add_summary(hparams(self.hparams, {})[2])
        self.w.flush()
        self.w.close()
