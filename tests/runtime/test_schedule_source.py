"""Learning-rate schedules and the optimizer choice exist once (runtime/training/schedule.py):
the Trainer uses them and the exported train.py carries them verbatim, with TrainConfig's
defaults."""
from __future__ import annotations

import inspect
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from runtime import load_graph
from runtime.export.trainscript import resolved_config
from runtime.training import TrainConfig, schedule, trainer

SCHEDULES = ("constant", "step", "plateau", "linear", "cosine", "warmup")


def test_trainer_uses_the_schedule_module():
    assert trainer.get_lr is schedule.get_lr and trainer.make_optimizer is schedule.make_optimizer
    assert "plateau_update(" in inspect.getsource(trainer.Trainer._end_epoch)


@pytest.mark.parametrize("name", SCHEDULES)
def test_train_py_functions_are_the_schedule_modules(name):
    settings = {"schedule": name, "warmup_steps": 3, "final_lr": 0.01, "step_size": 1,
                "gamma": 0.5, "plateau_patience": 0}
    cfg, source = resolved_config(settings)
    for f in schedule.FUNCTIONS:
        assert inspect.getsource(f).strip() in source  # verbatim, no patched copy
    space: dict = {}
    exec(compile("import math, torch\n" + source, "train.py", "exec"), space)
    ns, tc = SimpleNamespace(**cfg), TrainConfig.from_dict(settings)
    assert [space["get_lr"](ns, s, 5, 40) for s in range(40)] == \
        [schedule.get_lr(tc, s, 5, 40) for s in range(40)]
    a = {"plateau_best": math.inf, "plateau_bad": 0, "plateau_scale": 1.0}
    b = dict(a)
    for watch in (1.0, 0.9, 0.95, 0.97, 0.5, 0.6):
        space["plateau_update"](ns, a, watch)
        schedule.plateau_update(tc, b, watch)
    assert a == b


def test_train_py_defaults_are_trainconfigs():
    cfg, _ = resolved_config({})
    assert cfg == TrainConfig().to_dict()
    cfg, _ = resolved_config({"lr": "fast", "epochs": 3})  # an invalid setting: its default
    assert cfg["lr"] == TrainConfig().lr and cfg["epochs"] == 3


@pytest.mark.slow
def test_the_exported_script_compiles_with_the_shared_functions(tmp_path):
    from runtime.export import export

    doc = load_graph(Path(__file__).resolve().parents[2] / "resources" / "examples" / "mlp_spirals.json")
    doc.training = {**doc.training, "schedule": "plateau"}
    export(doc, "python", tmp_path / "py")
    text = (tmp_path / "py" / "train.py").read_text()
    assert inspect.getsource(schedule.plateau_update).strip() in text
    assert "plateau_update(cfg, plateau, watch)" in text


def test_panel_defaults_are_trainconfigs():
    from app.training.panel import OPTIMIZERS, config_defaults

    assert config_defaults() == TrainConfig().to_dict()
    from runtime.training.config import OPTIMIZERS as O

    assert OPTIMIZERS is O
