"""Datasets: built-in sets, bundled data, importers, bad files named with file and record,
splits, binding onto graph nodes, augmentation. No Qt, no network."""
from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np
import pytest
import torch

from runtime.data import DataError, bind, load_dataset, split
from runtime.data.augment import AUGMENTATIONS, augment
from runtime.data.images import read_image, write_pgm, write_png
from runtime.data.synthetic import BUILTIN
from runtime.graph import GraphDocument
from tests.builders import image_classifier


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_sets_are_deterministic_and_finite(name):
    a, b = load_dataset(name, seed=3), load_dataset(name, seed=3)
    c = load_dataset(name, seed=4)
    assert len(a) > 0 and len(a.inputs) == (2 if name == "reverse" else 1)
    assert len(a.targets) == (0 if name == "triplets" else 1)  # (a triplet loss has no target)
    for x, y in zip(a.inputs + a.targets, b.inputs + b.targets):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.inputs[0], c.inputs[0])
    assert all(np.isfinite(x).all() for x in a.inputs + a.targets if x.dtype.kind == "f")


def test_builtin_semantics():
    xor = load_dataset("xor?noise=0.01")
    x, y = xor.inputs[0], xor.targets[0]
    np.testing.assert_array_equal(y, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int))
    add = load_dataset("adding?steps=12&n=50")
    x, t = add.inputs[0], add.targets[0]
    assert x.shape == (50, 12, 2) and (x[:, :, 1].sum(1) == 2).all()
    np.testing.assert_allclose(t[:, 0], (x[:, :, 0] * x[:, :, 1]).sum(1), rtol=1e-6)
    cp = load_dataset("copy?length=4&symbols=6&n=10")
    x, y = cp.inputs[0], cp.targets[0]
    np.testing.assert_array_equal(y[:, -4:], x[:, :4])
    assert cp.num_classes == 8 and (x == 7).sum(1).tolist() == [1] * 10


@pytest.mark.slow
def test_digits_and_text_are_bundled():
    d = load_dataset("digits")
    assert d.inputs[0].shape == (1797, 1, 8, 8) and d.num_classes == 10
    assert 0 <= d.inputs[0].min() and d.inputs[0].max() <= 1
    t = load_dataset("text?steps=32")
    x, y = t.inputs[0], t.targets[0]
    assert x.shape[1] == 32 and len(t.vocab) == t.num_classes
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # next-character targets
    text = t.meta["text"]
    assert "".join(t.vocab[i] for i in x[0]) == text[:32]


def test_csv_import_and_bad_record(tmp_path):
    p = tmp_path / "flowers.csv"
    p.write_text("a,b,kind\n1.0,2.5,setosa\n0.5,1,virginica\n3,4,setosa\n")
    ds = load_dataset(f"csv:{p}?label=kind")
    assert ds.inputs[0].shape == (3, 2) and ds.targets[0].tolist() == [0, 1, 0]
    assert ds.class_names == ["setosa", "virginica"]
    ds = load_dataset(f"csv:{p}?label=a&features=b", )
    assert ds.task == "regression" and ds.targets[0].shape == (3, 1)
    p.write_text("a,b,y\n1,2,0\n1,oops,1\n")
    with pytest.raises(DataError) as e:
        load_dataset(f"csv:{p}")
    msg = str(e.value)
    assert str(p) in msg and "record 1" in msg and "line 3" in msg and "'oops'" in msg
    with pytest.raises(DataError, match="no label column 'z'"):
        load_dataset(f"csv:{p}?label=z")


