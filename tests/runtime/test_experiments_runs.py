"""The run record (run.json, metrics, steps) every run leaves, and `netbuilder runs`:
listing with what changed between runs, rename, note, delete to the trash and restore."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runtime.cli import main
from runtime.experiments import index
from runtime.graph import GraphDocument
from runtime.serialization import save_graph
from runtime.training import TrainConfig, Trainer


def mlp(units: int = 8) -> GraphDocument:
    d = GraphDocument("tiny")
    d.add_node("VectorInput", {"features": 2}, node_id="x")
    d.add_node("Dense", {"units": units}, node_id="dense1")
    d.add_node("Tanh", node_id="act")
    d.add_node("Dense", {"units": 2}, node_id="out")
    d.add_node("Target", {"kind": "class", "num_classes": 2}, node_id="y")
    d.add_node("CrossEntropy", node_id="loss")
    for a, b, port in (("x", "dense1", "x"), ("dense1", "act", "x"), ("act", "out", "x"),
                       ("out", "loss", "pred"), ("y", "loss", "target")):
        d.connect(a, "out", b, port)
    return d


def cfg(**kw) -> TrainConfig:
    base = dict(dataset="moons", epochs=1, batch_size=100, threads=1, lr=0.01)
    base.update(kw)
    return TrainConfig(**base)


def train_cli(tmp_path, capsys, doc, config, *args):
    doc.set_training(config.to_dict())
    save_graph(doc, tmp_path / "net.json")
    code = main(["train", str(tmp_path / "net.json"), "--quiet", *args])
    capsys.readouterr()
    assert code == 0


def runs_cli(capsys, *args):
    code = main(["runs", *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


@pytest.mark.slow
def test_runs_lists_every_run_with_what_changed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # netbuilder train's default folder: ./runs/<graph>
    train_cli(tmp_path, capsys, mlp(8), cfg())
    train_cli(tmp_path, capsys, mlp(8), cfg(lr=0.003))
    train_cli(tmp_path, capsys, mlp(24), cfg(lr=0.003))
    code, out, _ = runs_cli(capsys, str(tmp_path / "net.json"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("#") and "changed since the run before" in lines[0]
    assert len(lines) == 4, out
    assert "lr 0.01 -> 0.003" in lines[2] and "dense1.units" not in lines[2]
    assert "dense1.units 8 -> 24" in lines[3] and "lr" not in lines[3].split("completed")[1]
    code, out, _ = runs_cli(capsys, str(tmp_path / "net.json"), "--json")
    runs = json.loads(out)
    assert [r["status"] for r in runs] == ["completed"] * 3
    assert runs[2]["params"] > runs[1]["params"] and runs[0]["device"] == "cpu"
    assert all(0 <= r["metrics"]["val_accuracy"] <= 1 for r in runs)
    assert runs[2]["changes"] == ["dense1.units 8 -> 24"]

    # rename, note, delete (to the trash) and restore
    code, out, _ = runs_cli(capsys, str(tmp_path / "net.json"), "--rename", "1", "baseline")
    assert code == 0
    code, out, _ = runs_cli(capsys, str(tmp_path / "net.json"), "--note", "baseline",
                            "lr 0.01, the default")
    code, out, _ = runs_cli(capsys, str(tmp_path / "net.json"))
    assert "baseline" in out.splitlines()[1] and "note 1 (baseline): lr 0.01, the default" in out
    code, out, _ = runs_cli(capsys, str(tmp_path / "net.json"), "--delete", "2")
    assert code == 0 and "--restore" in out
    trashed = out.split("--restore ")[1].strip()
    assert len(json.loads(runs_cli(capsys, str(tmp_path / "net.json"), "--json")[1])) == 2
    code, out, _ = runs_cli(capsys, str(tmp_path / "net.json"), "--restore", trashed)
    assert code == 0
    again = json.loads(runs_cli(capsys, str(tmp_path / "net.json"), "--json")[1])
    assert len(again) == 3 and again[1]["changes"] == ["lr 0.01 -> 0.003"]
    # bad input: a plain message naming the run
    code, _, err = runs_cli(capsys, str(tmp_path / "net.json"), "--delete", "nosuchrun")
    assert code == 1 and "no run 'nosuchrun'" in err
    code, _, err = runs_cli(capsys, str(tmp_path / "missing.json"))
    assert code == 1 and "missing.json" in err


def test_a_run_records_its_curves_and_a_failed_or_dead_run_says_so(tmp_path):
    doc = mlp()
    out = tmp_path / "runs" / "a"
    final = Trainer(doc, cfg(epochs=2, batch_size=50), out_dir=out).fit()
    assert final["status"] == "completed"
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs"] == 2 and info["params"] == 42
    c = index.curves(out)
    assert c["val_loss"][0] == [1.0, 2.0] and len(c["step_loss"][1]) == final["steps"]
    assert c["lr"][1] == [0.01, 0.01] and abs(c["step_loss"][0][-1] - 2.0) < 1e-9
    assert json.loads((out / "graph.json").read_text())["nodes"][1]["params"]["units"] == 8

    bad = tmp_path / "runs" / "b"  # fails at set-up: still recorded, with the reason
    final = Trainer(doc, cfg(dataset="nosuchdata"), out_dir=bad).fit()
    assert final["status"] == "error"
    run = index.read_run(bad)
    assert run.status == "error" and "nosuchdata" in run.error

    dead = tmp_path / "runs" / "c"  # a run whose process died while training
    dead.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (dead / "run.json").write_text(json.dumps({"status": "running", "pid": gone.pid,
                                               "host": __import__("socket").gethostname(),
                                               "started_unix": 1.0}))
    assert index.read_run(dead).status == "interrupted"
    listed = index.find_runs(tmp_path / "runs")
    assert [r.id for r in listed] == ["c", "a", "b"]
