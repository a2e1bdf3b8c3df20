"""Datasets: built-in synthetic sets, bundled real data, importers, splits, augmentation.

    from runtime.data import load_dataset, split, bind
    ds = load_dataset("spirals", doc)          # a Dataset of numpy arrays
    train, val, test = split(ds, 0.2, 0.0, seed=0)
    xs, ys = bind(train, doc)                  # arrays in the compiled module's order
"""
from __future__ import annotations

from .binding import bind, normalisation
from .dataset import DataError, Dataset, split
from .spec import NAMES, graph_hints, load_dataset, parse_spec

__all__ = ["DataError", "Dataset", "bind", "graph_hints", "load_dataset", "normalisation",
           "parse_spec", "split", "NAMES"]
