"""Helpers shared by catalog declarations: rank checks with plain-words errors."""
from __future__ import annotations

from .spec import ShapeError, short_repr  # noqa: F401 (short_repr: re-exported)

RANK_NAMES = {0: "a scalar", 1: "(D)", 2: "(C, L) or (T, D)", 3: "(C, H, W)"}


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape else "()"


def expect_rank(shape, ranks: tuple[int, ...], what: str = "input") -> None:
    if len(shape) not in ranks:
        want = " or ".join(RANK_NAMES.get(r, f"rank {r}") for r in ranks)
        raise ShapeError(f"{what}: expected {want} per sample, received {fmt_shape(shape)}")


def spatial_ndim(shape, what: str = "input") -> int:
    """1 for (C, L) inputs, 2 for (C, H, W) inputs."""
    expect_rank(shape, (2, 3), what)
    return len(shape) - 1
