"""Data augmentation on image batches (N, C, H, W), in torch, on the training device.

Uses torch's global random generator, so a checkpoint (which saves its state) resumes
with the same augmentations. Names: flip, crop, jitter, affine.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("flip", "crop", "jitter", "affine")


def flip(x: torch.Tensor) -> torch.Tensor:
    """Horizontal flip of half the batch."""
    m = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(m[:, None, None, None], x.flip(-1), x)


def crop(x: torch.Tensor, pad_frac: float = 0.125) -> torch.Tensor:
    """Pad by ~1/8 of the size (reflect) and crop back at a random offset per sample."""
    n, _, h, w = x.shape
    p = max(1, round(min(h, w) * pad_frac))
    xp = F.pad(x, (p, p, p, p), mode="replicate")
    dy = torch.randint(0, 2 * p + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * p + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    b = torch.arange(n, device=x.device)[:, None, None, None]
    c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return xp[b, c, rows, cols]


def jitter(x: torch.Tensor, strength: float = 0.2) -> torch.Tensor:
    """Colour casting: random brightness, contrast and per-channel gain."""
    n, c = x.shape[:2]
    gain = 1 + strength * (2 * torch.rand(n, c, 1, 1, device=x.device) - 1)
    bright = strength * (2 * torch.rand(n, 1, 1, 1, device=x.device) - 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 + strength * (2 * torch.rand(n, 1, 1, 1, device=x.device) - 1)
    return (x - mean) * contrast + mean + bright + (gain - 1) * x


def affine(x: torch.Tensor, degrees: float = 10.0, translate: float = 0.1,
           scale: float = 0.1) -> torch.Tensor:
    """Small random rotation, translation and scaling (geometric distortion)."""
    n = x.shape[0]
    r = lambda: 2 * torch.rand(n, device=x.device) - 1  # noqa: E731
    a = r() * math.radians(degrees)
    s = 1 + r() * scale
    tx, ty = r() * translate * 2, r() * translate * 2
    theta = torch.stack([torch.stack([torch.cos(a) / s, -torch.sin(a) / s, tx], 1),
                         torch.stack([torch.sin(a) / s, torch.cos(a) / s, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def augment(x: torch.Tensor, names) -> torch.Tensor:
    if x.dim() != 4 or not x.is_floating_point():
        return x
    for name in names:
        x = {"flip": flip, "crop": crop, "jitter": jitter, "affine": affine}[name](x)
    return x