def test_numpy_import(tmp_path):
    x, y = np.random.rand(20, 3).astype(np.float32), np.arange(20) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    np.testing.assert_array_equal(ds.inputs[0], x)
    assert ds.num_classes == 4
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y[:10])
    with pytest.raises(DataError, match="20 inputs but 10 labels"):
        load_dataset(f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


def _png_filtered(img: np.ndarray, filt: int) -> bytes:
    """A PNG whose rows all use filter ``filt`` (encoder written from the PNG spec)."""
    h, w, c = img.shape
    raw, prev = b"", np.zeros(w * c, np.int32)
    for row in img.reshape(h, w * c).astype(np.int32):
        out = np.zeros_like(row)
        for x in range(len(row)):
            a = row[x - c] if x >= c else 0
            b, cc = prev[x], (prev[x - c] if x >= c else 0)
            if filt == 0:
                pred = 0
            elif filt == 1:
                pred = a
            elif filt == 2:
                pred = b
            elif filt == 3:
                pred = (a + b) // 2
            else:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            out[x] = (row[x] - pred) & 255
        raw += bytes([filt]) + out.astype(np.uint8).tobytes()
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ctype = {1: 0, 3: 2}[c]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("filt", range(5))
@pytest.mark.parametrize("channels", [1, 3])
def test_png_decoder_every_filter(tmp_path, filt, channels):
    img = np.random.default_rng(filt).integers(0, 256, (7, 9, channels)).astype(np.uint8)
    p = tmp_path / "a.png"
    p.write_bytes(_png_filtered(img, filt))
    np.testing.assert_array_equal(read_image(p), img)


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            write_png(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (10, 10, 3)))
            write_pgm(tmp_path / cls / f"g{i}.pgm", rng.integers(0, 256, (10, 10)))
    ds = load_dataset(f"images:{tmp_path}?size=8x8&channels=3")
    assert ds.inputs[0].shape == (12, 3, 8, 8) and ds.class_names == ["cat", "dog"]
    assert ds.targets[0].tolist() == [0] * 6 + [1] * 6
    # the graph's image input gives the default size and channels
    ds = load_dataset(f"images:{tmp_path}", image_classifier(1, 6, 6, 2))
    assert ds.inputs[0].shape == (12, 1, 6, 6)
    (tmp_path / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(f"images:{tmp_path}")


def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


def test_mnist_idx_gz_and_plain(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    (tmp_path / "i.gz").write_bytes(gzip.compress(_idx(imgs)))
    (tmp_path / "l").write_bytes(_idx(labels))
    ds = load_dataset(f"idx:{tmp_path / 'i.gz'},{tmp_path / 'l'}")
    assert ds.inputs[0].shape == (5, 1, 28, 28) and ds.targets[0].tolist() == [3, 1, 4, 1, 5]
    np.testing.assert_allclose(ds.inputs[0][2, 0], imgs[2] / 255.0, rtol=1e-6)
    (tmp_path / "cut").write_bytes(_idx(imgs)[:-1000])
    with pytest.raises(DataError) as e:
        load_dataset(f"idx:{tmp_path / 'cut'},{tmp_path / 'l'}")
    assert "cut" in str(e.value) and "record 3" in str(e.value)


def test_cifar_binary(tmp_path):
    rng = np.random.default_rng(0)
    recs = rng.integers(0, 256, (4, 3073)).astype(np.uint8)
    recs[:, 0] = [0, 9, 2, 3]
    (tmp_path / "data_batch_1.bin").write_bytes(recs.tobytes())
    ds = load_dataset(f"cifar:{tmp_path}")
    assert ds.inputs[0].shape == (4, 3, 32, 32) and ds.targets[0].tolist() == [0, 9, 2, 3]
    np.testing.assert_allclose(ds.inputs[0][1].reshape(-1), recs[1, 1:] / 255.0, rtol=1e-6)
    (tmp_path / "cut.bin").write_bytes(recs.tobytes()[:-10])
    with pytest.raises(DataError, match=r"cut.bin, record 3"):
        load_dataset(f"cifar:{tmp_path / 'cut.bin'}")
    recs[2, 0] = 12
    (tmp_path / "badlabel.bin").write_bytes(recs.tobytes())
    with pytest.raises(DataError, match=r"badlabel.bin, record 2: label 12"):
        load_dataset(f"cifar:{tmp_path / 'badlabel.bin'}")


def test_text_bad_utf8_names_line(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"hello\nworld\n\xff\xfe bad\n")
    with pytest.raises(DataError) as e:
        load_dataset(f"text:{p}?steps=4")
    assert str(p) in str(e.value) and "line 3" in str(e.value)


@pytest.mark.slow
def test_binding_checks_shapes_and_classes():
    with pytest.raises(DataError) as e:
        bind(load_dataset("digits"), image_classifier(1, 28, 28))
    assert str(e.value) == ("dataset digits gives (1, 8, 8) per sample, input node image "
                            "expects (1, 28, 28) (add ?size=28x28 to the dataset spec to resize)")
    xs, _ = bind(load_dataset("digits?size=28"), image_classifier(1, 28, 28))
    assert xs[0].shape == (1797, 1, 28, 28)
    xs, ys = bind(load_dataset("digits"), image_classifier(1, 8, 8))
    assert xs[0].dtype == np.float32 and ys[0].dtype == np.int64
    with pytest.raises(DataError, match="has 10 classes but target node label allows 3"):
        bind(load_dataset("digits"), image_classifier(1, 8, 8, classes=3))
    with pytest.raises(DataError, match="has 1 input"):
        bind(load_dataset("spirals"), GraphDocument())
    with pytest.raises(DataError, match="unknown dataset 'spiral'"):
        load_dataset("spiral")


def test_split_is_deterministic_and_disjoint():
    ds = load_dataset("moons?n=100")
    ds.inputs[0][:, 0] = np.arange(100)  # tag samples
    a = split(ds, 0.2, 0.1, seed=1)
    b = split(ds, 0.2, 0.1, seed=1)
    ids = [set(p.inputs[0][:, 0].tolist()) for p in a]
    assert [len(s) for s in ids] == [70, 20, 10] and set.union(*ids) == set(range(100))
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.inputs[0], q.inputs[0])


def test_augmentations_keep_shape_and_follow_the_seed():
    x = torch.rand(8, 3, 12, 12)
    for name in AUGMENTATIONS:
        torch.manual_seed(0)
        a = augment(x, [name])
        torch.manual_seed(0)
        b = augment(x, [name])
        assert a.shape == x.shape and torch.equal(a, b)
        assert not torch.equal(a, x)
    torch.manual_seed(0)
    flipped = augment(x, ["flip"])
    for i in range(8):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
