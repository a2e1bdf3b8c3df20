"""Happy paths of ``netbuilder validate|summary|compile`` on a graph written here
(validate and compile through the real entry point in a subprocess, summary in-process).

Expected numbers come from analysis and from the built torch module, never typed in.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import GraphDocument, analyze, build_module, save_graph
from runtime.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_cnn(tmp_path) -> tuple[Path, GraphDocument]:
    doc = GraphDocument("small cnn")
    doc.add_node("ImageInput", {"channels": 1, "height": 8, "width": 8}, node_id="image")
    doc.add_node("Conv2d", {"filters": 4, "kernel_size": 3}, node_id="c1", label="first conv")
    doc.add_node("ReLU", node_id="r1")
    doc.add_node("MaxPool", {"kernel_size": 2}, node_id="p1")
    doc.add_node("Flatten", node_id="flat")
    doc.add_node("Dense", {"units": 3}, node_id="fc")
    doc.add_node("Target", {"kind": "class", "num_classes": 3}, node_id="label")
    doc.add_node("CrossEntropy", node_id="loss")
    for a, b in (("image", "c1"), ("c1", "r1"), ("r1", "p1"), ("p1", "flat"), ("flat", "fc")):
        doc.connect(a, "out", b, "x")
    doc.connect("fc", "out", "loss", "pred")
    doc.connect("label", "out", "loss", "target")
    path = tmp_path / "small_cnn.json"
    save_graph(doc, path)
    return path, doc


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.main", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_validate_exits_0(small_cnn):
    path, doc = small_cnn
    r = run("validate", path)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout and f"{len(doc)} nodes" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_summary_json(small_cnn, capsys):
    path, doc = small_cnn
    assert cli_main(["summary", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"nodes", "total_params", "total_macs"}
    analysis = analyze(doc)
    rows = {row["id"]: row for row in data["nodes"]}
    assert set(rows) == set(doc.nodes)
    assert [row["id"] for row in data["nodes"]] == doc.reading_order()  # branches together
    for nid, row in rows.items():
        assert set(row) == {"id", "label", "type", "output_shape", "params", "macs"}
        assert row["type"] == doc.nodes[nid].type
        info = analysis.nodes[nid]
        assert row["output_shape"] == list(info.output_shape)
        assert (row["params"], row["macs"]) == (info.params, info.macs)
    assert rows["c1"]["label"] == "first conv" and rows["fc"]["label"] == "fc"
    # cross-checks against torch and the textbook formulas
    module = build_module(doc)
    assert data["total_params"] == sum(p.numel() for p in module.parameters())
    assert rows["c1"]["params"] == module.c1.weight.numel() + module.c1.bias.numel()
    c, h, w = rows["c1"]["output_shape"]
    assert rows["c1"]["macs"] == c * h * w * 1 * 3 * 3  # one MAC per weight per output
    assert rows["fc"]["macs"] == rows["flat"]["output_shape"][0] * 3
    assert rows["loss"]["output_shape"] == []
    assert data["total_macs"] == sum(row["macs"] for row in data["nodes"])


def test_summary_table(small_cnn, capsys):
    path, doc = small_cnn
    assert cli_main(["summary", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "params", "MACs"]
    analysis = analyze(doc)
    body = {line.split()[0]: line for line in lines[1:-1]}
    assert "first" in body and "Conv2d" in body["first"] and "(4, 6, 6)" in body["first"]
    assert f"{analysis.nodes['fc'].params:,}" in body["fc"]
    assert lines[-1].split()[0] == "total"
    assert f"{analysis.total_params:,}" in lines[-1]
    assert f"{analysis.total_macs:,}" in lines[-1]


@pytest.mark.slow
def test_compile_prints_forward(small_cnn):
    path, _ = small_cnn
    r = run("compile", path)
    assert r.returncode == 0, r.stderr
    assert "def forward(self, image, label)" in r.stdout
    for nid in ("c1", "r1", "p1", "flat", "fc", "loss"):
        assert f"self.{nid}(" in r.stdout


def test_validate_prints_warnings_but_exits_0(tmp_path, capsys):
    doc = GraphDocument("dangling")
    doc.add_node("VectorInput", node_id="x")
    doc.add_node("Dense", node_id="fc")
    doc.add_node("Dense", node_id="unused")
    doc.add_node("Output", node_id="out")
    doc.connect("x", "out", "fc", "x")
    doc.connect("x", "out", "unused", "x")
    doc.connect("fc", "out", "out", "x")
    save_graph(doc, tmp_path / "g.json")
    assert cli_main(["validate", str(tmp_path / "g.json")]) == 0
    out = capsys.readouterr().out
    assert "warning: node 'unused'" in out and "valid" in out


@pytest.mark.slow
def test_python_dash_m_runtime_runs_every_subcommand(tmp_path):
    """``python -m runtime`` is ``netbuilder``: export (a subcommand outside cli.py) works."""
    out = tmp_path / "x.onnx"
    proc = subprocess.run([sys.executable, "-m", "runtime", "export", str(ROOT / "resources/examples/lenet5.json"),
                           "--format", "onnx", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 100_000  # LeNet-5's 61,706 float weights
    helps = subprocess.run([sys.executable, "-m", "runtime", "--help"], cwd=ROOT, capture_output=True, text=True)
    for name in ("validate", "summary", "compile", "train", "export", "import", "train-dist"):
        assert name in helps.stdout


def test_validate_and_summary_read_a_bundles_graph(tmp_path, capsys):
    """A model bundle (.zip or folder) is checked through the graph it holds; a .zip
    without one is named as such (it used to fail with a UTF-8 decoding error)."""
    import zipfile

    doc = GraphDocument()
    doc.add_node("VectorInput", {"features": 3}, node_id="x")
    doc.add_node("Dense", {"units": 2}, node_id="fc")
    doc.connect("x", "out", "fc", "x")
    folder = tmp_path / "bundle"
    folder.mkdir()
    save_graph(doc, folder / "graph.json")
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(folder / "graph.json", "graph.json")
    for path in (folder, archive):
        assert cli_main(["validate", str(path)]) == 0
        assert "valid (2 nodes, 1 edges)" in capsys.readouterr().out
        assert cli_main(["summary", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["total_params"] == 8
    empty = tmp_path / "other.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("notes.txt", "x")
    assert cli_main(["validate", str(empty)]) == 1
    assert "not a Netbuilder model bundle" in capsys.readouterr().err
