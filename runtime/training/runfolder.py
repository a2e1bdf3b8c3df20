"""Where a run's weights come from and go: resuming from a checkpoint (its settings, state
and weights), the run folder a new run must not mix with, initial weights and frozen nodes,
and the trained weights saved at the end. A part of :class:`~.trainer.Trainer`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import runs
from .config import ConfigError, TrainingError, resume_config


class RunFolder:
    """The Trainer's resume, run-folder and weight-loading steps (mixed into Trainer)."""

    def _read_resume(self) -> None:
        """Read the checkpoint to resume from, and continue with its settings: only those
        that do not change the trajectory (epochs, device, reporting) come from this run's
        config; other differences are ignored with a warning."""
        try:
            self._resume_path, self._resume_state = ckpt.read_state(self.resume)
            saved = dict(self._resume_state["config"])
            self.cfg, ignored = resume_config(self.cfg, saved)
        except (ckpt.CheckpointError, ConfigError, TypeError) as exc:
            raise TrainingError(f"cannot resume from {self.resume}: {exc}") from None
        if isinstance(self.data, str) and self.data != self.cfg.dataset:
            ignored.append(f"dataset {self.data!r} (the checkpoint's {self.cfg.dataset!r} is kept)")
            self.data = None
        if ignored:
            self.emit("warning", node=None, message=(
                f"resuming {self._resume_path.name} with the checkpoint's settings (exact "
                "continuation); ignored: " + "; ".join(ignored)))

    def _prepare_out_dir(self) -> None:
        """A new run never mixes with an older one in ``out_dir`` (see runs.py)."""
        if self.out_dir is None or not self.main:
            return
        if self._resume_state is None:
            if ckpt.list_checkpoints(self.out_dir / "checkpoints"):
                moved = runs.archive_previous_run(self.out_dir)
                self.emit("warning", node=None, message=(
                    f"{self.out_dir} held a previous run: its files were moved to {moved}"))
        elif not runs.continues_in(self.out_dir, self._resume_path):
            if ckpt.list_checkpoints(self.out_dir / "checkpoints"):
                moved = runs.archive_previous_run(self.out_dir)
                self.emit("warning", node=None, message=(
                    f"{self.out_dir} held another run: its files were moved to {moved}"))
        else:
            moved = runs.trim_after(self.out_dir, int(self._resume_state["epoch"]))
            if moved is not None:
                self.emit("warning", node=None, message=(
                    f"{self.out_dir} held epochs after {self._resume_state['epoch']} (an "
                    f"abandoned continuation): moved to {moved}"))

    def _freeze_and_init(self) -> None:
        cfg = self.cfg
        children = dict(self.module.named_children())
        for nid in cfg.frozen:
            for p in self._node_modules(nid, children):
                for q in p.parameters():
                    q.requires_grad_(False)
        if cfg.init_weights and self._resume_state is None:
            path = Path(cfg.init_weights)
            if not path.is_absolute() and self.base_dir:
                path = Path(self.base_dir) / path
            try:
                tensors = ckpt.load_weights(path)
            except (OSError, Exception) as exc:  # safetensors raises its own error types
                raise ConfigError("init_weights", f"cannot read {path}: {exc}") from None
            own = self.module.state_dict()
            loaded, skipped = set(), set()
            with torch.no_grad():
                for k, v in tensors.items():
                    if k in own and own[k].shape == v.shape:
                        own[k].copy_(v)
                        loaded.add(k.split(".")[0])
                    elif k.split(".")[0] in children:
                        skipped.add(k.split(".")[0])
            for nid in sorted(skipped - loaded):
                self.emit("warning", message=f"{path.name}: weights for {nid} have other shapes; "
                          "kept its fresh initialisation", node=nid)
            if not loaded:
                self.emit("warning", message=f"{path.name}: no tensor matches a node of this "
                          "graph; nothing loaded", node=None)
            self.loaded_nodes = sorted(loaded)

    def _node_modules(self, nid: str, children: dict) -> list[torch.nn.Module]:
        """The layers of node ``nid``: the node itself, or every layer inside a Block
        (compiled with ids ``<block>__<inner id>``)."""
        from ..blocks import SEP

        if nid in children:
            return [children[nid]]
        inner = [m for name, m in children.items() if name.startswith(nid + SEP)]
        if inner:
            return inner
        node = self.doc.nodes.get(nid)
        if node is not None:
            raise ConfigError("frozen", f"node {nid!r} ({node.type}) has no parameters to freeze")
        raise ConfigError("frozen", f"no layer node {nid!r} in the graph")

    def _restore(self) -> None:
        path, state = self._resume_path, self._resume_state
        try:
            weights, _ = ckpt.load_checkpoint(path)
        except ckpt.CheckpointError as exc:
            raise TrainingError(f"cannot resume: {exc}") from None
        own = self.module.state_dict()
        missing = set(own) - set(weights)
        if missing:
            raise TrainingError(f"cannot resume from {path}: it has no weights for "
                                f"{', '.join(sorted({m.split('.')[0] for m in missing}))}")
        wrong = sorted({k.split(".")[0] for k in own if k in weights
                        and tuple(weights[k].shape) != tuple(own[k].shape)})
        if wrong:
            raise TrainingError(f"cannot resume from {path}: its weights for "
                                f"{', '.join(wrong)} have other shapes than this graph's")
        try:
            self.module.load_state_dict(weights)
            self.optimizer.load_state_dict(state["optimizer"])
            ckpt.set_rng_state(state["rng"])
            tr = dict(state["trainer"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise TrainingError(f"cannot resume from {path}: its optimizer or random state "
                                f"does not fit this graph ({exc})") from None
        self.history = list(tr.pop("history", []))
        self.state.update(tr)
        self.last_checkpoint = str(path)

    def save_weights(self, path: str | Path) -> Path:
        return ckpt.save_weights(self.module, path)
