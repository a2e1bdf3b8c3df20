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


def test_nproc_refuses_options_it_cannot_honour(tmp_path):
    r = _train(tmp_path, "--nproc", "2", "--lr", "0.5")
    assert r.returncode == 1
    assert "--lr cannot be combined with --nproc" in r.stderr
    assert "Traceback" not in r.stderr
