"""Data files of the real formats and shapes, generated for tests (nothing downloaded):
MNIST IDX pairs and CIFAR-10 binary batches with a learnable class signal."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + \
        arr.astype(np.uint8).tobytes()


def digit_images(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size) uint8 images whose class (0-9) is a bright bar at a class-specific
    place, plus noise; and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    imgs = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = 3 + (k // 5) * 12, 3 + (k % 5) * 4
        imgs[i, r:r + 10, c:c + 3] = 250
    return imgs, labels.astype(np.uint8)


def write_idx_pair(folder: Path, n: int = 600, seed: int = 0, prefix: str = "train"):
    folder.mkdir(parents=True, exist_ok=True)
    imgs, labels = digit_images(n, seed)
    a, b = folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"
    a.write_bytes(idx_bytes(imgs))
    b.write_bytes(idx_bytes(labels))
    return a, b


def write_cifar(folder: Path, n=(500,), seed: int = 0) -> Path:
    """data_batch_1.bin ... with n[i] records each: 1 label byte + 3x32x32 pixel bytes; the
    class shows as a colour cast and a bright square at a class-specific place."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for b, count in enumerate(n, start=1):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        px = rng.integers(0, 100, (count, 3, 32, 32)).astype(np.uint8)
        for i, k in enumerate(labels):
            px[i, k % 3] += 80
            r, c = (k // 5) * 16 + 4, (k % 5) * 6 + 1
            px[i, :, r:r + 8, c:c + 5] = 240
        recs = np.concatenate([labels[:, None], px.reshape(count, -1)], axis=1)
        (folder / f"data_batch_{b}.bin").write_bytes(recs.tobytes())
    return folder
