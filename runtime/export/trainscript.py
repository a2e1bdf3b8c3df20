"""``train.py``: the graph's training configuration as a standalone script.

It imports model.py from its own directory, trains on synthetic data (or arrays from an
.npz file named after the input and target nodes), and runs unchanged on one machine or
under ``torchrun --nproc_per_node=N`` with DistributedDataParallel (gloo on CPU, nccl on
GPU). Settings are TrainConfig's (an invalid one falls back to its default); the optimizer
and schedule functions are runtime/training/schedule.py's, copied as written.
"""
from __future__ import annotations

import json
import pprint

TEMPLATE = r'''"""Train {cls} as configured in Netbuilder (generated; standalone).

    python train.py                                   # one process
    torchrun --nproc_per_node=2 train.py              # DistributedDataParallel
    python train.py --data data.npz --epochs 5        # your arrays: {names}

The batch size is the global batch: each of N processes takes batch_size / N samples
of it, so N processes follow the single-process run (up to batch-statistics layers).
Data: --data FILE.npz, or a Netbuilder dataset spec (idx:..., cifar:..., images:...,
csv:..., digits...; needs Netbuilder importable), else data.npz beside this file (written
by the export when the graph names a dataset), else synthetic random data of the right
shapes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import TensorDataset

from model import INPUTS, OUTPUTS, TARGETS, {cls}

# The graph's training configuration, every setting resolved (Netbuilder's defaults filled in).
CONFIG = {config}
cfg = SimpleNamespace(**CONFIG)

{functions}


class Objective(nn.Module):
    """DDP needs the loss computed inside forward: wrap the model's compute_losses."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *batch):
        return self.model.compute_losses(*batch)


def synthetic_arrays(n, seed):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in list(INPUTS.values()) + list(TARGETS.values()):
        shape = [n] + list(spec["shape"])
        if spec["dtype"] == "int64":
            out.append(torch.randint(0, spec["high"], shape, generator=gen))
        else:
            out.append(torch.randn(shape, generator=gen))
    return out


def spec_arrays(spec, seed):
    """A Netbuilder dataset spec, read with Netbuilder's readers (it must be importable):
    its arrays in the order of INPUTS and TARGETS, reshaped to their shapes."""
    try:
        from runtime.data import load_dataset
    except ImportError:
        raise SystemExit(f"--data {{spec}}: a dataset spec needs Netbuilder importable "
                         "(put its folder on PYTHONPATH), or give an .npz file") from None
    ds = load_dataset(spec, seed=seed)
    arrays = ds.inputs + ds.targets
    if len(arrays) != len(INPUTS) + len(TARGETS):
        raise SystemExit(f"--data {{spec}}: {{len(ds.inputs)}} inputs and {{len(ds.targets)}} "
                         f"targets per sample; this model takes {{list(INPUTS)}} and {{list(TARGETS)}}")
    out = []
    for (name, spec_), a in zip(list(INPUTS.items()) + list(TARGETS.items()), arrays):
        a = a.materialize() if hasattr(a, "materialize") else np.asarray(a)
        a = a.reshape([len(a)] + list(spec_["shape"]))
        out.append(torch.as_tensor(a).to(torch.long if spec_["dtype"] == "int64" else torch.float32))
    return out


def npz_arrays(path):
    arrays = np.load(path, allow_pickle=False)
    names = list(INPUTS) + list(TARGETS)
    missing = [n for n in names if n not in arrays.files]
    if missing:
        raise SystemExit(f"{{path}}: missing arrays {{missing}} (expected {{names}})")
    specs = {{**INPUTS, **TARGETS}}
    return [torch.as_tensor(arrays[n]).to(torch.long if specs[n]["dtype"] == "int64"
                                          else torch.float32) for n in names]


def normalise(tensors, n_train):
    """Standardise float inputs with the training split's mean/std (as Netbuilder does)."""
    out = []
    for i, t in enumerate(tensors):
        if i < len(INPUTS) and t.is_floating_point() and getattr(cfg, "normalize", True):
            axes = (0,) + tuple(range(2, t.dim())) if t.dim() >= 4 else (0, 1) if t.dim() == 3 else (0,)
            mean = t[:n_train].mean(dim=axes, keepdim=True)
            std = t[:n_train].std(dim=axes, keepdim=True, unbiased=False).clamp_min(1e-6)
            t = (t - mean) / std
        out.append(t)
    return out


def padding_class(model):
    """The ignore_index of the model's cross-entropy loss, or -1."""
    return next((int(m.ignore_index) for m in model.modules()
                 if type(m).__name__ == "CrossEntropy" and hasattr(m, "ignore_index")), -1)


def accuracy(result, targets, ignore=-1):
    """Share of correct class predictions (argmax over the last axis) when the graph has one
    class target and one prediction with a score per class; otherwise None. Targets equal
    to ``ignore`` (a loss's padding class, when >= 0) are left out."""
    if len(TARGETS) != 1 or len(OUTPUTS) != 1:
        return None
    spec, pred, y = next(iter(TARGETS.values())), result.get(OUTPUTS[0]), targets[0]
    if (spec["dtype"] != "int64" or pred is None or pred.dim() != y.dim() + 1
            or pred.shape[-1] != spec.get("high")):
        return None
    hit = pred.argmax(-1) == y
    if ignore >= 0:
        keep = y != ignore
        return float(hit[keep].float().mean()) if bool(keep.any()) else None
    return float(hit.float().mean())


def finite(value):
    """JSON-safe numbers: NaN and infinities become null."""
    return value if value is None or math.isfinite(value) else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help=".npz file with arrays named {names}, or a Netbuilder "
                    "dataset spec (idx:..., cifar:..., images:..., csv:...)")
    ap.add_argument("--epochs", type=int, default=int(cfg.epochs))
    ap.add_argument("--batch-size", type=int, default=int(cfg.batch_size), help="global batch")
    ap.add_argument("--samples", type=int, default=512, help="synthetic samples when no data")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all)")
    ap.add_argument("--seed", type=int, default=int(cfg.seed))
    ap.add_argument("--out", default="trained.safetensors")
    ap.add_argument("--loss-log", help="write 'step loss' lines (the global batch's loss)")
    ap.add_argument("--metrics", help="write one JSON line of metrics per epoch")
    args = ap.parse_args(argv)

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    if torch.cuda.is_available() and getattr(cfg, "device", "auto") in ("auto", "cuda"):
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    if getattr(cfg, "threads", 0):
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(args.seed)

    model = {cls}()
    weights = Path(__file__).with_name("weights.safetensors")
    if weights.exists():  # start from the exported weights: the same start on every rank
        from safetensors.torch import load_file
        model.load_state_dict(load_file(str(weights)))
    for name, p in model.named_parameters():  # frozen nodes do not train
        if name.split(".")[0] in set(getattr(cfg, "frozen", []) or []):
            p.requires_grad_(False)
    model.to(device)
    objective = Objective(model)
    if distributed:
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None)

    data_file = args.data or (Path(__file__).with_name("data.npz")
                              if Path(__file__).with_name("data.npz").exists() else None)
    if args.data and not str(args.data).endswith(".npz"):
        tensors = spec_arrays(args.data, args.seed)
    else:
        tensors = npz_arrays(data_file) if data_file else synthetic_arrays(args.samples, args.seed)
    n = len(tensors[0])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    tensors = [t[perm] for t in tensors]
    n_val = int(n * float(getattr(cfg, "val_split", 0.0) or 0.0))
    tensors = normalise(tensors, n - n_val)
    train_set = TensorDataset(*[t[: n - n_val] for t in tensors])
    val_set = TensorDataset(*[t[n - n_val:] for t in tensors]) if n_val else None
    # Deterministic sharding: every epoch one global permutation (seed + epoch); each
    # global batch of batch_size samples is cut into N equal shards, rank r takes shard r.
    # DDP averages the shards' gradients, so N processes follow the same trajectory as one
    # process with the same global batch (layers with batch statistics aside).
    per_rank = max(1, args.batch_size // world)
    global_batch = per_rank * world
    if len(train_set) < global_batch:
        raise SystemExit(f"{{len(train_set)}} training samples are fewer than one global batch "
                         f"({{global_batch}}); use a smaller --batch-size")

    def batches(epoch):
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(
            args.seed + epoch))
        for b in range(len(train_set) // global_batch):
            idx = order[b * global_batch + rank * per_rank: b * global_batch + (rank + 1) * per_rank]
            yield [t[idx] for t in train_set.tensors]

    named = [(k, p) for k, p in objective.named_parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg, [
        {{"params": [p for k, p in named if p.dim() >= 2], "weight_decay": float(cfg.weight_decay)}},
        {{"params": [p for k, p in named if p.dim() < 2], "weight_decay": 0.0}}])
    steps_per_epoch = max(1, len(train_set) // global_batch)
    log = open(args.loss_log, "w") if args.loss_log and rank == 0 else None
    metrics = open(args.metrics, "w", encoding="utf-8") if args.metrics and rank == 0 else None
    final = {{"train_loss": None, "val_loss": None, "val_accuracy": None}}
    total = steps_per_epoch * args.epochs
    plateau = {{"plateau_best": math.inf, "plateau_bad": 0, "plateau_scale": 1.0}}

    step = 0
    for epoch in range(args.epochs):
        model.train()
        total_loss, count = 0.0, 0
        for batch in batches(epoch):
            lr = get_lr(cfg, step, steps_per_epoch, total) * plateau["plateau_scale"]
            for g in optimizer.param_groups:
                g["lr"] = lr
            batch = [t.to(device) for t in batch]
            loss = objective(*batch)["loss"]
            if float(getattr(cfg, "l1", 0) or 0) > 0:  # L1 penalty on weights (not biases)
                loss = loss + float(cfg.l1) * sum(p.abs().sum() for k, p in named if p.dim() >= 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # the same order as Netbuilder's trainer: by norm first (the norm of the whole
            # gradient, before any clipping), then element-wise by value
            if float(getattr(cfg, "clip_norm", 0) or 0) > 0:
                nn.utils.clip_grad_norm_(objective.parameters(), float(cfg.clip_norm))
            if float(getattr(cfg, "clip_value", 0) or 0) > 0:
                nn.utils.clip_grad_value_(objective.parameters(), float(cfg.clip_value))
            optimizer.step()
            step_loss = loss.detach()
            if distributed:  # the global batch's loss: the mean of the shards' losses
                dist.all_reduce(step_loss)
                step_loss = step_loss / world
            if log is not None:
                log.write(f"{{step}} {{float(step_loss):.9g}}\n")
            total_loss += float(step_loss)
            count += 1
            step += 1
            if rank == 0 and step % 10 == 1:
                print(f"epoch {{epoch + 1}} step {{step}} loss {{float(step_loss):.6f}} lr {{lr:.3g}}",
                      flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        watch = total_loss / max(count, 1)
        row = {{"epoch": epoch + 1, "train_loss": finite(watch), "val_loss": None,
                "val_accuracy": None}}
        if val_set is not None and rank == 0:
            model.eval()
            with torch.no_grad():
                vb = [t.to(device) for t in val_set.tensors]
                result = model.compute_losses(*vb)
                watch = float(result["loss"])
                row["val_loss"] = finite(watch)
                row["val_accuracy"] = accuracy(result, vb[len(INPUTS):], padding_class(model))
            print(f"epoch {{epoch + 1}}: train loss {{total_loss / max(count, 1):.6f}} "
                  f"val loss {{watch:.6f}}", flush=True)
        elif rank == 0:
            print(f"epoch {{epoch + 1}}: train loss {{watch:.6f}}", flush=True)
        final.update({{k: v for k, v in row.items() if k != "epoch"}}, epochs=epoch + 1)
        if metrics is not None:
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
        plateau_update(cfg, plateau, watch)
        if args.max_steps and step >= args.max_steps:
            break

    if log is not None:
        log.close()
    if metrics is not None:
        metrics.close()
    if rank == 0:
        from safetensors.torch import save_file
        state = {{k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}}
        save_file(state, args.out)
        print(f"saved {{args.out}} after {{step}} steps on {{world}} process(es)", flush=True)
        # the last line: the final metrics as one JSON object (as `netbuilder train` prints)
        final.update({{"status": "completed", "steps": step, "processes": world,
                      "weights": str(Path(args.out).resolve())}})
        print(json.dumps(final), flush=True)
    if distributed:
        dist.barrier()  # without it, gloo's teardown aborted 3 runs in 16
        dist.destroy_process_group()
        # gloo's threads could still abort the process in C++ teardown at exit ("terminate
        # called without an active exception", 2 runs in 12 on a loaded 2-core machine);
        # everything is saved and flushed, so leave without running those destructors.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
'''

