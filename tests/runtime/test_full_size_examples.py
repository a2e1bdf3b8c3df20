"""The full-size examples train from files of the real formats and shapes: MNIST IDX
(28x28 grey, gzipped as distributed) and CIFAR-10 binary batches (3x32x32), generated here
with fewer samples and a learnable class signal (nothing is downloaded)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from runtime.cli import main
from tests.runtime.data_files import write_cifar, write_idx_pair

FULL = Path(__file__).resolve().parents[2] / "resources" / "examples" / "full_size"

pytestmark = pytest.mark.slow


def _train(capsys, graph, spec, out, *extra):
    code = main(["train", str(graph), "--data", spec, "--quiet", "--threads", "2",
                 "--out", str(out), *extra])
    lines = capsys.readouterr().out.strip().splitlines()
    final = json.loads(lines[-1])
    assert code == 0, final.get("error")
    return final


def test_mnist_lenet5_trains_on_gzipped_idx_files(tmp_path, capsys):
    imgs, labels = write_idx_pair(tmp_path / "mnist", n=1500)
    for f in (imgs, labels):  # as distributed: train-images-idx3-ubyte.gz
        f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes()))
    final = _train(capsys, FULL / "mnist_lenet5.json",
                   f"idx:{imgs}.gz,{labels}.gz", tmp_path / "run", "--epochs", "3")
    assert final["status"] == "completed" and final["val_accuracy"] > 0.9, final
    # the same files streamed from disk (as a set larger than memory would be)
    streamed = _train(capsys, FULL / "mnist_lenet5.json",
                      f"idx:{imgs},{labels}?stream=on&workers=1", tmp_path / "run2",
                      "--epochs", "1", "--max-steps", "5")
    assert streamed["status"] == "completed" and streamed["steps"] == 5


def test_cifar_resnet_trains_on_binary_batches(tmp_path, capsys):
    folder = write_cifar(tmp_path / "cifar-10-batches-bin", n=(300, 300))
    final = _train(capsys, FULL / "cifar_resnet.json", f"cifar:{folder}", tmp_path / "run",
                   "--epochs", "3", "--batch-size", "32")
    # 540 training images, 3 epochs: far above chance (0.1), far below what 50,000 give
    assert final["status"] == "completed" and final["val_accuracy"] > 0.3, final


def test_full_size_examples_say_where_their_data_is(tmp_path, capsys):
    """Without the user's files: a message naming the missing file, no traceback."""
    code = main(["train", str(FULL / "mnist_lenet5.json"), "--quiet", "--out", str(tmp_path / "r")])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.err
    assert "train-images-idx3-ubyte.gz: file not found" in json.loads(out.out.splitlines()[-1])["error"]


def test_exported_train_py_reads_the_same_data_spec(tmp_path):
    """The standalone train.py takes a Netbuilder spec too (with Netbuilder importable)."""
    import subprocess
    import sys

    from runtime import load_graph
    from runtime.export import export

    imgs, labels = write_idx_pair(tmp_path / "mnist", n=400)
    export(load_graph(FULL / "mnist_lenet5.json"), "python", tmp_path / "py")
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "train.py", "--data", f"idx:{imgs},{labels}",
                        "--epochs", "1", "--max-steps", "3"], cwd=tmp_path / "py",
                       capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr[-2000:]
    final = json.loads(r.stdout.strip().splitlines()[-1])
    assert final["status"] == "completed" and final["steps"] == 3
