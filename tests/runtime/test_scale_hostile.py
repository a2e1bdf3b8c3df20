"""Broken data, a diverging run, progress output and leftovers: each case once failed
(a hang, numpy's or Python's own error text, a silent success, an empty folder)."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from runtime.cli import main
from runtime.data import DataError, load_dataset
from runtime.data.images import read_image

ROOT = Path(__file__).resolve().parents[2]
SPIRALS = ROOT / "resources" / "examples" / "mlp_spirals.json"


def test_truncated_pgm_header_is_an_error_not_a_hang(tmp_path):
    import threading

    (tmp_path / "t.pgm").write_bytes(b"P5 8")
    got = []

    def read():
        try:
            read_image(tmp_path / "t.pgm")
        except DataError as exc:
            got.append(str(exc))

    t = threading.Thread(target=read, daemon=True)  # a hang leaves a spinning daemon thread
    t.start()
    t.join(timeout=20)
    assert got and "t.pgm: cannot decode image" in got[0] and "truncated" in got[0]


def test_pgm_maxval_zero_and_a_decompression_bomb(tmp_path):
    (tmp_path / "z.pgm").write_bytes(b"P5\n2 2\n0\n\0\0\0\0")
    with pytest.raises(DataError, match="maximum value 0"):
        read_image(tmp_path / "z.pgm")

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 12000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * (12001 * 100))) + chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(DataError, match="144,000,000 pixels, more than the limit"):
        read_image(tmp_path / "bomb.png")


@pytest.mark.parametrize("spec, message", [
    ("csv:/dev/zero", "not a regular file"),
    ("digits?size=0x0", "between 1 and 8192"),
    ("digits?size=abc", "must look like 32 or 32x32"),
    ("digits?channels=7", "channels='7' must be 1 (grey) or 3 (RGB)"),
    ("spirals?n=-5", "n=-5 must be a whole number from 1 to 10,000,000"),
    ("spirals?n=10000000000", "must be a whole number from 1 to 10,000,000"),
])
def test_bad_specs_get_plain_messages(spec, message):
    with pytest.raises(DataError, match=re.escape(message)):
        load_dataset(spec)


def test_images_channels_and_size_are_checked(tmp_path):
    from runtime.data.images import write_pgm

    (tmp_path / "a").mkdir()
    write_pgm(tmp_path / "a" / "x.pgm", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="channels='7'"):
        load_dataset(f"images:{tmp_path}?channels=7")
    with pytest.raises(DataError, match="size='abc'"):
        load_dataset(f"images:{tmp_path}?size=abc")


def test_empty_npz_and_idx(tmp_path):
    np.savez(tmp_path / "e.npz", x=np.zeros((0, 3), np.float32), y=np.zeros(0, np.int64))
    with pytest.raises(DataError, match="holds 0 samples"):
        load_dataset(f"npz:{tmp_path / 'e.npz'}")
    head = lambda dims: bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)  # noqa: E731
    (tmp_path / "i").write_bytes(head((0, 28, 28)))
    (tmp_path / "l").write_bytes(head((0,)))
    with pytest.raises(DataError, match="0 records .* no data"):
        load_dataset(f"idx:{tmp_path / 'i'},{tmp_path / 'l'}")


def test_nan_inputs_are_reported_in_the_inputs_file(tmp_path):
    np.save(tmp_path / "x.npy", np.full((5, 2), np.nan, np.float32))
    np.save(tmp_path / "y.npy", np.arange(5) % 2)
    with pytest.raises(DataError) as e:
        load_dataset(f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}")
    assert "x.npy, record 0: inputs contain NaN" in str(e.value) and "y.npy" not in str(e.value)


def _train(tmp_path, capsys, *args):
    code = main(["train", str(SPIRALS), "--quiet", "--out", str(tmp_path / "run"), *args])
    out = capsys.readouterr()
    return code, json.loads(out.out.strip().splitlines()[-1]), out.err


@pytest.mark.slow
def test_a_huge_learning_rate_is_reported_as_divergence(tmp_path, capsys):
    code, final, _ = _train(tmp_path, capsys, "--lr", "1e6", "--epochs", "3")
    assert code == 1 and final["status"] == "error"
    assert "training diverged" in final["error"] and "in force: 1e+06" in final["error"]


@pytest.mark.slow
def test_nan_stop_quotes_the_rate_in_force_and_keeps_the_last_good_weights(tmp_path, capsys):
    from runtime import load_graph
    from runtime.training import TrainConfig, Trainer

    doc = load_graph(SPIRALS)
    # a step schedule that multiplies the rate by 1e6 after the first epoch
    cfg = TrainConfig.from_dict({**doc.training, "schedule": "step", "step_size": 1,
                                 "gamma": 1e6, "lr": 0.01, "epochs": 4})
    final = Trainer(doc, cfg, out_dir=tmp_path / "run").fit()
    assert final["status"] == "error", final
    msg = final["error"]
    assert "(in force at that step: 10000)" in msg or "in force: 10000" in msg, msg
    assert "weights.safetensors holds its weights (epoch 1)" in msg
    from safetensors.torch import load_file

    w = load_file(str(tmp_path / "run" / "weights.safetensors"))
    c = load_file(str(tmp_path / "run" / "checkpoints" / "epoch0001.safetensors"))
    assert all(np.isfinite(v.numpy()).all() and (v == c[k]).all() for k, v in w.items())


@pytest.mark.slow
def test_progress_in_a_log_file_and_with_max_steps(tmp_path):
    r = subprocess.run([sys.executable, "-m", "runtime", "train", str(SPIRALS), "--max-steps",
                        "50", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr  # stderr is a pipe: lines, not a redrawn bar
    assert "50 steps (--max-steps; a full run is" in r.stderr
    lines = [x for x in r.stderr.splitlines() if "% epoch" in x]
    assert 5 <= len(lines) <= 21 and lines[-1].startswith("100% ")
    assert "ETA ?" in lines[0]  # no estimate before the rate is known


def test_a_run_that_fails_while_starting_leaves_no_folder(tmp_path, capsys):
    code, final, _ = _train(tmp_path, capsys, "--data", "csv:/nonexistent.csv")
    assert code == 1 and "file not found" in final["error"]
    assert not (tmp_path / "run").exists()
