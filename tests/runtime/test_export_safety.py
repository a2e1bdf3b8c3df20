"""Exports never lose data: the input is never written over, an existing output is
replaced only with --force, a full disk or a failed check leaves nothing behind (the
output appears whole, verified, or not at all); weights of the wrong kind are refused;
the Python check compares at this process's thread count; the TorchScript note is whole;
bundles are stored uncompressed."""
from __future__ import annotations

import errno
import os
import json
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from runtime import GraphDocument, load_graph, save_graph
from runtime.cli import main as cli_main
from runtime.compiler import build_module
from runtime.export import ExportError, export, load_bundle
from runtime.export import staging
from tests.runtime.export_setup import one_thread  # noqa: F401  (autouse)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "examples"


def tiny_doc(with_loss: bool = True) -> GraphDocument:
    d = GraphDocument("tiny")
    d.add_node("VectorInput", {"features": 3}, node_id="x")
    d.add_node("Dense", {"units": 4}, node_id="h")
    d.add_node("Tanh", node_id="act")
    d.add_node("Dense", {"units": 2}, node_id="o")
    for a, b in (("x", "h"), ("h", "act"), ("act", "o")):
        d.connect(a, "out", b, "x")
    if with_loss:
        d.add_node("Target", {"num_classes": 2}, node_id="t")
        d.add_node("CrossEntropy", node_id="loss")
        d.connect("o", "out", "loss", "pred")
        d.connect("t", "out", "loss", "target")
    else:
        d.add_node("Output", node_id="y")
        d.connect("o", "out", "y", "x")
    return d


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


# ---- overwriting ------------------------------------------------------------------------


def test_export_never_writes_over_its_input(tmp_path, capsys):
    g = tmp_path / "mine.json"
    save_graph(tiny_doc(), g)
    before = g.read_bytes()
    for extra in ([], ["--force"]):
        rc = cli_main(["export", str(g), "--format", "onnx", "--out", str(g)] + extra)
        assert rc == 1
        assert g.read_bytes() == before
    err = capsys.readouterr().err
    assert "is the file being exported" in err and "Traceback" not in err
    # a bundle folder being exported is protected too (and what is inside it)
    b = tmp_path / "b"
    assert cli_main(["export", str(g), "-f", "bundle", "-o", str(b)]) == 0
    assert cli_main(["export", str(b), "-f", "onnx", "-o", str(b / "graph.json"), "--force"]) == 1
    assert load_bundle(b)[0] == load_graph(g)
    # import: the source file is protected the same way
    src = tmp_path / "net.py"
    src.write_text("from torch import nn\n\nclass Net(nn.Module):\n    def __init__(self):\n"
                   "        super().__init__()\n        self.fc = nn.Linear(3, 2)\n\n"
                   "    def forward(self, x):\n        return self.fc(x)\n")
    assert cli_main(["import", str(src), "--class", "Net", "--out", str(src), "--force"]) == 1
    assert "class Net" in src.read_text()


