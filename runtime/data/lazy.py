"""Arrays whose samples are read on demand: a streamed dataset's inputs.

A :class:`Lazy` looks like a NumPy array of shape (N, ...) to the rest of runtime.data
(``len``, ``shape``, ``dtype``, ``a[index_array]``, ``reshape``, ``astype``) but reads
only the samples asked for: from a memory-mapped file (IDX, CIFAR binaries, .npy) or by
decoding image files. Subsets, reshapes and casts stay lazy; :meth:`Lazy.materialize`
reads everything (the in-memory path for small sets, with the same per-sample values).
Every class is picklable (DataLoader worker processes may be spawned).
"""
from __future__ import annotations

import math

import numpy as np


class Lazy:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)

    # the array protocol the readers and bind() use ---------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, idx: np.ndarray) -> np.ndarray:  # the samples at idx, (len(idx), ...)
        raise NotImplementedError

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.read(np.array([int(key)]))[0]
        if isinstance(key, slice):
            return self.read(np.arange(len(self))[key])
        return self.read(np.asarray(key, np.int64).reshape(-1))

    def take(self, index) -> "Lazy":
        return Subset(self, np.asarray(index, np.int64))

    def reshape(self, shape) -> "Lazy":
        shape = (len(self),) + tuple(shape[1:])
        return self if shape == self.shape else Mapped(self, _Reshape(shape[1:]), shape, self.dtype)

    def astype(self, dtype) -> "Lazy":
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else Mapped(self, _Cast(dtype), self.shape, dtype)

    def map(self, fn, sample_shape, dtype=None) -> "Lazy":
        return Mapped(self, fn, (len(self),) + tuple(sample_shape), dtype or self.dtype)

    def materialize(self, chunk: int = 2048) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        for i in range(0, len(self), chunk):
            out[i:i + chunk] = self.read(np.arange(i, min(len(self), i + chunk)))
        return out


class Subset(Lazy):
    def __init__(self, base: Lazy, index: np.ndarray):
        super().__init__((len(index),) + base.shape[1:], base.dtype)
        self.base, self.index = base, index

    def read(self, idx):
        return self.base.read(self.index[idx])

    def take(self, index):
        return Subset(self.base, self.index[np.asarray(index, np.int64)])


class Mapped(Lazy):
    def __init__(self, base: Lazy, fn, shape, dtype):
        super().__init__(shape, dtype)
        self.base, self.fn = base, fn

    def read(self, idx):
        return self.fn(self.base.read(idx))


class _Reshape:
    def __init__(self, sample_shape):
        self.sample_shape = tuple(sample_shape)

    def __call__(self, a):
        return a.reshape((len(a),) + self.sample_shape)


class _Cast:
    def __init__(self, dtype):
        self.dtype = dtype

    def __call__(self, a):
        return a.astype(self.dtype)


class Pixels(Lazy):
    """Bytes 0..255 in an array-like (a memory map; raw bytes) -> float32 in [0, 1], with
    the sample shape ``shape[1:]`` (IDX images, CIFAR records)."""

    def __init__(self, raw, shape):
        super().__init__(shape, np.float32)
        self.raw = raw

    def read(self, idx):
        order = np.argsort(idx, kind="stable")  # a memory map reads fastest in file order
        out = np.empty((len(idx),) + self.shape[1:], np.float32)
        out[order] = np.asarray(self.raw[idx[order]]).reshape(
            (len(idx),) + self.shape[1:]).astype(np.float32) / 255.0
        return out


class Memmap(Lazy):
    """A memory-mapped .npy (any numeric dtype), cast per batch."""

    def __init__(self, arr: np.ndarray):
        super().__init__(arr.shape, arr.dtype)
        self.arr = arr

    def read(self, idx):
        return np.asarray(self.arr[np.sort(idx)])[np.argsort(np.argsort(idx))]


def is_lazy(a) -> bool:
    return isinstance(a, Lazy)


def channel_stats(a: Lazy, limit: int = 5000, chunk: int = 64):
    """Mean and std per channel (images), per feature (sequences, vectors) of a lazy
    float input, from at most ``limit`` evenly spaced samples (all of a smaller set), read
    in chunks: memory stays bounded. The same axes as runtime.data.normalisation."""
    n = len(a)
    take = np.arange(n) if n <= limit else np.linspace(0, n - 1, limit).astype(np.int64)
    axes = (0,) + tuple(range(2, a.ndim)) if a.ndim >= 4 else (0, 1) if a.ndim == 3 else (0,)
    s = sq = None
    count = 0
    for i in range(0, len(take), chunk):
        x = a.read(take[i:i + chunk])
        part = x.sum(axis=axes, keepdims=True, dtype=np.float64)
        part2 = np.square(x, dtype=np.float64).sum(axis=axes, keepdims=True)
        s, sq = (part, part2) if s is None else (s + part, sq + part2)
        count += x.size // part.size
    mean = s / count
    std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
    return mean[0].astype(np.float32), np.maximum(std[0], 1e-6).astype(np.float32)


class Concat(Lazy):
    """Lazy arrays of equal sample shape, one after another (CIFAR's batch files)."""

    def __init__(self, parts: list[Lazy]):
        super().__init__((sum(len(p) for p in parts),) + parts[0].shape[1:], parts[0].dtype)
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])

    def read(self, idx):
        out = np.empty((len(idx),) + self.shape[1:], self.dtype)
        which = np.searchsorted(self.starts, idx, side="right") - 1
        for k, part in enumerate(self.parts):
            sel = np.flatnonzero(which == k)
            if len(sel):
                out[sel] = part.read(idx[sel] - self.starts[k])
        return out
