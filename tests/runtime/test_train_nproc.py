"""`netbuilder train --nproc N` trains with DDP under torchrun (2 CPU processes, gloo)."""
import json
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
SPIRALS = ROOT / "resources" / "examples" / "mlp_spirals.json"


def _train(tmp_path, *extra):
    return subprocess.run([sys.executable, "-m", "app.main", "train", str(SPIRALS), "--out",
                           str(tmp_path / "run"), *extra], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240)


def test_nproc_two_trains_under_torchrun(tmp_path):
    r = _train(tmp_path, "--nproc", "2", "--epochs", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "on 2 process(es)" in r.stdout + r.stderr
    weights = load_file(str(tmp_path / "run" / "trained.safetensors"))
    names = json.loads(SPIRALS.read_text())["nodes"]
    dense = [n["id"] for n in names if n["type"] == "Dense"]
    assert all(any(k.startswith(d + ".") for k in weights) for d in dense)
    assert "Traceback" not in r.stderr
    # the CLI contract: the last stdout line is a JSON object with the final metrics
    final = json.loads(r.stdout.strip().splitlines()[-1])
    assert final["status"] == "completed" and final["processes"] == 2
    assert final["train_loss"] > 0 and final["val_loss"] > 0  # spirals: val_split 0.2
    assert 0 <= final["val_accuracy"] <= 1 and final["epochs"] == 1
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1] and rows[0]["val_loss"] == final["val_loss"]


def test_nproc_refuses_options_it_cannot_honour(tmp_path):
    r = _train(tmp_path, "--nproc", "2", "--lr", "0.5")
    assert r.returncode == 1
    assert "--lr cannot be combined with --nproc" in r.stderr
    assert "Traceback" not in r.stderr
    assert "--lr" in json.loads(r.stdout.strip().splitlines()[-1])["error"]


def test_train_script_clips_in_the_trainers_order(tmp_path):
    """By norm (the whole gradient's norm before clipping), then by value: as the trainer."""
    import inspect

    from runtime import load_graph
    from runtime.export import export
    from runtime.training import trainer

    doc = load_graph(SPIRALS)
    doc.training = {**doc.training, "clip_norm": 1.0, "clip_value": 0.1}
    export(doc, "python", tmp_path / "py")
    script = (tmp_path / "py" / "train.py").read_text()
    assert script.index("clip_grad_norm_(") < script.index("clip_grad_value_(")
    loop = inspect.getsource(trainer.Trainer._loop)
    assert loop.index("clip_by_norm_(") < loop.index("clip_grad_value_(")
