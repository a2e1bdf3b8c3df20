"""Helpers shared by catalog declarations: rank checks with plain-words errors."""
from __future__ import annotations

from .spec import ShapeError

RANK_NAMES = {0: "a scalar", 1: "(D)", 2: "(C, L) or (T, D)", 3: "(C, H, W)"}


def short_repr(value, limit: int = 80) -> str:
    """repr() cut to ``limit`` characters, for quoting a bad value in a message."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return "a number too long to print"
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
