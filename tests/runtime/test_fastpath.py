"""The trainer's fast path: compile (with a fallback), channels-last, the device and its
memory in the reports, and an out-of-memory stop that names the batch size."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from runtime.cli import main
from runtime.training import TrainConfig, Trainer
from tests.builders import small_cnn

pytestmark = pytest.mark.slow
SPIRALS = Path(__file__).resolve().parents[2] / "resources" / "examples" / "mlp_spirals.json"


def _cfg(**kw):
    return TrainConfig.from_dict({"dataset": "digits?size=12&channels=3", "batch_size": 32,
                                  "epochs": 1, "seed": 1, "visualize_every": 10**6, **kw})


def _doc():
    return small_cnn(3, 12, 12, 10)


def test_channels_last_trains_like_the_default_layout():
    a = Trainer(_doc(), _cfg(), device="cpu", max_steps=8).fit()
    b = Trainer(_doc(), _cfg(channels_last=True), device="cpu", max_steps=8).fit()
    assert a["status"] == b["status"] == "completed"
    assert abs(a["train_loss"] - b["train_loss"]) < 1e-4


def test_compile_falls_back_with_a_warning(monkeypatch):
    def broken(model, **kw):
        raise RuntimeError("no compiler for this platform\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    events = []
    final = Trainer(_doc(), _cfg(compile=True), device="cpu", max_steps=3,
                    on_event=events.append).fit()
    assert final["status"] == "completed" and final["steps"] == 3
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("torch.compile is not available here (RuntimeError: no compiler for this "
               "platform); training uncompiled" in w for w in warnings), warnings


def test_reports_name_the_device_and_its_memory(tmp_path, capsys):
    code = main(["train", str(SPIRALS), "--max-steps", "3",
                 "--quiet", "--out", str(tmp_path / "r")])
    out = capsys.readouterr()
    rows = [json.loads(x) for x in out.out.strip().splitlines()]
    assert code == 0 and rows[-1]["device"] == "cpu" and rows[-1]["memory_mb"] > 10
    assert rows[0]["memory_mb"] > 10  # the epoch line too
    assert "training on cpu" in out.err


def test_cli_fast_path_flags_reach_the_config(tmp_path, capsys):
    code = main(["train", str(SPIRALS), "--max-steps", "2", "--quiet",
                 "--channels-last", "--amp", "--out", str(tmp_path / "r")])
    capsys.readouterr()
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert code == 0 and cfg["channels_last"] and cfg["amp"] and not cfg["compile"]


def test_out_of_memory_names_the_batch_size_and_keeps_the_checkpoint(tmp_path):
    t = Trainer(_doc(), _cfg(epochs=3), device="cpu", out_dir=tmp_path / "run")
    t.setup()
    real = t.module.forward
    calls = {"n": 0}

    def forward(*args):
        calls["n"] += 1
        if calls["n"] > t.n_batches + 3 and t.module.training:  # in the second epoch
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args)

    t.module.forward = forward
    final = t.fit()
    assert final["status"] == "error"
    msg = final["error"]
    assert "batch size 32" in msg and "--batch-size 16" in msg
    assert "epoch0001.pt" in msg and (tmp_path / "run" / "checkpoints" / "epoch0001.pt").exists()
