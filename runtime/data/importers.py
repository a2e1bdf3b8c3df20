"""Readers for data files: CSV, NumPy, image folders, MNIST IDX, CIFAR-10 binary, text;
and the bundled sets (scikit-learn's 8x8 digits, the project's small text corpus).

Every reader raises :class:`DataError` naming the file and, where it applies, the record
(0-based sample index; CSV messages also give the line number).
"""
from __future__ import annotations

import csv
import io
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .dataset import DataError, Dataset
from .images import IMAGE_SUFFIXES, read_image
from .lazy import Concat, Lazy, Memmap, Pixels

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "data"
CORPUS = RESOURCES / "corpus.txt"
MAX_FILE_BYTES = 16 << 30  # files read whole (CSV, gzipped IDX...); larger ones are refused


def _read_bytes(path: Path) -> tuple[bytes, str | None]:
    """The file's bytes, gunzipped when it is gzipped. A truncated or corrupt gzip stream
    gives the bytes decompressed up to the damage and a note saying what is wrong (the
    caller names the record where the data ends)."""
    if not path.exists():
        raise DataError("file not found", str(path))
    if path.is_dir():
        raise DataError("is a folder, not a file", str(path))
    if not path.is_file():  # /dev/zero, a pipe...: endless or not data
        raise DataError("is not a regular file (a device or a pipe?)", str(path))
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DataError(f"is {path.stat().st_size / 2**30:.1f} GiB: larger than "
                        f"{MAX_FILE_BYTES >> 30} GiB read whole (unpack a gzipped file so it "
                        "can be memory-mapped, or split it)", str(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", str(path)) from None
    if raw[:2] != b"\x1f\x8b":
        return raw, None
    out = bytearray()
    rest = raw
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for i in range(0, len(rest), 1 << 16):  # in chunks: keep what precedes damage
            try:
                out += d.decompress(rest[i:i + (1 << 16)])
            except zlib.error as exc:
                return bytes(out), (f"corrupt gzip data after {len(out)} uncompressed bytes "
                                    f"({exc})")
            if d.eof:
                break
        if not d.eof:
            return bytes(out), (f"gzip data ends early after {len(out)} uncompressed bytes: "
                                "the file is truncated (an incomplete download?)")
        rest = d.unused_data.lstrip(b"\0")  # another gzip member may follow
    return bytes(out), None


def check_class_labels(y: np.ndarray, file: str | None, what: str = "class label") -> int:
    """Integer class labels must be >= 0; returns the number of classes (max + 1).
    Raises DataError naming ``file`` and the first record with a negative label."""
    if y.size == 0:
        return 0
    flat = y.reshape(len(y), -1) if y.ndim else y.reshape(1, 1)
    bad = (flat < 0).any(axis=1)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataError(f"{what} {int(flat[r][flat[r] < 0][0])} is negative (class labels "
                        "must be 0, 1, 2, ...)", file, r)
    return int(y.max()) + 1


# ---- bundled ------------------------------------------------------------------------
def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8 grey, values 0..16 -> [0, 1]. (1, 8, 8)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits set needs scikit-learn (pip install scikit-learn)") from None
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    return Dataset("digits", [x], [d.target.astype(np.int64)], "classification", 10,
                   [str(i) for i in range(10)])


def _read_utf8(path: Path, encoding: str = "utf-8", hint: str = "", header_lines: int = 0) -> str:
    """The file as text; bytes that are not UTF-8 are an error naming the line (and the
    record: the line's index after ``header_lines`` header lines)."""
    raw, problem = _read_bytes(path)
    if problem:
        raise DataError(problem, str(path))
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        record = line - 1 - header_lines
        raise DataError(f"(line {line}, byte {exc.start}) is not UTF-8 text{hint}", str(path),
                        record if record >= 0 else None) from None


# ---- CSV ----------------------------------------------------------------------------
def read_csv(path: Path, label: str | None = None, features: list[str] | None = None,
             task: str | None = None) -> Dataset:
    """Header row required (UTF-8). ``label``: the label column (default: the last);
    ``features``: feature columns (default: all others). A label column whose values are
    all whole numbers gives classes 0..max; one whose values are all text gives a class
    per distinct text; real numbers (or task=regression) are real targets. Empty label
    cells and columns mixing numbers and text are errors naming the line."""
    if task not in (None, "classification", "regression"):
        raise DataError(f"task={task!r}: expected classification or regression", str(path))
    text = _read_utf8(path, "utf-8-sig", ": save the CSV as UTF-8 (is it a CSV file at all?)",
                      header_lines=1)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, lines = [], []
    try:
        for row in reader:
            if row:  # (blank lines carry no record)
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"(line {reader.line_num}) is not valid CSV: {exc}", str(path),
                        max(0, len(rows) - 1) if rows else None) from None
    if not rows:
        raise DataError("empty CSV file", str(path))
    header = [h.strip() for h in rows[0]]
    label = label or header[-1]
    if label not in header:
        raise DataError(f"no label column {label!r}; columns are {', '.join(header)}", str(path))
    features = features or [h for h in header if h != label]
    missing = [c for c in features if c not in header]
    if missing:
        raise DataError(f"no feature column(s) {', '.join(missing)}; columns are "
                        f"{', '.join(header)}", str(path))
    fi = [header.index(c) for c in features]
    li = header.index(label)
    x = np.zeros((len(rows) - 1, len(fi)), np.float32)
    labels = []
    lines = lines[1:]
    for r, row in enumerate(rows[1:]):
        line = lines[r]
        if len(row) != len(header):
            raise DataError(f"(line {line}) has {len(row)} fields, the header has "
                            f"{len(header)}", str(path), r)
        for j, c in enumerate(fi):
            try:
                x[r, j] = float(row[c])
            except ValueError:
                raise DataError(f"(line {line}) column {header[c]!r}: cannot read "
                                f"{row[c]!r} as a number", str(path), r) from None
        value = row[li].strip()
        if not value:
            raise DataError(f"(line {line}) column {label!r}: the label is empty", str(path), r)
        labels.append(value)
    if not labels:
        raise DataError("has a header but no records", str(path))
    return _labelled(path.stem, x, labels, task, str(path), lines, label)


def _labelled(name, x, labels, task, file, lines=None, column=None) -> Dataset:
    """Classes or real targets from label strings (see read_csv)."""
    def num(s):
        try:
            return float(s)
        except ValueError:
            return None

    where = (lambda i: f"(line {lines[i]}) " if lines else "")  # noqa: E731
    col = f"column {column!r}: " if column else ""
    values = [num(s) for s in labels]
    for i, v in enumerate(values):
        if v is not None and not math.isfinite(v):
            raise DataError(f"{where(i)}{col}label {labels[i]!r} is not a finite number",
                            file, i)
    numeric = [v is not None for v in values]
    if task == "regression" or (task is None and all(numeric)
                                and not all(v == int(v) for v in values)):
        bad = next((i for i, ok in enumerate(numeric) if not ok), None)
        if bad is not None:
            raise DataError(f"{where(bad)}{col}label {labels[bad]!r} is not a number", file, bad)
        y = np.array(values, np.float32)[:, None]
        return Dataset(name, [x], [y], "regression", meta={"file": file})
    if all(numeric):
        bad = next((i for i, v in enumerate(values) if v != int(v)), None)
        if bad is not None:
            raise DataError(f"{where(bad)}{col}label {labels[bad]!r} is not a whole number "
                            "(class labels of a numeric column are 0, 1, 2, ...)", file, bad)
        y = np.array(values, np.float64).astype(np.int64)
        k = check_class_labels(y, file)
        return Dataset(name, [x], [y], "classification", k, meta={"file": file})
    if any(numeric):  # mixed: name the first value of the rarer kind
        text_majority = numeric.count(False) >= numeric.count(True)
        bad = next(i for i, ok in enumerate(numeric) if ok == text_majority)
        kind, other = ("a number", "text") if text_majority else ("text", "numbers")
        raise DataError(f"{where(bad)}{col}label {labels[bad]!r} is {kind} but the other labels "
                        f"are {other}: a label column must be all numbers or all text",
                        file, bad)
    names = sorted(set(labels))
    lookup = {n: i for i, n in enumerate(names)}
    y = np.array([lookup[s] for s in labels], np.int64)
    return Dataset(name, [x], [y], "classification", len(names), names, meta={"file": file})


# ---- NumPy ---------------------------------------------------------------------------
def read_numpy(paths: list[Path], x_key: str | None = None, y_key: str | None = None) -> Dataset:
    """``a.npz`` with arrays x and y (or the keys given), or ``x.npy,y.npy``. Never unpickles."""
    try:
        if len(paths) == 1 and paths[0].suffix == ".npz":
            with np.load(paths[0], allow_pickle=False) as z:
                keys = list(z.keys())
                xk = x_key or next((k for k in ("x", "X", "inputs", "data") if k in keys), None)
                yk = y_key or next((k for k in ("y", "Y", "labels", "targets") if k in keys), None)
                if xk not in keys or yk not in keys:
                    raise DataError(f"needs input and label arrays (x=..&y=..); it has "
                                    f"{', '.join(keys)}", str(paths[0]))
                x, y = z[xk], z[yk]
        elif len(paths) == 2:
            # the inputs memory-mapped: a large .npy is read a batch at a time
            x, y = np.load(paths[0], mmap_mode="r", allow_pickle=False), np.load(
                paths[1], allow_pickle=False)
        else:
            raise DataError("give one .npz file or two .npy files (inputs,labels)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read NumPy data: {exc}", ",".join(map(str, paths))) from None
    label_file = str(paths[1]) if len(paths) == 2 else f"{paths[0]} (array {yk!r})"
    if x.ndim == 0 or y.ndim == 0:
        raise DataError("needs arrays with one row per sample, got a single number",
                        ",".join(map(str, paths)))
    if len(x) != len(y):
        raise DataError(f"{len(x)} inputs but {len(y)} labels", ",".join(map(str, paths)))
    if len(x) == 0:
        raise DataError("holds 0 samples", ",".join(map(str, paths)))
    for arr, what in ((x, "inputs"), (y, "labels")):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise DataError(f"{what} have dtype {arr.dtype}; expected numbers",
                            label_file if what == "labels" else str(paths[0]))
    name = paths[0].stem
    x = (Memmap(x) if isinstance(x, np.memmap) else x).astype(np.float32)
    x_file = str(paths[0]) if len(paths) == 2 else f"{paths[0]} (array {xk!r})"
    if np.issubdtype(y.dtype, np.integer):
        k = check_class_labels(y, label_file)  # names the file and the record
        return Dataset(name, [x], [y.astype(np.int64)], "classification",
                       k, meta={"file": label_file, "inputs_file": x_file})
    return Dataset(name, [x], [y.astype(np.float32)], "regression",
                   meta={"file": label_file, "inputs_file": x_file})


# ---- image folders -------------------------------------------------------------------
def index_image_folder(root: Path, progress=None) -> tuple[list[str], list[str], list[int]]:
    """(class names, image files, class ids) of ``root/<class>/*``; ``progress(message)``
    is called every 10,000 files (indexing a large folder takes a while)."""
    import os

    if not root.is_dir():
        raise DataError("not a folder (expected one subfolder per class)", str(root))
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError("has no class subfolders", str(root))
    files, labels = [], []
    for ci, c in enumerate(classes):
        names = sorted(e.name for e in os.scandir(root / c) if e.is_file())
        for name in names:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                files.append(str(root / c / name))
                labels.append(ci)
                if progress is not None and len(files) % 10_000 == 0:
                    progress(f"indexing {root}: {len(files):,} images ({c})")
    if not files:
        raise DataError("contains no PNG/PGM/PPM images", str(root))
    if progress is not None and len(files) >= 10_000:
        progress(f"indexed {root}: {len(files):,} images in {len(classes)} classes")
    return classes, files, labels


def decode_image(path: str, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """One image file as float32 (C, H, W) in [0, 1], converted to ``channels`` and
    resized to ``size`` when given."""
    import torch
    import torch.nn.functional as F

    img = read_image(path)  # DataError names the file
    if img.shape[2] == 4:
        img = img[..., :3]
    t = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)
    want_c = channels or t.shape[0]
    if t.shape[0] == 1 and want_c == 3:
        t = t.expand(3, -1, -1)
    elif t.shape[0] == 3 and want_c == 1:
        t = (t * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
    if size and tuple(t.shape[1:]) != tuple(size):
        t = F.interpolate(t[None], size=size, mode="bilinear", antialias=True,
                          align_corners=False)[0]
    return np.ascontiguousarray(t.numpy())


class ImageFiles(Lazy):
    """Images decoded on demand (in DataLoader workers when streamed)."""

    def __init__(self, files: list[str], size, channels):
        first = decode_image(files[0], size, channels)
        super().__init__((len(files),) + first.shape, np.float32)
        self.files, self.size, self.channels = files, size, channels

    def read(self, idx):
        images = [decode_image(self.files[i], self.size, self.channels) for i in idx]
        for i, x in zip(idx, images):  # (unreadable files are reported first)
            if x.shape != self.shape[1:]:
                raise DataError(f"image size {x.shape} differs from {self.shape[1:]}; give "
                                "size=HxW to resize", self.files[i])
        return np.stack(images) if images else np.empty((0,) + self.shape[1:], np.float32)


def read_image_folder(root: Path, size: tuple[int, int] | None = None,
                      channels: int | None = None, progress=None) -> Dataset:
    """``root/<class>/*.png|pgm|ppm``: one subfolder per class (sorted names -> ids). Images
    are resized to ``size`` (H, W) and converted to ``channels`` (1 or 3) when given. The
    input is lazy (decoded on demand); load_dataset reads small sets into memory."""
    classes, files, labels = index_image_folder(root, progress)
    return Dataset(root.name, [ImageFiles(files, size, channels)], [np.array(labels, np.int64)],
                   "classification", len(classes), classes, meta={"files": files})


# ---- MNIST IDX ----------------------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, mmap: bool = False) -> np.ndarray:
    """An IDX file's array; with ``mmap`` an uncompressed file is memory-mapped (read on
    demand) instead of read whole."""
    if mmap and path.is_file():
        with open(path, "rb") as f:
            head = f.read(4 + 4 * 255)
        if head[:2] == b"\0\0" and len(head) >= 4 and head[2] in _IDX_TYPES:
            dims, body_at = _idx_header(head, path)
            dtype = np.dtype(_IDX_TYPES[head[2]])
            rec = int(np.prod(dims[1:], dtype=np.int64)) * dtype.itemsize
            size = path.stat().st_size - body_at
            if size >= dims[0] * rec and dims[0] > 0 and rec > 0:
                return np.memmap(path, dtype, "r", offset=body_at, shape=tuple(dims))
    data, problem = _read_bytes(path)
    if len(data) < 4 and problem:
        raise DataError(problem, str(path))
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError("not an IDX file (bad magic number)", str(path))
    dims, body_at = _idx_header(data, path)
    dtype = np.dtype(_IDX_TYPES[data[2]])
    rec = int(np.prod(dims[1:], dtype=np.int64)) * dtype.itemsize
    body = data[body_at:]
    if dims[0] == 0 or rec == 0:
        raise DataError(f"the header says {dims[0]} records of shape {tuple(dims[1:])}: "
                        "no data", str(path))
    if problem or len(body) < dims[0] * rec:
        why = f"{problem}; " if problem else "truncated: "
        raise DataError(f"{why}the header says {dims[0]} records, the data ends inside this "
                        "one", str(path), len(body) // max(rec, 1))
    return np.frombuffer(body, dtype, count=int(np.prod(dims))).reshape(dims)


def _idx_header(data: bytes, path: Path) -> tuple[list[int], int]:
    ndim = data[3]
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DataError("truncated IDX header" if ndim else "IDX file with no dimensions",
                        str(path))
    return [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)], 4 + 4 * ndim


def read_mnist(images: Path, labels: Path) -> Dataset:
    """MNIST-style IDX files. The images stay lazy (memory-mapped when not gzipped, else
    the raw bytes): pixels become floats a batch at a time."""
    x, y = read_idx(images, mmap=True), read_idx(labels)
    if len(x) != len(y):
        raise DataError(f"{len(x)} images but {len(y)} labels in {labels}", str(images))
    if y.ndim != 1:
        raise DataError(f"labels must be one number per record, got shape {y.shape}", str(labels))
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be whole numbers, the file holds {y.dtype}", str(labels))
    check_class_labels(y, str(labels))
    shape = (len(x), 1) + x.shape[1:] if x.ndim == 3 else x.shape
    if x.dtype == np.uint8:
        xs = Pixels(x, shape)
    else:
        xs = (np.asarray(x).astype(np.float32) / 255.0).reshape(shape)
    return Dataset(images.stem.split(".")[0], [xs], [y.astype(np.int64)], "classification",
                   max(int(y.max()) + 1, 10), meta={"file": str(images)})


# ---- CIFAR-10 binary -----------------------------------------------------------------
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


def read_cifar(paths: list[Path]) -> Dataset:
    """CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (3x32x32). The
    pixels stay lazy (memory-mapped when not gzipped)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("data_batch_*.bin")) + sorted(p.glob("test_batch.bin"))
        else:
            files.append(p)
    if not files:
        raise DataError("no CIFAR-10 batch files (data_batch_*.bin)", ",".join(map(str, paths)))
    parts, ys = [], []
    for f in files:
        data = None
        if f.is_file():
            with open(f, "rb") as fh:
                gz = fh.read(2) == b"\x1f\x8b"
            if not gz and f.stat().st_size:
                data = np.memmap(f, np.uint8, "r")
        if data is None:
            raw, problem = _read_bytes(f)
            data = np.frombuffer(raw, np.uint8)
            if problem:
                raise DataError(f"{problem}; the data ends inside this record", str(f),
                                data.size // 3073)
        n, rest = divmod(data.size, 3073)
        if rest:
            raise DataError(f"size {data.size} bytes is not a whole number of 3073-byte "
                            "records; the last record is truncated", str(f), n)
        if n == 0:
            raise DataError("holds no records", str(f))
        recs = data.reshape(n, 3073)
        labels = np.array(recs[:, 0])
        bad = np.flatnonzero(labels > 9)
        if len(bad):
            raise DataError(f"label {labels[bad[0]]} is not a CIFAR-10 class (0-9)", str(f),
                            int(bad[0]))
        ys.append(labels.astype(np.int64))
        parts.append(Pixels(recs[:, 1:], (n, 3, 32, 32)))
    x = parts[0] if len(parts) == 1 else Concat(parts)
    return Dataset("cifar10", [x], [np.concatenate(ys)], "classification", 10, CIFAR_CLASSES,
                   meta={"file": str(files[0])})


# ---- text ----------------------------------------------------------------------------
def read_text(path: Path, steps: int = 64, stride: int | None = None,
              vocab_size: int | None = None) -> Dataset:
    """Character-level next-token data: windows of ``steps`` characters; the target is the
    window shifted by one. The vocabulary is every character of the text, sorted."""
    text = _read_utf8(path)
    return text_dataset(text, path.stem, steps, stride, str(path), vocab_size)


def text_dataset(text: str, name: str, steps: int, stride: int | None, file: str,
                 vocab_size: int | None = None) -> Dataset:
    vocab = sorted(set(text))
    if vocab_size is not None and len(vocab) > vocab_size:
        raise DataError(f"the text has {len(vocab)} distinct characters but the token input "
                        f"allows {vocab_size} (vocab_size)", file)
    if len(text) < steps + 2:
        raise DataError(f"text of {len(text)} characters is shorter than one window of "
                        f"{steps} steps", file)
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = np.array([lookup[c] for c in text], np.int64)
    stride = stride or max(1, steps // 4)
    starts = np.arange(0, len(ids) - steps - 1, stride)
    idx = starts[:, None] + np.arange(steps)[None, :]
    ds = Dataset(name, [ids[idx]], [ids[idx + 1]], "sequence", len(vocab), vocab=vocab,
                 ordered=True, meta={"file": file, "text": text})
    return ds
