"""TensorBoard event files of a run, read back with TensorBoard's own reader; without the
tensorboard package training is unchanged."""
from __future__ import annotations

import sys

import pytest

from runtime.training import Trainer
from tests.runtime.test_experiments_runs import cfg, mlp


@pytest.mark.slow
def test_event_files_hold_the_loss_curve_gradient_norms_histograms_and_settings(tmp_path):
    pytest.importorskip("tensorboard", reason="event files need the optional extra 'tensorboard'; scripts/setup.sh installs it (training without it is tested below)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    losses = []
    trainer = Trainer(mlp(), cfg(epochs=2, batch_size=50, instrument_every=4,
                                 visualize_every=8), out_dir=out,
                      on_event=lambda e: losses.append(e["loss"]) if e["event"] == "step" else None)
    final = trainer.fit()
    assert final["status"] == "completed"
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    curve = acc.Scalars("train/loss")
    assert [e.step for e in curve] == list(range(final["steps"]))
    assert [e.value for e in curve] == pytest.approx(losses, rel=1e-6)
    assert curve[-1].value < curve[0].value  # it learned
    assert [e.step for e in acc.Scalars("epoch/val_loss")] == [1, 2]
    assert acc.Scalars("epoch/val_accuracy")[-1].value == pytest.approx(final["val_accuracy"])
    assert {"grad_norm/dense1", "grad_norm/out"} <= set(tags["scalars"])
    assert len(acc.Scalars("grad_norm/dense1")) == (final["steps"] + 3) // 4
    assert {"weights/dense1", "weights/out"} <= set(tags["histograms"])
    h = acc.Histograms("weights/dense1")[0].histogram_value
    assert h.num == 2 * 8 + 8  # every weight and bias of the layer
    from tensorboard.plugins.hparams import plugin_data_pb2

    hp = {k: plugin_data_pb2.HParamsPluginData.FromString(v)
          for k, v in acc.PluginTagToContent("hparams").items()}
    start = hp["_hparams_/session_start_info"].session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(0.01)
    assert start.hparams["dataset"].string_value == "moons"
    assert "_hparams_/session_end_info" in hp


def test_without_tensorboard_training_works_unchanged(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    out = tmp_path / "run"
    final = Trainer(mlp(), cfg(), out_dir=out).fit()
    assert final["status"] == "completed"
    assert not (out / "tensorboard").exists()
    assert (out / "run.json").exists() and (out / "metrics.jsonl").exists()


@pytest.mark.slow
def test_a_resumed_run_continues_its_record_and_event_files(tmp_path):
    pytest.importorskip("tensorboard", reason="event files need the optional extra 'tensorboard'; scripts/setup.sh installs it (training without it is tested below)")
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from runtime.experiments import index

    out = tmp_path / "run"
    first = Trainer(mlp(), cfg(epochs=2, batch_size=50), out_dir=out).fit()
    index.rename(out, "kept name")
    final = Trainer(mlp(), cfg(epochs=3, batch_size=50), out_dir=out,
                    resume=out / "checkpoints" / "epoch0002.pt").fit()
    assert final["status"] == "completed" and final["steps"] == first["steps"] * 3 // 2
    info = json.loads((out / "run.json").read_text())
    assert info["name"] == "kept name" and info["resumed_at_step"] == first["steps"]
    assert info["epochs"] == 3 and info["status"] == "completed"
    steps = [json.loads(x)["step"] for x in (out / "steps.jsonl").read_text().splitlines()]
    assert steps == list(range(final["steps"]))  # no step twice, none missing
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] \
        == [1, 2, 3]
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(final["steps"]))
    assert [e.step for e in acc.Scalars("epoch/val_loss")] == [1, 2, 3]
