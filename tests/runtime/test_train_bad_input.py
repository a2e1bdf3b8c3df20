"""Bad inputs to `netbuilder train`: a clear message naming the file (and the record), the
JSON line with an "error" key last on stdout, exit code 1, never a traceback."""
from __future__ import annotations

import gzip
import io
import json
import pickle
import struct

import numpy as np
import pytest
import torch

from runtime.cli import main
from runtime.data import DataError, load_dataset
from runtime.graph import GraphDocument
from runtime.serialization import save_graph
from tests.builders import image_classifier


def image_net(h=4, w=4, classes=3) -> GraphDocument:
    return image_classifier(1, h, w, classes)


def vector_net(features=2, classes=2) -> GraphDocument:
    d = GraphDocument("tiny vector net")
    d.add_node("VectorInput", {"features": features}, node_id="x")
    d.add_node("Dense", {"units": classes}, node_id="logits")
    d.add_node("Target", {"kind": "class", "num_classes": classes}, node_id="label")
    d.add_node("CrossEntropy", node_id="loss")
    d.connect("x", "out", "logits", "x")
    d.connect("logits", "out", "loss", "pred")
    d.connect("label", "out", "loss", "target")
    return d


def train(tmp_path, capsys, doc, *args):
    """Run `netbuilder train` in-process on ``doc`` saved in tmp_path; (code, err, last)."""
    save_graph(doc, tmp_path / "net.json")
    code = main(["train", str(tmp_path / "net.json"), "--out", str(tmp_path / "run"),
                 "--quiet", "--epochs", "1", "--threads", "1", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    last = json.loads(captured.out.strip().splitlines()[-1])  # the last line is JSON
    return code, captured.err, last


def failed(code, last, *needles):
    assert code == 1 and last["status"] == "error"
    for n in needles:
        assert n in last["error"], (n, last["error"])


def _idx(arr: np.ndarray) -> bytes:
    return (bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
            + arr.tobytes())


def test_truncated_gzip_idx_names_the_file_and_the_record(tmp_path, capsys):
    imgs = np.random.default_rng(0).integers(0, 256, (50, 4, 4)).astype(np.uint8)
    labels = (np.arange(50) % 3).astype(np.uint8)
    whole = gzip.compress(_idx(imgs))
    (tmp_path / "imgtrunc.gz").write_bytes(whole[:len(whole) * 2 // 3])  # a cut download
    (tmp_path / "lab.gz").write_bytes(gzip.compress(_idx(labels)))
    code, err, last = train(tmp_path, capsys, image_net(), "--data", "idx:imgtrunc.gz,lab.gz")
    failed(code, last, str(tmp_path / "imgtrunc.gz") + ", record ", "truncated")
    assert "imgtrunc.gz, record" in err
    record = int(last["error"].split("record ")[1].split(":")[0])
    assert 0 < record < 50  # where the data ends
    # the intact pair trains
    (tmp_path / "img.gz").write_bytes(whole)
    code, _, last = train(tmp_path, capsys, image_net(), "--data", "idx:img.gz,lab.gz")
    assert code == 0 and last["status"] == "completed"


def test_corrupt_gzip_and_truncated_cifar_are_reported(tmp_path):
    data = bytearray(gzip.compress(_idx(np.zeros((20, 4, 4), np.uint8))))
    data[30:40] = b"\xff" * 10  # damage inside the deflate stream
    (tmp_path / "bad.gz").write_bytes(bytes(data))
    (tmp_path / "lab").write_bytes(_idx(np.zeros(20, np.uint8)))
    with pytest.raises(DataError) as e:
        load_dataset(f"idx:{tmp_path / 'bad.gz'},{tmp_path / 'lab'}")
    assert str(tmp_path / "bad.gz") in str(e.value)
    recs = np.zeros((3, 3073), np.uint8)
    raw = gzip.compress(recs.tobytes())
    (tmp_path / "c.bin").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DataError, match=r"c.bin, record \d: gzip data ends early"):
        load_dataset(f"cifar:{tmp_path / 'c.bin'}")


def test_negative_npy_labels_name_the_file_and_the_record(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    y = np.arange(40) % 2
    y[7] = -1
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "yneg.npy", y)
    code, err, last = train(tmp_path, capsys, vector_net(), "--data", "npy:x.npy,yneg.npy")
    failed(code, last, f"{tmp_path / 'yneg.npy'}, record 7", "-1 is negative")
    # an .npz names the array
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DataError, match=r"d.npz \(array 'y'\), record 7"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")
    # IDX labels may be signed bytes
    lab = np.zeros(5, np.int8)
    lab[3] = -2
    (tmp_path / "imgs").write_bytes(_idx(np.zeros((5, 4, 4), np.uint8)))
    (tmp_path / "labs").write_bytes(bytes([0, 0, 9, 1]) + struct.pack(">I", 5) + lab.tobytes())
    with pytest.raises(DataError, match=r"labs, record 3: class label -2 is negative"):
        load_dataset(f"idx:{tmp_path / 'imgs'},{tmp_path / 'labs'}")


class _Evil:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_resume_refuses_a_malicious_pickle_and_other_files(tmp_path, capsys):
    marker = tmp_path / "code_ran"
    buf = io.BytesIO()
    torch.save({"format": "netbuilder-checkpoint", "payload": _Evil(marker)}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(_Evil(marker), f)
    (tmp_path / "notes.pt").write_text("just some text\n")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "plain.pt")  # a torch file, not ours
    for name, why in (("evil.pt", "weights-only"), ("evil.pkl", "weights-only"),
                      ("notes.pt", "not a Netbuilder checkpoint"),
                      ("plain.pt", "not a Netbuilder checkpoint")):
        code, err, last = train(tmp_path, capsys, vector_net(), "--data", "moons",
                                "--resume", str(tmp_path / name))
        failed(code, last, str(tmp_path / name), why)
        assert "weights_only set to `False`" not in err + last["error"]  # no unsafe advice
        assert not marker.exists()  # nothing was unpickled
    code, _, last = train(tmp_path, capsys, vector_net(), "--resume", str(tmp_path / "nothing"))
    failed(code, last, "nothing")


def test_binary_csv_names_the_file_and_the_line(tmp_path, capsys):
    (tmp_path / "data.csv").write_bytes(b"a,b,label\n1,2,0\n\x89PNG\r\n\x1a\n\x00\xff\xfe\x01")
    code, err, last = train(tmp_path, capsys, vector_net(), "--data", "csv:data.csv")
    failed(code, last, str(tmp_path / "data.csv"), "line 3", "not UTF-8")
    assert "record 1" in last["error"]


def test_csv_empty_label_cell_is_an_error_with_the_line(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n3,4,\n5,6,1\n")
    with pytest.raises(DataError) as e:
        load_dataset(f"csv:{p}")
    assert str(e.value) == f"{p}, record 1: (line 3) column 'y': the label is empty"


def test_csv_label_column_mixing_numbers_and_text_is_an_error(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,y\n1,0\n2,1\n3,cat\n4,1\n")
    with pytest.raises(DataError) as e:
        load_dataset(f"csv:{p}")
    assert "record 2: (line 4) column 'y': label 'cat' is text but the other labels are " \
           "numbers" in str(e.value)
    p.write_text("a,y\n1,nan\n")
    with pytest.raises(DataError, match="line 2.*'nan' is not a finite number"):
        load_dataset(f"csv:{p}")


def test_csv_textual_and_integer_labels_still_work(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,y\n1,cat\n2,dog\n\n3,cat\n")  # (a blank line is no record)
    ds = load_dataset(f"csv:{p}")
    assert ds.class_names == ["cat", "dog"] and ds.targets[0].tolist() == [0, 1, 0]
    p.write_text("a,y\n1,2\n2,0\n3,2\n")  # integer classes keep their numbers
    ds = load_dataset(f"csv:{p}")
    assert ds.class_names is None and ds.targets[0].tolist() == [2, 0, 2] and ds.num_classes == 3
    p.write_text("a,y\n1,2.5\n2,0.5\n")
    assert load_dataset(f"csv:{p}").task == "regression"


def test_load_and_config_errors_end_with_a_json_line(tmp_path, capsys):
    code = main(["train", str(tmp_path / "missing.json"), "--quiet"])
    out = capsys.readouterr()
    last = json.loads(out.out.strip().splitlines()[-1])
    assert code == 1 and "missing.json" in last["error"] and last["status"] == "error"
    code, _, last = train(tmp_path, capsys, vector_net(), "--batch-size", "0")
    failed(code, last, "batch_size")
    code, _, last = train(tmp_path, capsys, vector_net(), "--data", "nosuchset")
    failed(code, last, "unknown dataset 'nosuchset'")
