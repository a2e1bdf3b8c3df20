"""Map a dataset's arrays onto the graph's input and target nodes, checking shapes.

Arrays pair with the compiled module's inputs and targets in signature order. A
per-sample shape must equal the node's shape, except for harmless reshapes: flattening
for a vector input, adding or dropping axes of size 1. Anything else is an error that
names the dataset, the node and both shapes.
"""
from __future__ import annotations

import math

import numpy as np

from ..catalog import fmt_shape
from ..compiler import signature
from .dataset import DataError, Dataset


def _fit(arr: np.ndarray, expected: tuple, node, ds: Dataset, role: str) -> np.ndarray:
    got = tuple(arr.shape[1:])
    if got == expected:
        return arr
    squeeze = lambda s: tuple(d for d in s if d != 1)  # noqa: E731
    same_numel = math.prod(got) == math.prod(expected)
    if same_numel and (len(expected) == 1 or squeeze(got) == squeeze(expected)):
        return arr.reshape((len(arr),) + expected)
    hint = ""
    if node.type == "ImageInput" and len(got) == 3 and got[0] == expected[0]:
        hint = f" (add ?size={expected[1]}x{expected[2]} to the dataset spec to resize)"
    raise DataError(f"dataset {ds.name} gives {fmt_shape(got)} per sample, {role} node "
                    f"{node.id} expects {fmt_shape(expected)}{hint}")


def bind(ds: Dataset, doc) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Arrays for the module's inputs and targets, with the dtypes the nodes need."""
    sig = signature(doc)
    for role, names, arrays in (("input", sig.inputs, ds.inputs), ("target", sig.targets, ds.targets)):
        if len(names) != len(arrays):
            raise DataError(f"dataset {ds.name} has {len(arrays)} {role}(s) per sample but the "
                            f"graph has {len(names)} {role} node(s)"
                            + (f" ({', '.join(names)})" if names else ""))
    xs = []
    for nid, a in zip(sig.inputs, ds.inputs):
        node = doc.nodes[nid]
        a = _fit(a, tuple(node.spec.source_shape(node.params)), node, ds, "input")
        if node.type == "TokenInput":
            if hasattr(a, "materialize"):  # token ids of a streamed set: small enough
                a = a.materialize()
            if not np.issubdtype(a.dtype, np.integer):
                raise DataError(f"dataset {ds.name} gives real values but token input {nid} "
                                "needs integer token ids")
            if a.size and a.min() < 0:
                raise DataError(f"dataset {ds.name} has a negative token id {int(a.min())} for "
                                f"input node {nid}")
            if a.size and a.max() >= node.params["vocab_size"]:
                raise DataError(f"dataset {ds.name} uses {int(a.max()) + 1} token ids but input "
                                f"node {nid} allows {node.params['vocab_size']} (vocab_size)")
            xs.append(a.astype(np.int64))
        else:
            xs.append(a.astype(np.float32))
    ys = []
    for nid, a in zip(sig.targets, ds.targets):
        node = doc.nodes[nid]
        a = _fit(a, tuple(node.spec.source_shape(node.params)), node, ds, "target")
        if node.type == "Target" and node.params["kind"] == "class":
            if not np.issubdtype(a.dtype, np.integer):
                raise DataError(f"dataset {ds.name} gives real-valued targets but target node "
                                f"{nid} expects class ids (kind=class); set its kind to value")
            k = node.params["num_classes"]
            if a.size and a.min() < 0:
                r = int(np.argmax((a.reshape(len(a), -1) < 0).any(axis=1)))
                where = ds.meta.get("index")
                raise DataError(f"dataset {ds.name} has a negative class label {int(a.min())} "
                                f"for target node {nid} (classes are 0, 1, 2, ...)",
                                ds.meta.get("file"), int(where[r]) if where is not None else r)
            if a.size and a.max() >= k:
                raise DataError(f"dataset {ds.name} has {int(a.max()) + 1} classes but target "
                                f"node {nid} allows {k} (num_classes)")
            ys.append(a.astype(np.int64))
        else:
            ys.append(a.astype(np.float32))
    return xs, ys


def normalisation(xs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Mean and std per feature (vectors, sequences) or per channel (images) of float
    inputs, from the training split; None for token inputs."""
    stats = []
    for a in xs:
        if not np.issubdtype(a.dtype, np.floating):
            stats.append(None)
            continue
        if hasattr(a, "materialize"):  # streamed: from a bounded sample, in chunks
            from .lazy import channel_stats

            stats.append(channel_stats(a))
            continue
        if a.ndim >= 4:  # (N, C, H, W): per channel
            axes = (0,) + tuple(range(2, a.ndim))
        elif a.ndim == 3:  # (N, T, D) sequences: per feature
            axes = (0, 1)
        else:
            axes = (0,)
        mean = a.mean(axis=axes, keepdims=True)
        std = a.std(axis=axes, keepdims=True)
        stats.append((mean[0].astype(np.float32), np.maximum(std[0], 1e-6).astype(np.float32)))
    return stats
