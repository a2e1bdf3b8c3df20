"""Run folders and resuming: a reused --out never mixes two runs, resume keeps the
checkpoint's settings, final weights are written; and RMSprop momentum, frozen blocks,
--max-steps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from runtime import blocks
from runtime.cli import main
from runtime.serialization import save_graph
from runtime.training import Control, TrainConfig, Trainer
from runtime.training import runs
from runtime.training.checkpoint import list_checkpoints, load_weights
from runtime.training.config import ConfigError
from tests.builders import mlp


def cfg(**kw) -> TrainConfig:
    base = dict(dataset="moons", epochs=2, batch_size=50, threads=1, lr=0.01,
                keep_checkpoints=5)
    base.update(kw)
    return TrainConfig(**base)


def cli(tmp_path, capsys, *args, doc=None, training=None):
    doc = doc or mlp(hidden=(16,))
    doc.set_training((training or cfg()).to_dict())
    save_graph(doc, tmp_path / "net.json")
    code = main(["train", str(tmp_path / "net.json"), "--out", str(tmp_path / "run"),
                 "--quiet", *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.err, json.loads(out.out.strip().splitlines()[-1])


def epochs_in(path: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in path.read_text().splitlines()]


# ---- a reused --out folder ------------------------------------------------------------
def test_a_new_shorter_run_into_a_used_folder_does_not_mix_with_the_old(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, first = cli(tmp_path, capsys, "--epochs", "4")
    assert code == 0 and Path(first["checkpoint"]).name == "epoch0004.pt"
    code, err, final = cli(tmp_path, capsys, "--epochs", "2")
    assert code == 0
    assert Path(final["checkpoint"]) == out / "checkpoints" / "epoch0002.pt"
    assert Path(final["checkpoint"]).exists()
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["epoch0001.pt",
                                                                       "epoch0002.pt"]
    assert epochs_in(out / "metrics.jsonl") == [1, 2]  # only this run's epochs
    assert "held a previous run" in err  # said so
    (old,) = (out / "previous").iterdir()  # the old run is kept aside, whole
    assert epochs_in(old / "metrics.jsonl") == [1, 2, 3, 4]
    assert (old / "checkpoints" / "epoch0004.pt").exists() and (old / "weights.safetensors").exists()
    # the final weights are this run's
    w = load_weights(out / "weights.safetensors")
    ck = load_weights(out / "checkpoints" / "epoch0002.safetensors")
    assert all(torch.equal(w[k], ck[k]) for k in w)


def test_resume_from_an_earlier_epoch_moves_the_abandoned_epochs_aside(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(tmp_path, capsys, "--epochs", "4")[0] == 0
    code, err, final = cli(tmp_path, capsys, "--epochs", "3", "--resume",
                           str(out / "checkpoints" / "epoch0002.pt"))
    assert code == 0 and final["epochs"] == 3
    assert Path(final["checkpoint"]).name == "epoch0003.pt"
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == [
        "epoch0001.pt", "epoch0002.pt", "epoch0003.pt"]
    assert epochs_in(out / "metrics.jsonl") == [1, 2, 3]
    assert "had epochs after 2" in err


def test_the_trainer_api_does_not_mix_runs_either(tmp_path):
    doc = mlp(hidden=(16,))
    Trainer(doc, cfg(epochs=3), out_dir=tmp_path).fit()
    events = []
    final = Trainer(doc, cfg(epochs=1), out_dir=tmp_path, on_event=events.append).fit()
    assert Path(final["checkpoint"]) == tmp_path / "checkpoints" / "epoch0001.pt"
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["epoch0001.pt"]
    assert any(e["event"] == "warning" and "previous run" in e["message"] for e in events)


# ---- resume keeps the checkpoint's settings ----------------------------------------------
def test_resume_uses_the_checkpoints_config_and_says_what_it_ignored(tmp_path):
    doc = mlp(hidden=(16,))
    Trainer(doc, cfg(epochs=2, lr=0.01), out_dir=tmp_path / "a").fit()
    full, _ = Trainer(doc, cfg(epochs=3, lr=0.01), out_dir=tmp_path / "b"), None
    full_final = full.fit()
    events = []
    other = cfg(epochs=3, lr=0.5, dataset="xor", batch_size=10, optimizer="sgd")
    t = Trainer(doc, other, out_dir=tmp_path / "a", on_event=events.append,
                resume=tmp_path / "a")
    final = t.fit()
    assert final["status"] == "completed" and final["epochs"] == 3
    warning = next(e["message"] for e in events if e["event"] == "warning")
    for name in ("lr 0.5", "dataset 'xor'", "batch_size 10", "optimizer 'sgd'"):
        assert name in warning
    assert t.cfg.lr == 0.01 and t.cfg.dataset == "moons" and t.cfg.epochs == 3
    assert {e["lr"] for e in events if e["event"] == "step"} == {0.01}
    assert final["val_loss"] == full_final["val_loss"]  # exact continuation


def test_cli_refuses_explicit_options_that_break_exact_continuation(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(tmp_path, capsys)[0] == 0
    code, err, last = cli(tmp_path, capsys, "--resume", str(out), "--lr", "0.5",
                          "--data", "xor")
    assert code == 1 and last["status"] == "error"
    assert "--lr 0.5 (the checkpoint has 0.01)" in last["error"]
    assert "--data 'xor' (the checkpoint has 'moons')" in last["error"]
    assert epochs_in(out / "metrics.jsonl") == [1, 2]  # nothing touched
    # settings changed in the graph file are ignored with a note; the run continues
    code, err, final = cli(tmp_path, capsys, "--resume", str(out), "--epochs", "3",
                           training=cfg(lr=0.2, seed=5))
    assert code == 0 and final["epochs"] == 3
    assert "ignored" in err and "lr 0.2" in err and "seed 5" in err
    assert json.loads((out / "config.json").read_text())["lr"] == 0.01


# ---- final weights and the GUI's run folders ---------------------------------------------
def test_final_weights_are_written_at_the_end_and_on_stop(tmp_path):
    doc = mlp(hidden=(16,))
    t = Trainer(doc, cfg(epochs=1), out_dir=tmp_path / "done")
    final = t.fit()
    assert final["weights"] == str(tmp_path / "done" / "weights.safetensors")
    w = load_weights(final["weights"])
    assert all(torch.equal(w[k], v) for k, v in t.module.state_dict().items())
    control = Control()
    stop = lambda e: control.stop() if e["event"] == "step" and e["step"] == 3 else None  # noqa: E731
    t = Trainer(doc, cfg(epochs=50, log_every=1), out_dir=tmp_path / "stopped",
                on_event=stop, control=control)
    final = t.fit()
    assert final["status"] == "stopped" and Path(final["weights"]).exists()
    assert final["out_dir"] == str(tmp_path / "stopped")


def test_run_folders_are_fresh_and_beside_the_graph(tmp_path, monkeypatch):
    (tmp_path / "nets").mkdir()
    assert runs.runs_root(tmp_path / "nets" / "mine.json") == tmp_path / "nets" / "runs" / "mine"
    monkeypatch.setenv("NETBUILDER_RUNS_DIR", str(tmp_path / "data"))
    # a gallery example opened by its path never fills the shipped examples folder
    assert runs.runs_root(runs.EXAMPLES_DIR / "lenet5.json") == tmp_path / "data" / "lenet5"
    assert runs.runs_root(None, "My net / v2") == tmp_path / "data" / "My_net_v2"
    assert runs.runs_root(None, "") == tmp_path / "data" / "untitled"
    a, b = runs.new_run_dir(tmp_path / "r"), runs.new_run_dir(tmp_path / "r")
    assert a != b and a.is_dir() and b.is_dir() and not any(a.iterdir())


# ---- minor -------------------------------------------------------------------------------
def test_rmsprop_uses_the_momentum_setting():
    doc = mlp(hidden=(16,))
    losses = {}
    for m in (0.0, 0.9):
        t = Trainer(doc, cfg(optimizer="rmsprop", momentum=m, epochs=1))
        t.fit()
        assert t.optimizer.param_groups[0]["momentum"] == m
        losses[m] = list(t.step_losses)
    assert losses[0.0][0] == losses[0.9][0] and losses[0.0][1:] != losses[0.9][1:]


def test_freezing_a_block_freezes_every_layer_inside_it():
    doc = mlp(hidden=(16,))
    bid = blocks.group(doc, ["h1", "a1"])
    t = Trainer(doc, cfg(epochs=1, frozen=[bid]))
    t.setup()
    before = {k: v.clone() for k, v in t.module.state_dict().items()}
    assert t.fit()["status"] == "completed"
    after = t.module.state_dict()
    inner = [k for k in before if k.startswith(bid + "__")]
    assert inner and all(torch.equal(before[k], after[k]) for k in inner)
    assert not torch.equal(before["out.weight"], after["out.weight"])
    with pytest.raises(ConfigError, match="'a1x' in the graph"):
        Trainer(doc, cfg(frozen=["a1x"])).setup()
    with pytest.raises(ConfigError, match=r"node 'y' \(Target\) has no parameters"):
        Trainer(doc, cfg(frozen=["y"])).setup()


def test_max_steps_ends_the_run_early(tmp_path, capsys):
    code, _, final = cli(tmp_path, capsys, "--epochs", "5", "--max-steps", "3")
    assert code == 0 and final["steps"] == 3 and final["epochs"] == 1
    assert final["train_loss"] is not None
