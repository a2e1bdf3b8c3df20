"""The Trainer: compiles the graph, loads the data, runs a flat training loop and emits
metrics as small picklable event dicts (protocol in docs/interfaces.md).

    trainer = Trainer(doc, TrainConfig.from_dict(doc.training), on_event=print)
    final = trainer.fit()    # {"train_loss", "val_loss", "val_accuracy", "status", ...}

Step losses and gradient norms stay on the device and are read back once every
``log_every`` steps; per-node gradient norms and probes only at their sampled steps.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..compiler import CompileError, build_module, signature
from ..data import DataError, Dataset, bind, load_dataset, normalisation, split
from ..data.augment import augment
from . import checkpoint as ckpt
from . import divergence
from . import distributed
from . import fastpath
from . import feed as feeds
from . import instrument as ins
from .config import ConfigError, TrainConfig, TrainingError
from .control import Control
from .schedule import get_lr, make_optimizer, plateau_update  # noqa: F401 (re-exported)
from .health import HealthMonitor
from .runfolder import RunFolder
from .scoring import CLASSIFICATION_LOSSES, Scoring  # noqa: F401 (re-exported)

STEP_LOSSES_KEPT = 100_000  # newest step losses kept in memory (for tests and summaries)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device", "MPS was requested but is not available")
    return torch.device(name)


class Trainer(RunFolder, Scoring):
    """Set-up and the training loop; resume, the run folder and weight loading are in
    :mod:`.runfolder`, accuracy and evaluation in :mod:`.scoring`."""

    def __init__(self, doc, config: TrainConfig | None = None, data: Dataset | str | None = None,
                 device: str | None = None, out_dir: str | Path | None = None,
                 on_event: Callable[[dict], Any] | None = None, control: Control | None = None,
                 resume: str | Path | None = None, base_dir: str | Path | None = None,
                 max_steps: int | None = None):
        self.doc = doc
        self.cfg = config if config is not None else TrainConfig.from_dict(doc.training)
        self.data = data
        self.device_name = device or self.cfg.device
        self.out_dir = Path(out_dir) if out_dir else None
        self.on_event = on_event or (lambda event: None)
        if self.out_dir is not None:  # run.json, metrics, TensorBoard events: record.py
            from .record import RunRecorder

            self.on_event = RunRecorder(self, self.on_event)
        self.control = control or Control()
        self.resume = resume
        self.base_dir = base_dir
        self.max_steps = max_steps or None  # end the run after this many steps (smoke tests)
        self.module: torch.nn.Module | None = None
        self.history: list[dict] = []  # epoch events (without arrays)
        self.step_losses: deque[float] = deque(maxlen=STEP_LOSSES_KEPT)  # bounded memory
        self.last_checkpoint: str | None = None
        self.group = distributed.Group()  # the process group (set in setup under torchrun)
        self.main = int(os.environ.get("RANK", "0") or 0) == 0  # only rank 0 reports and writes

    # ------------------------------------------------------------------ events
    def emit(self, event: str, **fields) -> None:
        if self.main:
            self.on_event({"event": event, **fields})

    def _fail(self, message: str, step: int | None) -> dict:
        self.emit("error", message=message, step=step, checkpoint=self.last_checkpoint)
        final = {**self._final(), "status": "error", "error": message}
        self.emit("finished", metrics=final)
        return final

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Compile, load and split the data, build the optimizer; raises plain errors."""
        self._resume_state = None
        if self.resume:
            self._read_resume()
        cfg = self.cfg
        cfg.validate()
        self._prepare_out_dir()
        self.device = distributed.local_device(resolve_device(self.device_name))
        self.group = distributed.current(self.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        from ..pipeline import analyze

        analysis = analyze(self.doc)  # before seeding: analysis may build layers once
        torch.manual_seed(cfg.seed)
        self.module = build_module(self.doc, mode="train", analysis=analysis).to(self.device)
        fastpath.setup(self.module, cfg, self.device)  # channels_last, cudnn benchmark
        self.sig = signature(self.doc)
        if not self.sig.losses:
            raise TrainingError("the graph has no loss node: connect a loss (e.g. CrossEntropy) "
                                "to a prediction and a Target")
        self._load_data()
        self._freeze_and_init()
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        if not named:
            raise TrainingError("nothing to train: the graph has no trainable parameters "
                                "(or all are frozen)")
        decay = [p for n, p in named if p.dim() >= 2]
        no_decay = [p for n, p in named if p.dim() < 2]
        self.l1_params = decay
        self.optimizer = make_optimizer(cfg, [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0}])
        self.params = [p for _, p in named]
        self.train_model = self.group.wrap(self.module, self.device)  # DDP under torchrun
        if cfg.compile:
            self.train_model = fastpath.Compiled(
                self.train_model, lambda m: self.emit("warning", node=None, message=m))
        self.norms = ins.GradNorms(named, self.device)
        self.health = HealthMonitor(self.doc, self.module, named, self.device,
                                    self.out_dir if self.main else None, self.emit)
        self.amp_dtype = None
        if cfg.amp and self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self._find_accuracy()
        self.probe_node = cfg.probe_node or ins.default_probe(self.doc, self.module)
        if cfg.probe_node and cfg.probe_node not in dict(self.module.named_children()):
            raise ConfigError("probe_node", f"no layer node {cfg.probe_node!r} in the graph")
        self.filter_node = ins.first_conv(self.doc, self.module)
        self._probe_version = self.control.probe()[0]
        src_x, src_y = self.feed.head("val" if self.n_val else "train", 64)
        self.probe_args = tuple(src_x + src_y)
        # a last partial batch of one sample is dropped (batch statistics of one sample); under
        # DDP, one smaller than the number of processes (each takes a part of every batch)
        self.n_batches = max(1, self.n_train // cfg.batch_size + (
            self.n_train % cfg.batch_size > max(1, self.group.world - 1)))
        self.total_steps = self.n_batches * cfg.epochs
        if self.max_steps:
            self.total_steps = min(self.total_steps, self.max_steps)
        self.state = {"epoch": 0, "step": 0, "plateau_scale": 1.0, "plateau_best": math.inf,
                      "plateau_bad": 0, "best": math.inf, "bad_epochs": 0}
        if self._resume_state is not None:
            self._restore()

    def _load_data(self) -> None:
        cfg = self.cfg
        ds = self.data if isinstance(self.data, Dataset) else load_dataset(
            self.data or cfg.dataset, self.doc, self.base_dir, cfg.seed,
            progress=lambda message: self.emit("status", message=message))
        self.dataset = ds
        train, val, test = split(ds, cfg.val_split, cfg.test_split, cfg.seed)
        tx, ty = bind(train, self.doc)
        stats = normalisation(tx) if cfg.normalize else [None] * len(tx)
        if ds.streamed:  # read from disk a batch at a time, by DataLoader workers
            parts = {name: bind(part, self.doc) if part is not None else ([], [])
                     for name, part in zip(feeds.PARTS, (train, val, test))}
            self.feed = feeds.StreamFeed(parts, stats, self.device, ds.meta.get("workers"))
            self.train_x = self.train_y = self.val_x = self.val_y = self.test_x = self.test_y = []
        else:
            def tensors(part):
                if part is None:
                    return [], []
                xs, ys = bind(part, self.doc)
                xs = [(x - s[0]) / s[1] if s is not None else x for x, s in zip(xs, stats)]
                to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
                return [to(x) for x in xs], [to(y) for y in ys]

            self.train_x, self.train_y = tensors(train)
            self.val_x, self.val_y = tensors(val)
            self.test_x, self.test_y = tensors(test)
            self.feed = feeds.MemoryFeed({"train": (self.train_x, self.train_y),
                                          "val": (self.val_x, self.val_y),
                                          "test": (self.test_x, self.test_y)}, self.device)
        self.n_train, self.n_val = len(train), (len(val) if val is not None else 0)
        self.index = {"train": train.meta.get("index"),  # positions in the whole dataset
                      "val": val.meta.get("index") if val is not None else None,
                      "test": test.meta.get("index") if test is not None else None}
        self.stats = stats

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict:
        """Train (setting up first unless :meth:`setup` was called); returns final metrics
        with ``status`` completed | stopped | early_stopped | error."""
        try:
            if self.module is None or not hasattr(self, "state"):
                self.setup()
        except (DataError, ConfigError, CompileError, TrainingError, ValueError) as exc:
            return self._fail(str(exc), None)
        except OSError as exc:  # a file that cannot be read or written (FileNotFoundError...)
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            return self._fail(f"{where}{exc.strerror or exc}", None)
        try:
            return self._loop()
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            bs = self.cfg.batch_size
            return self._fail(
                f"out of GPU memory at step {self.state['step']} with batch size {bs}: try "
                f"a smaller batch size (batch_size {max(1, bs // 2)}, --batch-size "
                f"{max(1, bs // 2)}), turn on mixed precision (amp), or make the model "
                f"smaller. Nothing is lost: the last checkpoint is "
                f"{self.last_checkpoint or 'none (no epoch had finished)'}", self.state["step"])
        except DataError as exc:
            return self._fail(str(exc), self.state["step"])
        except OSError as exc:  # e.g. a checkpoint that cannot be written (disk full)
            return self._fail(f"cannot write to {exc.filename or self.out_dir}: "
                              f"{exc.strerror or exc}", self.state["step"])
        except (RuntimeError, IndexError) as exc:  # a torch error inside a step: report
            return self._fail(f"training failed at step {self.state['step']}: {exc}",
                              self.state["step"])

    def _loop(self) -> dict:
        cfg, st, model, dev = self.cfg, self.state, self.train_model, self.device
        group = self.group
        n, bs = self.n_train, cfg.batch_size
        self.emit("started", total_steps=self.total_steps, steps_per_epoch=self.n_batches,
                  epochs=cfg.epochs, device=fastpath.describe(dev),
                  params=sum(p.numel() for p in model.parameters()),
                  nodes=list(dict.fromkeys(k.split(".")[0] for k, _ in model.named_parameters())))
        if st["step"] == 0:
            self._visualize(0)
        buf_loss = torch.zeros(cfg.log_every, device=dev)
        buf_norm = torch.zeros(cfg.log_every, device=dev)
        buf_meta: list[tuple[int, int, int, float]] = []  # (step, epoch, batch, lr)
        status = "completed"
        t_flush = time.perf_counter()
        model.train()
        cut = False  # max_steps reached
        for epoch in range(st["epoch"], cfg.epochs):
            batches = self.feed.train_batches(epoch, bs, self.n_batches, cfg.seed, group)
            loss_sum = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev, dtype=torch.long)
            seen = count = 0
            for b in range(self.n_batches):
                if self.max_steps and st["step"] >= self.max_steps:
                    cut = True
                    break
                if not self.control.wait():
                    status = "stopped"
                    break
                xs, ys, share = next(batches)
                if cfg.channels_last:
                    xs = fastpath.channels_last(xs)
                m = len(ys[0]) if ys else len(xs[0])
                if cfg.augment:
                    xs = [augment(x, cfg.augment) for x in xs]
                lr = get_lr(cfg, st["step"], self.n_batches, self.total_steps) * st["plateau_scale"]
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                watched = st["step"] % cfg.visualize_every == 0  # node statistics this step
                if watched:
                    self.health.arm()
                with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                    out = model(*xs, *ys)
                loss = out["loss"].float()
                objective = loss * share if group.active else loss
                if cfg.l1:
                    objective = loss + cfg.l1 * sum(p.abs().sum() for p in self.l1_params)
                self.optimizer.zero_grad(set_to_none=True)
                (self.scaler.scale(objective) if self.scaler else objective).backward()
                if self.scaler:
                    self.scaler.unscale_(self.optimizer)
                total, norms = self.norms.total()  # before clipping
                if watched:
                    self.health.grads(norms)  # its node_stats carry the grad norms too
                elif st["step"] % cfg.instrument_every == 0:
                    self.emit("grad_norms", step=st["step"], norms=self.norms.per_node(norms))
                if cfg.clip_norm:
                    ins.clip_by_norm_(self.params, total, cfg.clip_norm)
                if cfg.clip_value:
                    torch.nn.utils.clip_grad_value_(self.params, cfg.clip_value)
                if self.scaler:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                if watched:
                    self.health.finish(st["step"], loss)
                k = len(buf_meta)
                buf_loss[k] = loss.detach() * (share / group.world) if group.active else loss.detach()
                buf_norm[k] = total.detach()
                buf_meta.append((st["step"], epoch + 1, b + 1, lr))
                loss_sum += loss.detach() * m
                seen += m
                if self.acc:
                    c, _, m = self._correct(out, ys)
                    correct += c
                    count += m
                st["step"] += 1
                if len(buf_meta) == cfg.log_every or b == self.n_batches - 1 or (
                        self.max_steps and st["step"] >= self.max_steps):
                    bad = self._flush(buf_loss, buf_norm, buf_meta, t_flush, bs)
                    buf_meta, t_flush = [], time.perf_counter()
                    if bad is not None:
                        return divergence.stop_non_finite(self, *bad)
                if st["step"] % cfg.visualize_every == 0:
                    self._visualize(st["step"])
            if buf_meta:
                bad = self._flush(buf_loss, buf_norm, buf_meta, t_flush, bs)
                buf_meta = []
                if bad is not None:
                    return divergence.stop_non_finite(self, *bad)
            if status == "stopped" or seen == 0:
                break
            if group.active:  # the whole batch's sums: one collective per epoch
                sums = group.sum_(torch.stack([loss_sum.double(), correct.double(),
                                               torch.as_tensor(count, device=dev).double(),
                                               torch.tensor(float(seen), device=dev).double()]))
                loss_sum, correct, count, seen = sums[0], sums[1], sums[2], int(sums[3])
            count = int(count)  # a device tensor when a padding class is left out
            train_loss = (loss_sum / seen).item()
            diverged = divergence.check(self, epoch + 1, train_loss)
            if diverged is not None:
                return diverged
            status = self._end_epoch(epoch + 1, train_loss,
                                     correct.item() / count if self.acc and count else None)
            if status != "completed" or cut:
                break
        final = {**self._final(), "status": status}
        if self.out_dir is not None and self.main:  # the trained weights outlive the process
            final["weights"] = str(self.save_weights(self.out_dir / "weights.safetensors"))
            final["out_dir"] = str(self.out_dir)
        self.emit("finished", metrics=final)
        return final

    def _flush(self, buf_loss, buf_norm, meta, t0, bs):
        """Read the buffered step metrics back (one sync) and emit step events; returns the
        first non-finite step, if any."""
        losses = self.group.sum_(buf_loss[:len(meta)]).tolist()
        norms = buf_norm[:len(meta)].tolist()
        rate = bs * len(meta) / max(time.perf_counter() - t0, 1e-9)
        for (s, e, b, lr), loss, g in zip(meta, losses, norms):
            if not math.isfinite(loss):
                return s, e, b, loss, lr
            if getattr(self, "first_loss", None) is None:
                self.first_loss = loss
            self.step_losses.append(loss)
            self.emit("step", step=s, epoch=e, batch=b, loss=loss, lr=lr, grad_norm=g,
                      samples_per_s=rate)
        return None

    def _end_epoch(self, epoch: int, train_loss: float, train_acc: float | None) -> str:
        cfg, st = self.cfg, self.state
        val = self.evaluate("val") if self.n_val else {}
        event = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                 "val_loss": val.get("loss"), "val_accuracy": val.get("accuracy"),
                 "confusion": val.get("confusion"), "misclassified": val.get("misclassified"),
                 "memory_mb": fastpath.memory_mb(self.device)}
        watch = val["loss"] if val else train_loss
        st["epoch"] = epoch
        plateau_update(cfg, st, watch)  # divides the rate when the loss stops improving
        status = "completed"
        if watch < st["best"]:
            st["best"], st["bad_epochs"], st["best_epoch"] = watch, 0, epoch
        else:
            st["bad_epochs"] += 1
            if cfg.early_stopping and st["bad_epochs"] >= cfg.early_stopping:
                status = "early_stopped"
        self.history.append({k: v for k, v in event.items() if k not in ("confusion", "misclassified")})
        self.emit("epoch", **event)
        self._sample_text(epoch)
        if self.out_dir is not None and self.main:
            path = ckpt.save_checkpoint(
                self.out_dir / "checkpoints", epoch, self.module, self.optimizer,
                # the last epoch's metrics only (what resume needs for the final report):
                # the whole history is in metrics.jsonl, and pickling it each epoch grew
                # with the run (quadratic over many short epochs)
                {**st, "history": self.history[-1:]},
                self.cfg.to_dict(), cfg.keep_checkpoints)
            self.last_checkpoint = str(path)
            self.emit("checkpoint", epoch=epoch, path=str(path))
        return status

    # ------------------------------------------------------------------ instrumentation
    def _visualize(self, step: int) -> None:
        if not self.main:
            return
        version, node = self.control.probe()
        if version != self._probe_version:
            self._probe_version, self.probe_node = version, node or self.probe_node
        if self.probe_node:
            got = ins.probe(self.module, self.probe_node, self.probe_args)
            if got is not None:
                self.emit("feature_maps", step=step, node=self.probe_node, maps=got["maps"])
                self.emit("histograms", step=step, node=self.probe_node, weights=got["weights"],
                          activations=got["activations"])
        if self.filter_node:
            self.emit("filters", step=step, node=self.filter_node,
                      weights=ins.filters(self.module, self.filter_node))

    def _sample_text(self, epoch: int) -> None:
        ds = self.dataset
        if not self.main or not (ds.vocab and self.cfg.sample_length and self.acc and not self.acc["binary"]
                and len(self.sig.inputs) == 1
                and self.doc.nodes[self.sig.inputs[0]].type == "TokenInput"):
            return
        head_x, head_y = self.feed.head("train", 1)
        context = head_x[0][0]
        targets = tuple(head_y)
        text = ins.sample_text(self.module, self.acc["key"], context, targets, ds.vocab,
                               self.cfg.sample_length, self.cfg.temperature,
                               self.cfg.seed * 7919 + epoch)
        self.emit("sample_text", epoch=epoch, text=text)

    # ------------------------------------------------------------------ state
    def _final(self) -> dict:
        last = self.history[-1] if self.history else {}
        out = {"train_loss": last.get("train_loss"), "train_accuracy": last.get("train_accuracy"),
               "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
               "epochs": self.state["epoch"] if hasattr(self, "state") else 0,
               "steps": self.state["step"] if hasattr(self, "state") else 0,
               "checkpoint": self.last_checkpoint}
        if hasattr(self, "device"):
            out["device"] = fastpath.describe(self.device)
            out["memory_mb"] = fastpath.memory_mb(self.device)
        if getattr(self, "feed", None) is not None and self.feed.size("test") and self.module is not None:
            test = self.evaluate("test")
            out["test_loss"], out["test_accuracy"] = test["loss"], test["accuracy"]
        return out
