"""`netbuilder train --nproc N` / `--nnodes M`: DistributedDataParallel under torchrun that
behaves like a single run (same folder layout, same JSON lines, same losses)."""
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
SPIRALS = ROOT / "resources" / "examples" / "mlp_spirals.json"

pytestmark = pytest.mark.slow


def _cmd(*args):
    return [sys.executable, "-m", "runtime", "train", str(SPIRALS), "--quiet", *args]


def _train(tmp_path, *args):
    return subprocess.run(_cmd(*args), cwd=tmp_path, capture_output=True, text=True,
                          timeout=240, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def _lines(stdout):
    return [json.loads(x) for x in stdout.strip().splitlines()]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same_losses(a, b, tol=1e-5):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            if ra.get(k) is not None:
                assert abs(ra[k] - rb[k]) < tol, (k, ra[k], rb[k])


def test_nproc_two_is_a_single_run_in_layout_keys_and_losses(tmp_path):
    single = _train(tmp_path, "--epochs", "2", "--out", "one")
    r = _train(tmp_path, "--nproc", "2", "--epochs", "2")
    assert single.returncode == 0 and r.returncode == 0, r.stderr[-2000:]
    # nothing beside the graph; the default folder of a single run
    assert not (SPIRALS.parent / "mlp_spirals_ddp").exists()
    run = tmp_path / "runs" / "mlp_spirals"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir())
    assert "Traceback" not in r.stderr and "*****" not in r.stderr  # no torchrun banner
    assert "OMP_NUM_THREADS" not in r.stderr
    # stdout: only JSON lines, the same keys as a single run
    one, two = _lines(single.stdout), _lines(r.stdout)
    assert [set(x) for x in one] == [set(x) for x in two]
    _same_losses(one, two)
    final = two[-1]
    assert final["processes"] == 2 and final["status"] == "completed"
    assert final["train_accuracy"] is not None and final["out_dir"] == "runs/mlp_spirals"
    assert Path(tmp_path / final["checkpoint"]).exists()
    # weights.safetensors holds the trained weights: those of the last checkpoint
    w = load_file(str(run / "weights.safetensors"))
    c = load_file(str(run / "checkpoints" / "epoch0002.safetensors"))
    assert set(w) == set(c) and all((w[k] == c[k]).all() for k in w)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in rows] == [1, 2]


def test_nproc_resumes_like_a_single_run(tmp_path):
    first = _train(tmp_path, "--nproc", "2", "--epochs", "1", "--out", "run")
    assert first.returncode == 0, first.stderr[-2000:]
    more = _train(tmp_path, "--nproc", "2", "--epochs", "2", "--out", "run", "--resume", "run")
    assert more.returncode == 0, more.stderr[-2000:]
    whole = _train(tmp_path, "--epochs", "2", "--out", "whole")
    _same_losses(_lines(more.stdout)[-1:], _lines(whole.stdout)[-1:])
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in rows] == [1, 2]


def test_two_nodes_on_one_machine_match_a_single_process(tmp_path):
    """Two torchrun agents (--nnodes 2, one process each) meeting on 127.0.0.1."""
    port = str(_free_port())
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    nodes = [subprocess.Popen(_cmd("--nproc", "1", "--nnodes", "2", "--node-rank", str(k),
                                   "--master-addr", "127.0.0.1", "--master-port", port,
                                   "--epochs", "2", "--out", f"node{k}"),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for k in (0, 1)]
    outs = [p.communicate(timeout=240) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert outs[1][0].strip() == ""  # only machine 0 reports and writes
    assert not (tmp_path / "node1").exists()
    single = _train(tmp_path, "--epochs", "2", "--out", "single")
    two, one = _lines(outs[0][0]), _lines(single.stdout)
    assert two[-1]["processes"] == 2
    _same_losses(one, two)


def test_nproc_options_reach_every_process(tmp_path):
    r = _train(tmp_path, "--nproc", "2", "--max-steps", "3", "--lr", "0.05", "--seed", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((tmp_path / "runs" / "mlp_spirals" / "config.json").read_text())
    assert cfg["lr"] == 0.05 and cfg["seed"] == 3
    assert _lines(r.stdout)[-1]["steps"] == 3
    bad = _train(tmp_path, "--nproc", "2", "--nnodes", "2", "--node-rank", "2")
    assert bad.returncode == 1 and "--node-rank" in _lines(bad.stdout)[-1]["error"]


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


def test_streamed_data_under_ddp_matches_one_process(tmp_path):
    """A streamed image folder (DataLoader workers in every process) under --nproc 2."""
    from runtime.serialization import save_graph
    from tests.builders import small_cnn
    from tests.runtime.test_streaming import image_folder

    image_folder(tmp_path / "imgs", n_per_class=32, classes=3, size=12)
    doc = small_cnn()
    doc.training = {"dataset": "images:imgs?stream=on&workers=1", "batch_size": 16,
                    "epochs": 2, "val_split": 0.25}
    save_graph(doc, tmp_path / "g.json")
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-m", "runtime", "train", "g.json", "--quiet", "--out",
                            f"o{k}", *extra], cwd=tmp_path, capture_output=True, text=True,
                           timeout=240, env=env) for k, extra in ((1, []), (2, ["--nproc", "2"]))]
    assert [r.returncode for r in runs] == [0, 0], runs[1].stderr[-2000:]
    _same_losses(_lines(runs[0].stdout), _lines(runs[1].stdout))
