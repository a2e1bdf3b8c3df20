"""Dataset spec strings: one line that names a dataset and its options.

    spirals                      built-in set (options: spirals?n=2000&noise=0.1)
    tagging keywords waves reverse triplets   token tagging, token-sequence classes,
                                 multichannel wave classes, seq2seq reversal, triplets
    digits                       scikit-learn's bundled 8x8 digits (digits?size=32: resized;
                                 digits?channels=3: as RGB)
    text | corpus                the bundled public-domain text (text?steps=64)
    csv:path.csv?label=y&features=a,b&task=regression
    npz:data.npz?x=images&y=labels      npy:x.npy,y.npy
    images:folder?size=28x28&channels=1 one subfolder per class
    idx:train-images.gz,train-labels.gz MNIST IDX files (gzipped or not)
    cifar:folder_or_batch.bin[,...]     CIFAR-10 binary batches
    text:path.txt?steps=64&stride=16    character-level text

Relative paths resolve against ``base_dir`` (the graph file's folder) when given.
Sequence lengths, image sizes and vocabulary limits default to the graph's input nodes.
"""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from . import importers as I
from .dataset import DataError, Dataset, check_finite
from .lazy import is_lazy
from .synthetic import BUILTIN, HINTED

KINDS = ("csv", "npz", "npy", "images", "idx", "cifar", "text")
NAMES = tuple(BUILTIN) + ("digits", "text", "corpus")


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """'csv:a.csv?label=y' -> ('csv', 'a.csv', {'label': 'y'})."""
    spec = spec.strip()
    if not spec:
        raise DataError("empty dataset spec; choose one of " + ", ".join(NAMES) +
                        " or a file (csv:, npz:, npy:, images:, idx:, cifar:, text:)")
    body, _, query = spec.partition("?")
    kind, sep, path = body.partition(":")
    if not sep:
        kind, path = body, ""
    try:
        opts = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise DataError(f"dataset spec {spec!r}: options must look like ?name=value&name=value") from None
    return kind.strip().lower(), path.strip(), opts


def graph_hints(doc) -> dict[str, Any]:
    """Defaults a dataset takes from the graph: sequence length, vocabulary, image size."""
    hints: dict[str, Any] = {}
    if doc is None:
        return hints
    tokens = []
    for n in doc:
        if n.type in ("SequenceInput", "TokenInput") and "steps" not in hints:
            hints["steps"] = n.params["steps"]
            if n.type == "TokenInput":
                hints["vocab_size"] = n.params["vocab_size"]
        if n.type == "TokenInput":
            tokens.append((n.params["steps"], n.params["vocab_size"]))
        if n.type == "SequenceInput" and "features" not in hints:
            hints["features"] = n.params["features"]
        if n.type == "ImageInput" and "image" not in hints:
            hints["image"] = (n.params["channels"], n.params["height"], n.params["width"])
        if (n.type == "Target" and n.params.get("kind") == "class" and "classes" not in hints):
            hints["classes"] = n.params["num_classes"]
    if len(tokens) >= 2:  # sequence to sequence: the second token input is the decoder's
        hints["out_steps"], hints["out_vocab"] = tokens[1]
    return hints


def _num(v: str, key: str, spec: str):
    try:
        f = float(v)
    except ValueError:
        raise DataError(f"dataset spec {spec!r}: option {key}={v!r} must be a number") from None
    return int(f) if f == int(f) and "." not in v else f


# Inputs larger than this (as float32) stream from disk through DataLoader workers; smaller
# ones are read into memory. The spec option stream=on|off|auto overrides the choice.
STREAM_ABOVE = 1 << 30
MAX_SAMPLES = 10_000_000  # samples (or steps, classes, features) of a generated set


