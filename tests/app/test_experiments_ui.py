"""The Runs panel (overlaid curves of real runs, rename, note, delete with undo, use a
run's weights) and the Sweep dialog (a real sweep, live views, apply best as one undo
step), in the real main window."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.window import MainWindow
from runtime.serialization import save_graph
from runtime.training import Trainer
from tests.runtime.test_experiments_runs import cfg, mlp

pytestmark = pytest.mark.timeout(300)


class Prompts:
    def error(self, *a):
        raise AssertionError(f"unexpected error prompt: {a}")

    def unsaved(self, name):
        return "discard"

    def recover(self, *a):
        return False


@pytest.fixture
def window(qtbot, tmp_path):
    doc = mlp()
    doc.set_training(cfg(epochs=2, batch_size=50).to_dict())
    save_graph(doc, tmp_path / "net.json")
    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   recovery_dir=tmp_path / "recovery", prompts=Prompts())
    qtbot.addWidget(w)
    assert w.open_path(tmp_path / "net.json", ask_save=False)
    yield w
    w.training_ui.controller.shutdown()


def two_runs(tmp_path) -> Path:
    root = tmp_path / "runs" / "net"  # where the editor keeps this graph's runs
    for name, lr in (("r1", 0.01), ("r2", 0.05)):
        doc = mlp()
        Trainer(doc, cfg(epochs=3, batch_size=50, lr=lr), out_dir=root / name).fit()
    return root


@pytest.mark.slow
def test_runs_panel_overlays_runs_and_renames_notes_deletes_and_uses_weights(window, tmp_path):
    root = two_runs(tmp_path)
    panel = window.runs_ui.ensure_built()
    window.runs_ui.refresh()
    assert panel.root == root
    assert [r.name for r in panel.runs] == ["r1", "r2"]
    assert panel.table.rowCount() == 2 and panel.table.item(1, 9).text() == "lr 0.01 -> 0.05"
    panel.select(["r1", "r2"])
    assert set(panel.drawn) == {"r1", "r2"}  # one curve per run
    assert panel.drawn["r1"][0] == [1.0, 2.0, 3.0]
    assert panel.drawn["r1"][1] != panel.drawn["r2"][1]
    assert len(panel.legend.items) == 2
    panel.metric.setCurrentIndex([k for _, k in __import__(
        "app.experiments.runs_panel", fromlist=["METRICS"]).METRICS].index("step_lr"))
    assert panel.drawn["r2"][1][0] == pytest.approx(0.05)

    panel.select(["r1"])
    panel.ask_text = lambda *a: "baseline"
    panel.rename_selected()
    assert json.loads((root / "r1" / "run.json").read_text())["name"] == "baseline"
    panel.select(["baseline"])
    panel.ask_text = lambda *a: "the default rate"
    panel.note_selected()
    assert panel.runs[0].note == "the default rate"

    panel.select(["r2"])  # use its weights: the next run's initial weights, one undo step
    before = window.undo_stack.count()
    panel.use_weights()
    assert window.document.training["init_weights"] == str(root / "r2" / "weights.safetensors")
    assert window.training_ui.last_weights == root / "r2" / "weights.safetensors"
    assert window.undo_stack.count() == before + 1
    window.undo_stack.undo()
    assert window.document.training.get("init_weights") is None

    panel.select(["r2"])
    panel.delete_selected()
    assert [r.name for r in panel.runs] == ["baseline"] and not (root / "r2").exists()
    panel.undo_delete()
    assert [r.name for r in panel.runs] == ["baseline", "r2"] and (root / "r2").exists()


@pytest.mark.slow
def test_sweep_dialog_runs_a_sweep_live_and_applies_the_best_as_one_undo_step(window, qtbot,
                                                                               tmp_path):
    dlg = window.runs_ui.open_sweep()
    while dlg.params.rowCount():
        dlg.params.removeRow(0)
    dlg.add_param("dense1.units", "4..32:int")
    dlg.add_param("lr", "0.01,0.05")
    assert dlg.param_texts() == ["dense1.units=4..32:int", "lr=0.01,0.05"]
    dlg.trials_spin.setValue(3)
    dlg.epochs_spin.setValue(2)
    dlg.folder = tmp_path / "sweep"
    seen_running = []
    dlg.trial_updated.connect(lambda t: seen_running.append(t.state))
    assert dlg.start()
    qtbot.waitUntil(lambda: not dlg.running, timeout=240_000)
    qtbot.wait(50)  # the queued "ended" signal
    assert "running" in seen_running  # shown live, before trials ended
    assert dlg.table.rowCount() == 3
    assert dlg.best is not None and dlg.apply_button.isEnabled()
    scatter_plots = [dlg.scatter.getItem(0, i) for i in range(2)]
    shown = sum(t.state == "complete" or (t.state == "pruned" and t.val_loss is not None)
                for t in dlg.trials.values())
    for p in scatter_plots:  # one point per trial (completed, best, pruned: one item each)
        assert sum(len(i.points()) for i in p.items if hasattr(i, "points")) == shown
    lines = [i for i in dlg.parallel.getPlotItem().items if hasattr(i, "xData")]
    assert len(lines) == sum(t.state in ("complete", "pruned") for t in dlg.trials.values())

    best = dlg.best.values
    doc = window.document
    before = window.undo_stack.count()
    assert dlg.apply_best()
    assert window.undo_stack.count() == before + 1  # one undo step
    assert doc.nodes["dense1"].params["units"] == best["dense1.units"]
    assert doc.training["lr"] == best["lr"]
    window.undo_stack.undo()
    assert doc.nodes["dense1"].params["units"] == 8 and doc.training["lr"] == 0.01
    assert (tmp_path / "sweep" / "study.db").exists()


def test_sweep_dialog_names_a_bad_parameter(window):
    dlg = window.runs_ui.open_sweep()
    dlg.add_param("dense9.units", "4..8")
    assert not dlg.start()
    assert "no node 'dense9'" in dlg.status.text()
    assert not dlg.running


@pytest.mark.slow
def test_a_run_from_the_train_panel_appears_in_the_runs_dock_when_it_ends(window, qtbot, tmp_path):
    panel = window.runs_ui.ensure_built()
    assert panel.runs == []
    ui = window.training_ui
    ui.start()
    qtbot.waitUntil(lambda: ui.controller.state in ("finished", "failed"), timeout=120_000)
    assert ui.controller.state == "finished"
    qtbot.waitUntil(lambda: len(panel.runs) == 1, timeout=5_000)
    run = panel.runs[0]
    assert run.status == "completed" and run.epochs == 2 and run.params == 42
    assert run.path.parent == tmp_path / "runs" / "net"
    import importlib.util

    has_tb = importlib.util.find_spec("tensorboard") is not None
    assert (run.path / "tensorboard").is_dir() == has_tb
