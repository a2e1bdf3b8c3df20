"""``train.py``: the graph's training configuration as a standalone script.

It imports model.py from its own directory, trains on synthetic data (or arrays from an
.npz file named after the input and target nodes), and runs unchanged on one machine or
under ``torchrun --nproc_per_node=N`` with DistributedDataParallel (gloo on CPU, nccl on
GPU). Unknown or missing configuration keys fall back to plain defaults.
"""
from __future__ import annotations

import json

TEMPLATE = r'''"""Train {cls} as configured in Netbuilder (generated; standalone).

    python train.py                                   # one process
    torchrun --nproc_per_node=2 train.py              # DistributedDataParallel
    python train.py --data data.npz --epochs 5        # your arrays: {names}

The batch size is the global batch: each of N processes takes batch_size / N samples.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from model import INPUTS, LOSSES, TARGETS, TRAINING, {cls}

CONFIG = dict(TRAINING)


def cfg(*keys, default=None):
    """The first configured value among ``keys`` (the Netbuilder training dict)."""
    for k in keys:
        node = CONFIG
        for part in k.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return node
    return default


class Objective(nn.Module):
    """DDP needs the loss computed inside forward: wrap the model's compute_losses."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *batch):
        return self.model.compute_losses(*batch)


def synthetic_data(n, seed):
    gen = torch.Generator().manual_seed(seed)
    tensors = []
    for spec in list(INPUTS.values()) + list(TARGETS.values()):
        shape = [n] + list(spec["shape"])
        if spec["dtype"] == "int64":
            tensors.append(torch.randint(0, spec["high"], shape, generator=gen))
        else:
            tensors.append(torch.randn(shape, generator=gen))
    return TensorDataset(*tensors)


def npz_data(path):
    arrays = np.load(path, allow_pickle=False)
    names = list(INPUTS) + list(TARGETS)
    missing = [n for n in names if n not in arrays.files]
    if missing:
        raise SystemExit(f"{{path}}: missing arrays {{missing}} (expected {{names}})")
    tensors = []
    for n in names:
        spec = {{**INPUTS, **TARGETS}}[n]
        dtype = torch.long if spec["dtype"] == "int64" else torch.float32
        tensors.append(torch.as_tensor(arrays[n]).to(dtype))
    return TensorDataset(*tensors)


def make_optimizer(params):
    name = str(cfg("optimizer.name", "optimizer", default="adam")).lower()
    lr = float(cfg("optimizer.lr", "lr", "learning_rate", default=1e-3))
    wd = float(cfg("optimizer.weight_decay", "weight_decay", default=0.0))
    momentum = float(cfg("optimizer.momentum", "momentum", default=0.9))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help=".npz file with arrays named {names}")
    ap.add_argument("--epochs", type=int, default=int(cfg("epochs", default=10)))
    ap.add_argument("--batch-size", type=int, default=int(cfg("batch_size", default=32)))
    ap.add_argument("--samples", type=int, default=512, help="synthetic samples when no --data")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all)")
    ap.add_argument("--seed", type=int, default=int(cfg("seed", default=0)))
    ap.add_argument("--out", default="trained.safetensors")
    args = ap.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank, world = 0, 1
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)

    model = {cls}()
    weights = Path(__file__).with_name("weights.safetensors")
    if weights.exists():  # start from the exported weights (same start on every rank)
        from safetensors.torch import load_file
        model.load_state_dict(load_file(str(weights)))
    model.to(device)
    objective = Objective(model)
    if distributed:
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters={unused})

    data = npz_data(args.data) if args.data else synthetic_data(args.samples, args.seed)
    per_rank = max(1, args.batch_size // world)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True,
                                 seed=args.seed) if distributed else None
    loader = DataLoader(data, batch_size=per_rank, shuffle=sampler is None, sampler=sampler,
                        drop_last=True)
    optimizer = make_optimizer(objective.parameters())
    clip = cfg("grad_clip", "clip_grad_norm", "gradient_clipping.max_norm", default=None)

    step = 0
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            batch = [t.to(device) for t in batch]
            out = objective(*batch)
            loss = out["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(objective.parameters(), float(clip))
            optimizer.step()
            total += float(loss.detach())
            count += 1
            step += 1
            if rank == 0 and step % 10 == 1:
                print(f"epoch {{epoch + 1}} step {{step}} loss {{float(loss.detach()):.6f}}", flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        if rank == 0:
            print(f"epoch {{epoch + 1}}: mean loss {{total / max(count, 1):.6f}}", flush=True)
        if args.max_steps and step >= args.max_steps:
            break

    if rank == 0:
        from safetensors.torch import save_file
        state = {{k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}}
        save_file(state, args.out)
        print(f"saved {{args.out}} after {{step}} steps on {{world}} process(es)", flush=True)
    if distributed:
        dist.barrier()  # teardown without it aborted runs (see Netbuilder's platform notes)
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''


def generate_train_script(p) -> str:
    """The text of train.py for a prepared export (see core.Prepared)."""
    train_layers = {n.target for n in p.train.graph.nodes if n.op == "call_module"}
    # layers with parameters that the objective does not use (predict-only branches)
    unused = any(
        any(True for _ in getattr(p.train, nid).parameters()) is False and False
        for nid in train_layers)
    predict_layers = {n.target for n in p.predict.graph.nodes if n.op == "call_module"}
    unused = bool(predict_layers - train_layers) or unused
    names = json.dumps(list(p.sig.inputs) + list(p.sig.targets))
    return TEMPLATE.format(cls=p.class_name, names=names.replace('"', "'"), unused=unused)