def load_dataset(spec: str, doc=None, base_dir: str | Path | None = None, seed: int = 0,
                 progress=None) -> Dataset:
    """Load the dataset that ``spec`` names; DataError with a plain message otherwise.

    File datasets that can be read a sample at a time (image folders, IDX, CIFAR, .npy)
    stay lazy (``ds.streamed``) when larger than STREAM_ABOVE or with ``?stream=on``;
    otherwise they are read into memory. ``progress(message)`` hears about slow steps
    (indexing a large folder)."""
    kind, path, opts = parse_spec(spec)
    stream = opts.pop("stream", "auto").lower()
    workers = opts.pop("workers", None)
    if workers is not None and not (workers.isdigit() and int(workers) <= 64):
        raise DataError(f"dataset spec {spec!r}: workers={workers!r} must be a whole number "
                        "from 0 (read in the training process) to 64")
    if stream not in ("auto", "on", "off"):
        raise DataError(f"dataset spec {spec!r}: stream={stream!r} must be on, off or auto")
    hints = graph_hints(doc)

    def p(s: str) -> Path:
        q = Path(s).expanduser()
        return q if q.is_absolute() or base_dir is None else Path(base_dir) / q

    paths = [p(s) for s in path.split(",") if s.strip()] if path else []
    size = opts.pop("size", None) if kind != "images" else None
    channels = opts.pop("channels", None) if kind != "images" else None
    if size:  # checked before any data is read
        _hw(size, spec)
    if channels:
        _want_channels(channels, spec)
    if kind in BUILTIN:
        kw = {k: _num(v, k, spec) for k, v in opts.items()}
        for option, hint in HINTED.get(kind, {}).items():
            if option not in kw and hint in hints:
                kw[option] = hints[hint]
        for key in ("n", "steps", "classes", "features"):
            if key in kw and not (isinstance(kw[key], int) and 1 <= kw[key] <= MAX_SAMPLES):
                raise DataError(f"dataset spec {spec!r}: {key}={kw[key]!r} must be a whole "
                                f"number from 1 to {MAX_SAMPLES:,}")
        if "n" in kw and kw["n"] * max(1, int(kw.get("steps", 1))) > MAX_SAMPLES * 10:
            raise DataError(f"dataset spec {spec!r}: n={kw['n']:,} samples of "
                            f"{kw.get('steps')} steps are too many for a built-in set")
        try:
            ds = BUILTIN[kind](seed=kw.pop("seed", seed), **kw)
        except TypeError as exc:
            raise DataError(f"dataset spec {spec!r}: {exc}") from None
    elif kind == "digits":
        ds = I.digits()
    elif kind in ("text", "corpus"):
        steps = int(_num(opts.get("steps", str(hints.get("steps", 64))), "steps", spec))
        stride = int(_num(opts["stride"], "stride", spec)) if "stride" in opts else None
        src = paths[0] if paths else I.CORPUS
        ds = I.read_text(src, steps, stride, hints.get("vocab_size"))
        if not paths:
            ds.name = "text"
    elif kind == "csv":
        _need(paths, 1, spec)
        feats = [c.strip() for c in opts["features"].split(",")] if opts.get("features") else None
        ds = I.read_csv(paths[0], opts.get("label"), feats, opts.get("task"))
    elif kind in ("npz", "npy"):
        ds = I.read_numpy(paths, opts.get("x"), opts.get("y"))
    elif kind == "images":
        _need(paths, 1, spec)
        size = opts.get("size")
        img = hints.get("image")
        hw = _hw(size, spec) if size else (tuple(img[1:]) if img else None)
        ch = (_want_channels(opts["channels"], spec) if "channels" in opts
              else (img[0] if img and img[0] in (1, 3) else None))
        ds = I.read_image_folder(paths[0], hw, ch, progress)
    elif kind == "idx":
        _need(paths, 2, spec)
        ds = I.read_mnist(paths[0], paths[1])
    elif kind == "cifar":
        _need(paths, None, spec)
        ds = I.read_cifar(paths)
    else:
        raise DataError(f"unknown dataset {kind!r}; choose one of {', '.join(NAMES)} or a "
                        "file (csv:, npz:, npy:, images:, idx:, cifar:, text:)")
    lazy = any(is_lazy(a) for a in ds.inputs)
    if lazy and (stream == "off" or (stream == "auto" and sum(
            4 * math.prod(a.shape) for a in ds.inputs) <= STREAM_ABOVE)):
        ds.inputs = [a.materialize() if is_lazy(a) else a for a in ds.inputs]
        lazy = False
    if size:
        ds = _resize(ds, _hw(size, spec))
    if channels:
        ds = _channels(ds, channels, spec)
    if not lazy:  # a streamed set is checked a batch at a time, as it is read
        check_finite(ds, ds.meta.get("file"), ds.meta.get("inputs_file"))
    ds.meta["spec"] = spec
    if workers is not None:
        ds.meta["workers"] = int(workers)
    return ds


def _hw(size: str, spec: str) -> tuple[int, int]:
    try:
        hw = tuple(int(v) for v in size.lower().split("x"))
        if len(hw) > 2:
            raise ValueError
        hw = (hw[0], hw[0]) if len(hw) == 1 else (hw[0], hw[1])
    except ValueError:
        raise DataError(f"dataset spec {spec!r}: size={size!r} must look like 32 or 32x32") from None
    if not all(1 <= v <= 8192 for v in hw):
        raise DataError(f"dataset spec {spec!r}: size={size!r}: height and width must be "
                        "between 1 and 8192")
    return hw


def _want_channels(channels: str, spec: str) -> int:
    if channels.strip() not in ("1", "3"):
        raise DataError(f"dataset spec {spec!r}: channels={channels!r} must be 1 (grey) or 3 (RGB)")
    return int(channels)


def _resize_batch(a, hw):
    import torch
    import torch.nn.functional as F

    return F.interpolate(torch.from_numpy(np.ascontiguousarray(a)), size=hw, mode="bilinear",
                         antialias=True, align_corners=False).numpy()


def _channels_batch(a, want):
    if a.shape[1] == 1:
        return np.repeat(a, 3, axis=1)
    return np.tensordot(a, np.array([0.299, 0.587, 0.114], a.dtype),
                        axes=([1], [0]))[:, None].astype(a.dtype)


def _resize(ds: Dataset, hw: tuple[int, int]) -> Dataset:
    """Bilinear (antialiased) resize of image inputs (N, C, H, W), e.g. 8x8 digits for a
    32x32 LeNet-5 (a batch at a time for a streamed set)."""
    xs = []
    for a in ds.inputs:
        if a.ndim == 4 and np.issubdtype(a.dtype, np.floating) and tuple(a.shape[2:]) != hw:
            fn = partial(_resize_batch, hw=hw)
            a = a.map(fn, a.shape[1:2] + hw) if is_lazy(a) else fn(a)
        xs.append(a)
    ds.inputs = xs
    return ds


def _channels(ds: Dataset, channels: str, spec: str) -> Dataset:
    """Image inputs (N, C, H, W) with 1 channel repeated to 3, or 3 turned to grey."""
    want = _want_channels(channels, spec)
    xs = []
    for a in ds.inputs:
        if a.ndim == 4 and np.issubdtype(a.dtype, np.floating) and a.shape[1] in (1, 3) \
                and a.shape[1] != want:
            fn = partial(_channels_batch, want=want)
            a = a.map(fn, (want,) + a.shape[2:]) if is_lazy(a) else fn(a)
        xs.append(a)
    ds.inputs = xs
    return ds


def _need(paths, n, spec):
    if (n is None and not paths) or (n is not None and len(paths) != n):
        want = "a path" if n in (1, None) else f"{n} comma-separated paths"
        raise DataError(f"dataset spec {spec!r} needs {want} after the colon")
