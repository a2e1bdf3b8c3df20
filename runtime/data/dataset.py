"""The in-memory dataset every loader returns, its split, and the error for bad data.

A :class:`Dataset` holds numpy arrays, one per graph input and one per graph target, in
the order the compiler's signature lists them. Shapes are per sample after the batch
axis: digits gives inputs ``[(N, 1, 8, 8)]`` and targets ``[(N,)]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


class DataError(ValueError):
    """Bad or unusable data; the message names the file and the record where known."""

    def __init__(self, message: str, file: str | None = None, record: int | None = None):
        self.file, self.record = file, record
        where = ""
        if file is not None:
            where = f"{file}: " if record is None else f"{file}, record {record}: "
        super().__init__(where + message)


@dataclass
class Dataset:
    name: str
    inputs: list[np.ndarray]  # one array per input node, (N, ...)
    targets: list[np.ndarray]  # one array per target node, (N, ...)
    task: str = "classification"  # classification | regression | sequence
    num_classes: int | None = None
    class_names: list[str] | None = None
    vocab: list[str] | None = None  # text data: token id -> character
    ordered: bool = False  # split contiguously (overlapping text windows must not leak)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs[0]) if self.inputs else 0

    def subset(self, index: np.ndarray) -> "Dataset":
        """The samples at ``index``; ``meta["index"]`` keeps their positions in the original
        dataset (misclassified samples are reported by that position)."""
        index = np.asarray(index)
        base = self.meta.get("index")
        original = base[index] if base is not None else index
        return replace(self, inputs=[_take(a, index) for a in self.inputs],
                       targets=[_take(a, index) for a in self.targets],
                       meta={**self.meta, "index": original})

    @property
    def streamed(self) -> bool:
        """Whether inputs are read from disk a batch at a time (runtime.data.lazy)."""
        return any(not isinstance(a, np.ndarray) for a in self.inputs)

    def sample_shapes(self) -> tuple[list[tuple], list[tuple]]:
        return [a.shape[1:] for a in self.inputs], [a.shape[1:] for a in self.targets]


def _take(a, index):
    return a.take(index) if hasattr(a, "materialize") else a[index]


def split(ds: Dataset, val: float, test: float = 0.0, seed: int = 0
          ) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """Deterministic train/validation/test split (same seed, same split)."""
    n = len(ds)
    if not 0.0 <= val < 1.0 or not 0.0 <= test < 1.0 or val + test >= 1.0:
        raise DataError(f"validation ({val}) and test ({test}) fractions must be in [0, 1) "
                        "and leave some training data")
    order = np.arange(n) if ds.ordered else np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(n * val)), int(round(n * test))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"dataset {ds.name} has {n} samples: too few to split")
    parts = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    train, v, t = (ds.subset(np.sort(p)) if len(p) else None for p in parts)
    return train, v, t


def check_finite(ds: Dataset, file: str | None = None, inputs_file: str | None = None) -> None:
    """Reject NaN/inf values, naming the first bad record and the file that holds it
    (``inputs_file`` for the inputs when they come from another file than the labels)."""
    for arrays, where in ((ds.inputs, inputs_file or file), (ds.targets, file)):
        for a in arrays:
            if np.issubdtype(a.dtype, np.floating):
                bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
                if bad.any():
                    what = "inputs" if arrays is ds.inputs else "labels"
                    raise DataError(f"{what} contain NaN or infinite values", where or ds.name,
                                    int(np.argmax(bad)))
