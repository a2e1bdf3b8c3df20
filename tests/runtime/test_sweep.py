"""Sweeps with Optuna: bad input named plainly, a learning-rate sweep that finds a good
trial, parameter counts of a structure sweep, failing trials recorded with their reason,
and a killed sweep that resumes from its database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.serialization import save_graph
from tests.runtime.test_experiments_runs import cfg, mlp

pytest.importorskip("optuna", reason="sweeps need the optional extra 'sweep' (Optuna); scripts/setup.sh installs it")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


def tiny_file(tmp_path, **training) -> Path:
    doc = mlp()
    doc.set_training(cfg(**training).to_dict())
    path = tmp_path / "tiny.json"
    save_graph(doc, path)
    return path


@pytest.mark.parametrize("param, says", [
    ("dense9.units=4..8", "no node 'dense9' in the graph (did you mean 'dense1'?)"),
    ("dense1.unit=4..8", "node dense1 (Dense) has no parameter 'unit' (did you mean 'units'?)"),
    ("lrr=0.1..1", "no training setting or node parameter 'lrr' (did you mean 'lr'?)"),
    ("lr=0.1..0.01", "empty range"),
    ("lr=0..1:log", "a log range must be above 0"),
    ("dense1.units=0..8", "0 is refused by dense1.units"),
    ("optimizer=adam,nadam", "'nadam' is refused"),
    ("batch_size=16..64.5", "batch_size takes whole numbers"),
    ("lr", "expected NAME=LOW..HIGH"),
])
def test_bad_parameters_get_a_plain_message_naming_the_argument(tmp_path, capsys, param, says):
    code = main(["sweep", str(tiny_file(tmp_path)), "--param", param, "--out",
                 str(tmp_path / "sweep")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"--param {param}" in err and says in err, err


def test_other_bad_arguments(tmp_path, capsys):
    f = str(tiny_file(tmp_path))
    for args, says in ((["--trials", "0"], "--trials must be at least 1"),
                       (["--jobs", "0"], "--jobs must be at least 1"),
                       ([], "no --param given"),
                       (["--objective", "speed"], "--objective 'speed'")):
        code = main(["sweep", f, *(["--param", "lr=0.01..0.1"] if args != [] else []), *args])
        err = capsys.readouterr().err
        assert code == 1 and says in err, err


@pytest.mark.slow
def test_a_learning_rate_sweep_on_spirals_finds_a_trial_above_97_percent(tmp_path, capsys):
    code = main(["sweep", str(EXAMPLES / "mlp_spirals.json"), "--param", "lr=1e-3..1e-1:log",
                 "--trials", "8", "--epochs", "8", "--jobs", "2", "--out",
                 str(tmp_path / "sweep"), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    import json

    result = json.loads(out.out)
    trials = result["trials"]
    assert len(trials) == 8 and len({t["values"]["lr"] for t in trials}) == 8
    assert max(t["val_accuracy"] or 0 for t in trials) >= 0.97
    best = result["best"]
    assert best["val_accuracy"] >= 0.95 and best["state"] == "complete"
    assert (tmp_path / "sweep" / "study.db").exists()
    assert (Path(best["folder"]) / "weights.safetensors").exists()  # a real run folder


@pytest.mark.slow
def test_a_structure_sweep_records_parameter_counts_and_failures(tmp_path):
    from runtime.experiments.sweep import Sweep

    f = tiny_file(tmp_path, epochs=2, batch_size=50, optimizer="sgd")
    sweep = Sweep(f, ["dense1.units=4..64:int", "x.features=2,3", "lr=0.01,1e38"], trials=4,
                  folder=tmp_path / "sweep", prune=False)
    # fixed values for the first trials: two sound ones, a structure the data does not fit,
    # a learning rate that makes the loss blow up
    for values in ({"dense1.units": 4, "x.features": 2, "lr": 0.01},
                   {"dense1.units": 40, "x.features": 2, "lr": 0.01},
                   {"dense1.units": 8, "x.features": 3, "lr": 0.01},
                   {"dense1.units": 8, "x.features": 2, "lr": 1e38}):
        sweep.study.enqueue_trial(values)
    updates = []
    sweep.run(lambda t: updates.append((t.number, t.state)))
    infos = {t.number: t for t in sweep.trial_infos()}
    assert [infos[i].state for i in range(4)] == ["complete", "complete", "failed", "failed"]
    for i, units in ((0, 4), (1, 40)):  # x(2) -> dense1(u) -> out(2): 2u + u + 2u + 2
        assert infos[i].params == 5 * units + 2
    assert infos[2].params == 3 * 8 + 8 + 8 * 2 + 2
    assert "input node x expects (3)" in infos[2].error, infos[2].error
    assert "loss became" in infos[3].error or "nan" in infos[3].error.lower(), infos[3].error
    assert (0, "running") in updates and (0, "complete") in updates  # shown live
    from runtime.experiments.index import find_runs

    runs = {r.id: r for r in find_runs(tmp_path / "sweep")}
    assert runs["trial-0001"].params == 5 * 40 + 2 and runs["trial-0001"].sweep["trial"] == 1


@pytest.mark.slow
def test_a_killed_sweep_resumes_from_its_database(tmp_path, capsys):
    import optuna

    f = tiny_file(tmp_path, epochs=3, batch_size=50)
    out = tmp_path / "sweep"
    args = ["sweep", str(f), "--param", "lr=1e-3..1e-1:log", "--trials", "5", "--out", str(out),
            "--no-prune", "--apply-best", str(tmp_path / "best.json")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "runtime", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    storage = f"sqlite:///{out / 'study.db'}"
    deadline = time.monotonic() + 240
    done = []
    try:
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if proc.poll() is not None:
                pytest.fail(f"the sweep ended before it was killed: {proc.stderr.read()!r}")
            try:
                trials = optuna.load_study(study_name="sweep", storage=storage).get_trials()
            except Exception:  # noqa: BLE001 - the database is not there yet
                continue
            done = [t for t in trials if t.state.is_finished()]
            if len(done) >= 2:
                break
        os.kill(proc.pid, signal.SIGKILL)  # the sweep process itself, mid-sweep
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(done) >= 2
    kept = {t.number: t.value for t in done}

    code = main(args)  # the same command again resumes
    err = capsys.readouterr().err
    assert code == 0, err
    assert "done before: resuming" in err
    study = optuna.load_study(study_name="sweep", storage=storage)
    trials = study.get_trials()
    ended = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("interrupted")]
    assert len(ended) == 5
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    for number, value in kept.items():  # the trials before the kill are kept as they were
        assert trials[number].value == value
    from runtime.serialization import load_graph

    best = min((t for t in ended if t.value is not None), key=lambda t: t.value)
    assert load_graph(tmp_path / "best.json").training["lr"] == best.params["lr"]  # --apply-best
    for t in trials:
        if t.user_attrs.get("interrupted"):  # a trial the kill cut short ran again
            assert any(u.params == t.params and u.number > t.number and u.state.is_finished()
                       for u in ended)
