"""Bounded, preallocated series buffers for live plots (numpy only, no Qt).

A :class:`SeriesBuffer` holds at most ``capacity`` points however long a run lasts.
When it fills up it halves itself by averaging neighbouring pairs and from then on
averages ``stride`` incoming values into one point, doubling the stride each time it fills
again. So a 100,000-step run and a 1,000-step run use the same memory, and the plot always
shows the whole run at a resolution of at least ``capacity / 2`` points.
"""
from __future__ import annotations

import numpy as np


class SeriesBuffer:
    """x/y points appended one at a time into fixed arrays (float64, as pyqtgraph likes)."""

    __slots__ = ("capacity", "x", "y", "n", "stride", "_acc_x", "_acc_y", "_acc_n", "version")

    def __init__(self, capacity: int = 4096):
        if capacity < 4 or capacity % 2:
            raise ValueError("capacity must be an even number >= 4")
        self.capacity = capacity
        self.x = np.zeros(capacity, dtype=np.float64)
        self.y = np.zeros(capacity, dtype=np.float64)
        self.n = 0  # points stored
        self.stride = 1  # raw values averaged into one stored point
        self._acc_x = 0.0
        self._acc_y = 0.0
        self._acc_n = 0
        self.version = 0  # bumped on every change, so a view redraws only when needed

    def append(self, x: float, y: float) -> None:
        if self.stride > 1:
            self._acc_x += x
            self._acc_y += y
            self._acc_n += 1
            if self._acc_n < self.stride:
                return
            x, y = self._acc_x / self._acc_n, self._acc_y / self._acc_n
            self._acc_x = self._acc_y = 0.0
            self._acc_n = 0
        if self.n == self.capacity:
            self._halve()
        self.x[self.n] = x
        self.y[self.n] = y
        self.n += 1
        self.version += 1

    def _halve(self) -> None:
        half = self.capacity // 2
        self.x[:half] = self.x.reshape(half, 2).mean(axis=1)
        self.y[:half] = self.y.reshape(half, 2).mean(axis=1)
        self.n = half
        self.stride *= 2

    def clear(self) -> None:
        self.n = 0
        self.stride = 1
        self._acc_x = self._acc_y = 0.0
        self._acc_n = 0
        self.version += 1

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Views (no copy) of the stored points."""
        return self.x[: self.n], self.y[: self.n]

    def last(self) -> float | None:
        return float(self.y[self.n - 1]) if self.n else None

    def __len__(self) -> int:
        return self.n

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes


class MetricStore:
    """All series of one run, keyed by name ("loss", "lr", "grad/conv1", ...)."""

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self.series: dict[str, SeriesBuffer] = {}
        self.epochs: list[dict] = []  # one row per epoch (few, kept whole for CSV)

    def get(self, name: str) -> SeriesBuffer:
        buf = self.series.get(name)
        if buf is None:
            buf = self.series[name] = SeriesBuffer(self.capacity)
        return buf

    def append(self, name: str, x: float, y: float) -> None:
        self.get(name).append(x, y)

    def clear(self) -> None:
        self.series.clear()
        self.epochs.clear()

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.series.values())

    def to_csv(self) -> str:
        """Per-step series (long format: series, x, y) then the per-epoch table."""
        lines = ["series,step,value"]
        for name, buf in self.series.items():
            xs, ys = buf.data()
            lines.extend(f"{name},{x:.10g},{y:.10g}" for x, y in zip(xs, ys))
        if self.epochs:
            keys = [k for k in self.epochs[0] if not isinstance(self.epochs[0][k], (list, dict))]
            lines.append("")
            lines.append(",".join(keys))
            for row in self.epochs:
                lines.append(",".join("" if row.get(k) is None else f"{row.get(k)}" for k in keys))
        return "\n".join(lines) + "\n"
