"""The panel's progress line: steps counted from 1 like the total, the device and its peak
memory, and no stale 'starting' line after a run that failed before its first step."""
from app.training.panel import TrainingPanel


def test_last_step_reads_as_the_total_with_device_and_memory(qtbot):
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.set_state("starting")
    p.on_events([{"event": "started", "total_steps": 1000, "steps_per_epoch": 100, "epochs": 10,
                  "device": "cuda:0 (NVIDIA H200, 139 GB)", "params": 1000},
                 {"event": "epoch", "epoch": 1, "memory_mb": 1234.5}])
    p.on_events([{"event": "step", "step": 999, "epoch": 10, "batch": 100, "loss": 0.5,
                  "samples_per_s": 100.0}])
    p.set_state("finished")
    assert "step 1000/1000" in p.progress_label.text()
    assert "step 999" not in p.progress_label.text()
    assert "cuda:0 (NVIDIA H200" in p.status_label.text() and "1,234 MB" in p.status_label.text()


def test_a_run_failing_while_starting_leaves_no_starting_line(qtbot):
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.set_state("starting")
    p.set_state("failed")
    assert "starting" not in p.progress_label.text()
    assert p.progress_label.text() == "failed before the first step"