@pytest.mark.slow
def test_an_existing_output_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"someone else's file")
    # the Python API refuses the same way unless asked
    with pytest.raises(ExportError, match="exists"):
        export(tiny_doc(), "onnx", out)
    assert export(tiny_doc(), "onnx", out, overwrite=True).verified
    # a folder: the export's files are replaced, an older export's extra file removed, the
    # user's own files kept
    py = tmp_path / "py"
    assert export(tiny_doc(), "python", py).verified
    assert (py / "train.py").exists()
    (py / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists"):
        export(tiny_doc(with_loss=False), "python", py)
    r = export(tiny_doc(with_loss=False), "python", py, overwrite=True)
    assert r.verified and not (py / "train.py").exists()
    assert (py / "notes.txt").read_text() == "mine" and (py / "model.py").exists()
    assert _leftovers(tmp_path) == []


def test_cli_refuses_an_existing_output_without_force(tmp_path, capsys):
    g = tmp_path / "g.json"
    save_graph(tiny_doc(), g)
    out = tmp_path / "m.zip"
    out.write_bytes(b"someone else's file")
    assert cli_main(["export", str(g), "-f", "bundle", "-o", str(out)]) == 1
    assert out.read_bytes() == b"someone else's file"
    assert "pass --force to replace it" in capsys.readouterr().err
    assert cli_main(["export", str(g), "-f", "bundle", "-o", str(out), "--force"]) == 0
    assert load_bundle(out)[0] == tiny_doc()


# ---- atomic outputs ---------------------------------------------------------------------


class _FullDisk:
    """``open`` for the export's writer whose n-th file fails with ENOSPC mid-write."""

    def __init__(self, fail_at: int):
        self.calls, self.fail_at = 0, fail_at

    def __call__(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if "w" in mode:
            self.calls += 1
            if self.calls >= self.fail_at:
                real_write = f.write

                def write(data):
                    real_write(data[: len(data) // 2])
                    raise OSError(errno.ENOSPC, "No space left on device")
                f.write = write
        return f


@pytest.mark.parametrize("fmt,out_name,fail_at", [
    ("bundle", "bundle_dir", 3),  # manifest, graph written; the weights fail
    pytest.param("python", "py", 3, marks=pytest.mark.slow),  # model.py, weights; train.py fails
    ("onnx", "m.onnx", 1),
])
def test_full_disk_leaves_no_partial_output(tmp_path, monkeypatch, fmt, out_name, fail_at):
    disk = _FullDisk(fail_at)
    monkeypatch.setattr(staging, "open", disk, raising=False)
    out = tmp_path / out_name
    with pytest.raises(ExportError, match="No space left on device") as err:
        export(tiny_doc(), fmt, out)
    assert "nothing was written" in str(err.value)
    assert disk.calls >= fail_at
    assert not out.exists() and _leftovers(tmp_path) == []
    # an existing export being replaced stays as it was
    monkeypatch.undo()
    export(tiny_doc(), fmt, out)
    before = {p.name: p.read_bytes() for p in (out.iterdir() if out.is_dir() else [out])}
    monkeypatch.setattr(staging, "open", _FullDisk(fail_at), raising=False)
    with pytest.raises(ExportError):
        export(tiny_doc(), fmt, out, overwrite=True)
    after = {p.name: p.read_bytes() for p in (out.iterdir() if out.is_dir() else [out])}
    assert after == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt,out_name", [
    ("onnx", "nan.onnx"), pytest.param("python", "nan_py", marks=pytest.mark.slow),
    ("bundle", "nan.zip")])
def test_an_export_that_fails_its_check_leaves_no_file(tmp_path, capsys, fmt, out_name):
    g = tmp_path / "g.json"
    save_graph(tiny_doc(), g)
    state = {k: v.clone() for k, v in build_module(tiny_doc()).state_dict().items()}
    state["h.weight"][0, 0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"))
    out = tmp_path / out_name
    rc = cli_main(["export", str(g), "-f", fmt, "-o", str(out), "-w",
                   str(tmp_path / "nan.safetensors")])
    err = capsys.readouterr().err
    assert rc == 1 and "NaN or inf: h.weight" in err and "Traceback" not in err
    assert not out.exists() and _leftovers(tmp_path) == []


# ---- weights of the wrong kind ------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_and_bool_weights_are_refused_not_cast(tmp_path, capsys, dtype):
    g = tmp_path / "g.json"
    save_graph(tiny_doc(), g)
    state = {k: v.clone() for k, v in build_module(tiny_doc()).state_dict().items()}
    state["o.weight"] = torch.ones_like(state["o.weight"]).to(dtype)
    save_file(state, str(tmp_path / "w.safetensors"))
    out = tmp_path / "m.zip"
    rc = cli_main(["export", str(g), "-f", "bundle", "-o", str(out), "-w",
                   str(tmp_path / "w.safetensors")])
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    kind = "bool" if dtype == torch.bool else "integer"
    assert f"o.weight: expected floating point (float32), found {kind}" in err, err
    # float64 weights are float weights: converted, as before
    state["o.weight"] = torch.ones_like(state["h.bias"][:1]).expand(2, 4).double().clone()
    save_file(state, str(tmp_path / "w64.safetensors"))
    assert cli_main(["export", str(g), "-f", "bundle", "-o", str(out), "-w",
                     str(tmp_path / "w64.safetensors")]) == 0


# ---- what the results say ---------------------------------------------------------------


def test_torchscript_note_says_why_in_one_whole_sentence(tmp_path):
    d = GraphDocument("residual")
    d.add_node("VectorInput", {"features": 4}, node_id="x")
    d.add_node("Dense", {"units": 4}, node_id="fc")
    d.add_node("Add", {"inputs": 2}, node_id="skip")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "fc", "x")
    d.connect("fc", "out", "skip", "x1")
    d.connect("x", "out", "skip", "x2")
    d.connect("skip", "out", "y", "x")
    r = export(d, "torchscript", tmp_path / "m.pt")
    note = next(n for n in r.notes if n.startswith("scripting failed"))
    assert "layer skip (Add)" in note and "variable number of arguments" in note
    assert ":)" not in note and ":;" not in note and note.endswith("traced path)")
    # a layer torch names only inside its message (a fused LSTM's forward): the same
    d = GraphDocument("lstm")
    d.add_node("SequenceInput", {"steps": 6, "features": 3}, node_id="x")
    d.add_node("LSTM", {"hidden_size": 4}, node_id="lstm")
    d.add_node("Output", node_id="y")
    d.connect("x", "out", "lstm", "x")
    d.connect("lstm", "out", "y", "x")
    note = next(n for n in export(d, "torchscript", tmp_path / "l.pt").notes
                if n.startswith("scripting failed"))
    assert note.startswith("scripting failed: layer lstm (LSTM): ") and "redefine" not in note


@pytest.mark.slow
def test_python_check_compares_at_this_process_thread_count(tmp_path):
    """model.py is the compiled module's code: at equal settings the outputs are equal
    (the child used to run at one thread against the caller's four: 3e-8 here)."""
    torch.set_num_threads(4)
    r = export(load_graph(EXAMPLES_DIR / "inception_small.json"), "python", tmp_path / "py")
    assert r.verified and r.max_abs_diff == 0.0, r.summary()


def test_bundle_zip_is_stored_uncompressed(tmp_path):
    r = export(tiny_doc(), "bundle", tmp_path / "b.zip")
    with zipfile.ZipFile(r.path) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
        assert json.loads(z.read("manifest.json"))["weights"] == "weights.safetensors"
    doc, state = load_bundle(r.path)
    assert doc == tiny_doc() and set(state) == set(build_module(tiny_doc()).state_dict())


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".m.zip.partial-{dead}-abc123"
    (stale / "m.zip").mkdir(parents=True)
    alive = tmp_path / f".m.zip.partial-{os.getpid()}-def456"  # this process: kept
    other = tmp_path / ".other.zip.partial-1-x"  # another target: not ours to touch
    alive.mkdir()
    other.mkdir()
    assert export(tiny_doc(), "bundle", tmp_path / "m.zip").verified
    assert not stale.exists() and alive.exists() and other.exists()