def resolved_config(training: dict) -> tuple[dict, str]:
    """(every setting, the optimizer and schedule functions' source). The settings are
    TrainConfig's (its defaults filled in; an invalid setting falls back to its default);
    the functions are runtime/training/schedule.py's, copied as written."""
    import inspect
    from dataclasses import fields

    from ..training import schedule
    from ..training.config import ConfigError, TrainConfig

    try:
        cfg = TrainConfig.from_dict(training).to_dict()
    except (ConfigError, ValueError, TypeError):  # keep the script usable: defaults
        cfg = TrainConfig().to_dict()
        known = {f.name for f in fields(TrainConfig)}
        for k, v in (training or {}).items():
            try:
                cfg[k] = TrainConfig.from_dict({k: v}).to_dict()[k] if k in known else cfg.get(k)
            except (ConfigError, ValueError, TypeError):
                pass
    return cfg, "\n\n".join(inspect.getsource(f).strip() for f in schedule.FUNCTIONS)


def generate_train_script(p) -> str:
    """The text of train.py for a prepared export (see core.Prepared)."""
    cfg, functions = resolved_config(p.doc.training)
    cfg = {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    names = json.dumps(list(p.sig.inputs) + list(p.sig.targets)).replace('"', "'")
    text = TEMPLATE.format(cls=p.class_name, names=names, config=pprint.pformat(cfg, width=92),
                           functions=functions)
    compile(text, "train.py", "exec")
    return text


MAX_DATA_BYTES = 64 << 20


def dataset_arrays(doc) -> tuple[dict | None, str]:
    """The graph's configured dataset as arrays named after its input and target nodes
    (for data.npz beside train.py), or None and why not."""
    spec = (doc.training or {}).get("dataset")
    if not spec:
        return None, "no dataset configured: train.py uses synthetic data or --data FILE.npz"
    try:
        from ..compiler import signature
        from ..data import bind, load_dataset

        ds = load_dataset(spec, doc)
        xs, ys = bind(ds, doc)
    except Exception as exc:  # a file dataset that moved, etc.: the script still works
        return None, f"dataset {spec!r} not bundled ({str(exc).splitlines()[0][:200]})"
    sig = signature(doc)
    arrays = dict(zip(sig.inputs, xs)) | dict(zip(sig.targets, ys))
    size = sum(a.nbytes for a in arrays.values())
    if size > MAX_DATA_BYTES:
        return None, f"dataset {spec!r} is {size >> 20} MB: not bundled (pass --data FILE.npz)"
    return arrays, f"dataset {spec!r} bundled as data.npz ({len(next(iter(arrays.values())))} samples)"
