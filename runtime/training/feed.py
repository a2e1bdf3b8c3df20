"""Batches for the Trainer: from tensors held on the device, or streamed from disk.

Both feeds walk the same batches: one permutation of the training split per epoch
(``torch.randperm`` seeded with ``seed * 1_000_003 + epoch``), cut into global batches of
``batch_size``; under DDP each process takes its part (distributed.Group.shard). So the
same seed gives the same batches in memory and streamed.

- :class:`MemoryFeed` indexes tensors already on the device (small sets: no copies).
- :class:`StreamFeed` reads lazy arrays (runtime.data.lazy) through a torch DataLoader:
  worker processes read, decode and normalise whole batches (the sampler hands each
  worker a batch's indices), pinned memory and non-blocking copies to a GPU. Memory stays
  bounded by the workers' prefetched batches.
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import torch

PARTS = ("train", "val", "test")


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


class MemoryFeed:
    def __init__(self, parts: dict, device: torch.device):
        self.parts, self.device = parts, device  # part -> (list of x tensors, list of y tensors)

    def size(self, part: str) -> int:
        xs = self.parts.get(part, ([], []))[0]
        return len(xs[0]) if xs else 0

    def train_batches(self, epoch, batch_size, n_batches, seed, group) -> Iterator:
        xs, ys = self.parts["train"]
        perm = epoch_order(self.size("train"), seed, epoch).to(self.device)
        for b in range(n_batches):
            idx, share = group.shard(perm[b * batch_size:(b + 1) * batch_size])
            yield [t[idx] for t in xs], [t[idx] for t in ys], share

    def eval_batches(self, part, batch_size) -> Iterator:
        xs, ys = self.parts[part]
        for i in range(0, self.size(part), batch_size):
            yield [t[i:i + batch_size] for t in xs], [t[i:i + batch_size] for t in ys]

    def head(self, part, k):
        xs, ys = self.parts[part]
        return [t[:k] for t in xs], [t[:k] for t in ys]

    def close(self):
        pass


class _Batches(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``self[index_array]`` reads those
    samples (in a worker), normalises the float inputs and returns numpy arrays."""

    def __init__(self, xs, ys, stats):
        self.xs, self.ys, self.stats = xs, ys, stats

    def __len__(self):
        return len(self.ys[0]) if self.ys else len(self.xs[0])

    def __getitem__(self, idx):
        idx = np.asarray(idx, np.int64)
        out = []
        for a, s in zip(self.xs, self.stats):
            x = a[idx]
            if s is not None:
                x = (x - s[0]) / s[1]
            if np.issubdtype(x.dtype, np.floating):
                bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
                if bad.any():
                    from ..data import DataError

                    raise DataError(f"sample {int(idx[np.argmax(bad)])} contains NaN or "
                                    "infinite values")
            out.append(np.ascontiguousarray(x))
        out += [np.ascontiguousarray(y[idx]) for y in self.ys]
        return out


class _Order(torch.utils.data.Sampler):
    """The index arrays of one epoch's batches (iterated in the main process)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class StreamFeed:
    def __init__(self, parts: dict, stats, device: torch.device, workers: int | None = None):
        """``parts``: part -> (list of input arrays, lazy or not; list of target arrays)."""
        self.device = device
        self.sets = {k: _Batches(xs, ys, stats) for k, (xs, ys) in parts.items() if xs}
        self.n_in = {k: len(xs) for k, (xs, ys) in parts.items()}
        self.workers = default_workers() if workers is None else workers
        self.pin = device.type == "cuda"

    def size(self, part: str) -> int:
        return len(self.sets[part]) if part in self.sets else 0

    def _loader(self, part, batches):
        return torch.utils.data.DataLoader(
            self.sets[part], sampler=_Order(batches), batch_size=None,
            num_workers=self.workers, pin_memory=self.pin,
            prefetch_factor=2 if self.workers else None,
            persistent_workers=False)

    def _to_device(self, arrays, part):
        ts = [t.to(self.device, non_blocking=True) for t in arrays]
        k = self.n_in[part]
        return ts[:k], ts[k:]

    def train_batches(self, epoch, batch_size, n_batches, seed, group) -> Iterator:
        perm = epoch_order(self.size("train"), seed, epoch)
        parts, shares = [], []
        for b in range(n_batches):
            idx, share = group.shard(perm[b * batch_size:(b + 1) * batch_size])
            parts.append(idx.numpy())
            shares.append(share)
        for arrays, share in zip(self._loader("train", parts), shares):
            xs, ys = self._to_device(arrays, "train")
            yield xs, ys, share

    def eval_batches(self, part, batch_size) -> Iterator:
        n = self.size(part)
        batches = [np.arange(i, min(n, i + batch_size)) for i in range(0, n, batch_size)]
        for arrays in self._loader(part, batches):
            yield self._to_device(arrays, part)

    def head(self, part, k):
        arrays = self.sets[part][np.arange(min(k, self.size(part)))]
        return self._to_device([torch.from_numpy(a) for a in arrays], part)

    def close(self):
        pass
