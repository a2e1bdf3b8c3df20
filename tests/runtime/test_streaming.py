"""Streamed datasets: inputs read from disk a batch at a time by DataLoader workers give
the same batches as the in-memory path, and the trainer's memory stays bounded."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from runtime.data import load_dataset
from runtime.data.images import write_pgm, write_png
from runtime.training import TrainConfig, Trainer
from runtime.training.distributed import Group
from tests.builders import small_cnn

ROOT = Path(__file__).resolve().parents[2]


def image_folder(root: Path, n_per_class=20, classes=3, size=12) -> Path:
    rng = np.random.default_rng(0)
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True)
        for i in range(n_per_class):
            img = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
            img[..., k] //= 4  # a class signal
            (write_png if i % 2 else write_pgm)(root / f"c{k}" / f"{i:03d}.{'png' if i % 2 else 'ppm'}", img)
    return root


def _trainer(spec, **cfg):
    config = TrainConfig.from_dict({"dataset": spec, "batch_size": 8, "epochs": 2,
                                    "val_split": 0.25, "seed": 3, "log_every": 2, **cfg})
    t = Trainer(small_cnn(), config, device="cpu")
    t.setup()
    return t


def _epoch(t, epoch):
    return [(xs, ys) for xs, ys, _ in t.feed.train_batches(epoch, t.cfg.batch_size, t.n_batches,
                                                          t.cfg.seed, Group())]


@pytest.mark.slow
def test_streamed_batches_equal_the_in_memory_ones(tmp_path):
    folder = image_folder(tmp_path / "imgs")
    mem = _trainer(f"images:{folder}?stream=off")
    one = _trainer(f"images:{folder}?stream=on&workers=0")
    two = _trainer(f"images:{folder}?stream=on&workers=2")
    assert not mem.dataset.streamed and one.dataset.streamed
    for epoch in (0, 1):
        a, b, c = _epoch(mem, epoch), _epoch(one, epoch), _epoch(two, epoch)
        assert len(a) == len(b) == len(c) == mem.n_batches
        for (xa, ya), (xb, yb), (xc, yc) in zip(a, b, c):
            assert torch.equal(ya[0], yb[0]) and torch.equal(yb[0], yc[0])  # same samples
            # normalisation statistics: the whole split in memory, summed in float64 when
            # streamed: equal to float32 rounding
            torch.testing.assert_close(xa[0], xb[0], atol=1e-5, rtol=1e-5)
            assert torch.equal(xb[0], xc[0])  # workers or not: the very same values
    fa, fb = mem.fit(), two.fit()
    assert fa["status"] == fb["status"] == "completed"
    assert abs(fa["val_loss"] - fb["val_loss"]) < 1e-4
    assert fa["val_accuracy"] == fb["val_accuracy"]


def test_stream_option_is_checked(tmp_path):
    folder = image_folder(tmp_path / "imgs", n_per_class=2)
    from runtime.data import DataError

    with pytest.raises(DataError, match="stream='maybe' must be on, off or auto"):
        load_dataset(f"images:{folder}?stream=maybe")
    with pytest.raises(DataError, match="workers"):
        load_dataset(f"images:{folder}?workers=-1")


@pytest.mark.slow
def test_streamed_npy_idx_and_cifar_read_lazily(tmp_path):
    from tests.runtime.data_files import write_cifar, write_idx_pair

    imgs, labels = write_idx_pair(tmp_path, n=50)
    ds = load_dataset(f"idx:{imgs},{labels}?stream=on")
    assert ds.streamed and ds.inputs[0].shape == (50, 1, 28, 28)
    mem = load_dataset(f"idx:{imgs},{labels}")
    assert not mem.streamed
    np.testing.assert_array_equal(ds.inputs[0][np.arange(50)], mem.inputs[0])
    batches = write_cifar(tmp_path / "cifar", n=(30, 20))
    ds = load_dataset(f"cifar:{batches}?stream=on")
    mem = load_dataset(f"cifar:{batches}")
    assert ds.streamed and len(ds) == 50
    idx = np.array([49, 3, 31, 30, 0])
    np.testing.assert_array_equal(ds.inputs[0][idx], mem.inputs[0][idx])
    x = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(50) % 2)
    ds = load_dataset(f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}?stream=on")
    assert ds.streamed
    np.testing.assert_array_equal(ds.inputs[0][idx], x[idx])


MEASURE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    from runtime.training import TrainConfig, Trainer
    from tests.builders import small_cnn

    cfg = TrainConfig.from_dict({{"dataset": sys.argv[1], "batch_size": 32, "epochs": 1,
                                 "val_split": 0.4, "visualize_every": 100000}})
    t = Trainer(small_cnn(3, 64, 64, 2), cfg, device="cpu")
    final = t.fit()
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent
    # through fork and exec, so under a large pytest process every child reads its size
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({{"status": final["status"], "peak_mb": peak / 1024,
                      "streamed": t.dataset.streamed}}))
""")


@pytest.mark.slow
def test_streamed_training_keeps_memory_bounded(tmp_path):
    """2,000 images of 3x64x64 are 94 MB as float32. Each run is a fresh process; the
    growth is the peak memory of training on 2,000 images minus that of training on 400
    (same model, batches and code paths), so it is the data's own part: read into memory
    the 1,600 more images show in full; streamed, only batch-sized buffers do."""
    folder = image_folder(tmp_path / "imgs", n_per_class=1000, classes=2, size=64)
    small = image_folder(tmp_path / "small", n_per_class=200, classes=2, size=64)
    data_mb = (2000 - 400) * 3 * 64 * 64 * 4 / 2**20  # what the larger folder adds
    script = tmp_path / "measure.py"
    script.write_text(MEASURE.format(root=str(ROOT)))

    def run(stream, f):
        r = subprocess.run([sys.executable, str(script), f"images:{f}?stream={stream}&workers=2"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout.strip().splitlines()[-1])

    grew = {}
    for stream in ("on", "off"):
        base, big = run(stream, small), run(stream, folder)
        assert base["status"] == big["status"] == "completed"
        assert big["streamed"] == (stream == "on")
        grew[stream] = big["peak_mb"] - base["peak_mb"]
    assert grew["off"] > data_mb * 0.9, grew  # the control: in memory, the data shows
    assert grew["on"] < data_mb * 0.4, grew  # streamed: batch-sized buffers
