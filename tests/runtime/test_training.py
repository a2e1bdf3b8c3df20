"""Real short training runs on CPU: accuracy targets, exact resume, determinism, failures,
optimizers and schedules, clipping, control, transfer learning, the train CLI."""
from __future__ import annotations

import collections
import json
import math
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from runtime.graph import GraphDocument
from runtime.serialization import load_graph, save_graph
from runtime.training import Control, TrainConfig, Trainer
from runtime.training.checkpoint import load_checkpoint, save_weights
from runtime.training.config import OPTIMIZERS, SCHEDULES, ConfigError
from runtime.training.trainer import get_lr
from tests.builders import mlp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
CLI = [sys.executable, "-c", "import sys; from runtime.cli import main; sys.exit(main())"]


def cfg(**kw) -> TrainConfig:
    base = dict(dataset="xor", epochs=2, batch_size=32, threads=1, lr=0.01)
    base.update(kw)
    return TrainConfig(**base)


def run(doc, config, **kw):
    events = []
    t = Trainer(doc, config, on_event=events.append, **kw)
    final = t.fit()
    return t, final, events


def of(events, kind):
    return [e for e in events if e["event"] == kind]


# ---- accuracy targets ---------------------------------------------------
def example(stem: str) -> tuple[GraphDocument, TrainConfig]:
    """A gallery example with its own training section (single-threaded for the test)."""
    doc = load_graph(EXAMPLES / f"{stem}.json")
    config = TrainConfig.from_dict(doc.training)
    config.threads = 1
    return doc, config


@pytest.mark.slow
def test_mlp_spirals_example_learns_two_spirals():
    doc, config = example("mlp_spirals")
    assert config.dataset == "spirals"
    t, final, events = run(doc, config)
    assert final["status"] == "completed"
    assert t.evaluate("train")["accuracy"] >= 0.99
    steps = of(events, "step")
    assert len(steps) == final["steps"] and steps[-1]["loss"] < steps[0]["loss"] / 10


def _digits_cnn() -> GraphDocument:
    return example("digits_cnn")[0]


@pytest.mark.slow
def test_digits_cnn_example_reaches_95_percent_validation_accuracy():
    doc, config = example("digits_cnn")
    assert config.dataset == "digits"
    t, final, events = run(doc, config)
    assert final["val_accuracy"] >= 0.95, final
    last = of(events, "epoch")[-1]
    conf = np.array(last["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == round(1797 * 0.2)
    assert np.trace(conf) / conf.sum() == pytest.approx(final["val_accuracy"])
    labels = t.dataset.targets[0]  # indices point into the whole dataset
    for m in last["misclassified"]:
        assert m["label"] != m["pred"] and labels[m["index"]] == m["label"]
    maps = of(events, "feature_maps")[-1]
    first_conv = next(n for n in t.doc.nodes if t.doc.nodes[n].type == "Conv2d")
    assert maps["node"] == first_conv and maps["maps"].ndim == 3 and maps["maps"].dtype == np.float32
    assert of(events, "filters")[-1]["weights"].shape[1:] == (1, 3, 3)
    counts, edges = of(events, "histograms")[-1]["activations"]
    assert len(edges) == len(counts) + 1 and counts.sum() > 0


def char_lstm(steps=32, vocab=64) -> GraphDocument:
    d = GraphDocument("char_lstm")
    d.add_node("TokenInput", {"steps": steps, "vocab_size": vocab}, node_id="chars")
    d.add_node("Embedding", {"num_embeddings": vocab, "dim": 24}, node_id="embed")
    d.add_node("LSTM", {"hidden_size": 96}, node_id="lstm")
    d.add_node("Dense", {"units": vocab}, node_id="logits")
    d.add_node("Target", {"kind": "class", "shape": [steps], "num_classes": vocab}, node_id="next")
    d.add_node("CrossEntropy", node_id="loss")
    for a, b, port in (("chars", "embed", "ids"), ("embed", "lstm", "x"), ("lstm", "logits", "x"),
                       ("logits", "loss", "pred"), ("next", "loss", "target")):
        d.connect(a, "out", b, port)
    return d


@pytest.mark.slow
def test_char_lstm_beats_unigram_entropy():
    doc = char_lstm()
    t, final, events = run(doc, cfg(dataset="text", epochs=5, val_split=0.1, sample_length=40))
    text = t.dataset.meta["text"]
    counts = collections.Counter(text)
    entropy = -sum(c / len(text) * math.log(c / len(text)) for c in counts.values())  # nats
    assert final["train_loss"] < entropy - 0.5, (final, entropy)
    samples = of(events, "sample_text")
    assert len(samples) == 5 and len(samples[-1]["text"]) == 40
    assert set(samples[-1]["text"]) <= set(text)


# ---- reproducibility ------------------------------------------------------------------------
def test_same_seed_same_losses_other_seed_other_losses():
    a = run(mlp(), cfg(dataset="moons"))[0].step_losses
    b = run(mlp(), cfg(dataset="moons"))[0].step_losses
    c = run(mlp(), cfg(dataset="moons", seed=1))[0].step_losses
    assert a == b and a != c


def test_instrumentation_does_not_change_the_losses():
    doc = _digits_cnn()
    base = dict(dataset="digits", epochs=1, batch_size=128, augment=["flip", "crop"])  # random
    quiet = run(doc, cfg(instrument_every=10**6, visualize_every=10**6, **base))[0]
    busy, _, events = run(doc, cfg(instrument_every=1, visualize_every=1, **base))
    assert len(of(events, "feature_maps")) == len(busy.step_losses) + 1
    assert list(quiet.step_losses) == list(busy.step_losses)


def test_resume_reproduces_uninterrupted_run(tmp_path):
    doc = mlp()
    config = cfg(dataset="moons", epochs=4, optimizer="adamw", schedule="cosine", augment=[])
    doc.add_node("Dropout", {"p": 0.2}, node_id="drop")  # random numbers in the loop
    doc.remove_edge(next(e for e in doc.edges if e.source == "a2"))
    doc.connect("a2", "out", "drop", "x")
    doc.connect("drop", "out", "out", "x")
    full, final, _ = run(doc, config, out_dir=tmp_path / "full")

    control = Control()
    stop_after_2 = lambda e: control.stop() if e["event"] == "epoch" and e["epoch"] == 2 else None  # noqa: E731
    part = Trainer(doc, config, out_dir=tmp_path / "part", on_event=stop_after_2, control=control)
    assert part.fit()["status"] == "stopped"
    ckpt = tmp_path / "part" / "checkpoints" / "epoch0002.pt"
    state = torch.load(ckpt, weights_only=True)  # a plain dict, no code
    assert state["epoch"] == 2 and state["config"]["optimizer"] == "adamw"
    resumed, final2, events = run(doc, config, out_dir=tmp_path / "part", resume=ckpt)
    half = len(full.step_losses) // 2
    assert list(resumed.step_losses) == list(full.step_losses)[half:]  # exactly equal
    assert of(events, "step")[0]["step"] == half
    assert final2["val_loss"] == final["val_loss"]
    weights, _ = load_checkpoint(tmp_path / "full")  # newest in the folder
    for k, v in full.module.state_dict().items():
        assert torch.equal(weights[k], v)


# ---- failures -----------------------------------------------------------------------------
def test_nan_loss_stops_with_step_and_last_checkpoint(tmp_path):
    doc = mlp(features=1, classes=1, loss="SquaredError", act="ReLU")
    config = cfg(dataset="regression", epochs=6, optimizer="sgd", lr=1e-3, schedule="step",
                 step_size=1, gamma=1e5, log_every=3)  # lr 1e-3, then 100, then 1e7: diverges
    t, final, events = run(doc, config, out_dir=tmp_path)
    assert final["status"] == "error"
    err = of(events, "error")[0]
    assert err["step"] is not None and f"at step {err['step']}" in err["message"]
    assert err["checkpoint"] and Path(err["checkpoint"]).exists()
    assert err["checkpoint"] in err["message"] and "learning rate" in err["message"]
    assert all(math.isfinite(e["loss"]) for e in of(events, "step"))
    assert of(events, "step")[-1]["step"] == err["step"] - 1
    assert of(events, "finished")[0]["metrics"]["status"] == "error"


def test_out_of_memory_is_caught_with_advice():
    events = []
    t = Trainer(mlp(), cfg(epochs=3), on_event=events.append)
    t.setup()
    calls = []

    def fail_on_third_forward(*_):
        calls.append(1)
        if len(calls) == 3:  # (1: probe at step 0, 2: step 0, 3: step 1) fail as CUDA would
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    t.module.h1.register_forward_hook(fail_on_third_forward)
    final = t.fit()
    assert final["status"] == "error"
    msg = of(events, "error")[0]["message"]
    assert "out of GPU memory at step 1" in msg and "smaller batch size" in msg


def test_config_round_trip_and_values_from_text_boxes():
    c = TrainConfig(optimizer="nesterov", schedule="warmup", augment=["flip"], frozen=["h1"])
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    c = TrainConfig.from_dict({"augment": "flip, crop", "frozen": "[]", "probe_node": "",
                               "lr": 1, "epochs": 3.0})
    assert (c.augment, c.frozen, c.probe_node, c.lr, c.epochs) == (["flip", "crop"], [], None, 1.0, 3)
    with pytest.raises(ConfigError, match="'epochs'.*whole number"):
        TrainConfig.from_dict({"epochs": 2.5})
    with pytest.raises(ConfigError, match="'val_split'"):
        TrainConfig.from_dict({"val_split": 1.5})


def test_bad_config_and_data_are_reported_as_events():
    with pytest.raises(ConfigError, match="'optimiser'.*did you mean 'optimizer'"):
        TrainConfig.from_dict({"optimiser": "adam"})
    with pytest.raises(ConfigError, match="'lr'.*expected a number"):
        TrainConfig.from_dict({"lr": "fast"})
    with pytest.raises(ConfigError, match="'schedule'.*expected one of"):
        TrainConfig.from_dict({"schedule": "sometimes"})
    _, final, events = run(mlp(), cfg(dataset="digits"))
    assert final["status"] == "error"
    assert "dataset digits gives (1, 8, 8) per sample, input node x expects (2)" in \
        of(events, "error")[0]["message"]
    _, final, _ = run(mlp(), cfg(frozen=["nope"]))
    assert "'frozen'" in final["error"] and "nope" in final["error"]


# ---- optimisation -------------------------------------------------------------------------
def test_every_optimizer_and_schedule_runs():
    for opt in OPTIMIZERS:
        _, final, _ = run(mlp(), cfg(optimizer=opt, epochs=1, weight_decay=1e-4, l1=1e-5))
        assert final["status"] == "completed" and math.isfinite(final["train_loss"]), opt
    for sched in SCHEDULES:
        _, final, events = run(mlp(), cfg(schedule=sched, epochs=3, step_size=1, gamma=0.5,
                                          warmup_steps=3, plateau_patience=0))
        assert final["status"] == "completed", sched
        lrs = [e["lr"] for e in of(events, "step")]
        assert all(0 <= lr <= 0.01 + 1e-12 for lr in lrs), sched


def test_augmented_image_training_runs():
    _, final, events = run(_digits_cnn(), cfg(dataset="digits", epochs=1, augment=["flip", "crop",
                                                                                  "jitter", "affine"]))
    assert final["status"] == "completed" and final["val_accuracy"] > 0.3


def test_schedule_formulas():
    c = TrainConfig(lr=1.0, schedule="linear", final_lr=0.1, decay_steps=10)
    assert get_lr(c, 0, 5, 100) == 1.0 and get_lr(c, 5, 5, 100) == pytest.approx(0.55)
    assert get_lr(c, 10, 5, 100) == pytest.approx(0.1) == get_lr(c, 50, 5, 100)
    c = TrainConfig(lr=1.0, schedule="step", step_size=2, gamma=0.2)
    assert [get_lr(c, s, 5, 100) for s in (0, 9, 10, 20)] == pytest.approx([1, 1, 0.2, 0.04])
    c = TrainConfig(lr=1.0, schedule="warmup", warmup_steps=4, final_lr=0.0)
    assert get_lr(c, 0, 5, 104) == 0.25 and get_lr(c, 4, 5, 104) == 1.0
    assert get_lr(c, 54, 5, 104) == pytest.approx(0.5) and get_lr(c, 104, 5, 104) == pytest.approx(0)


def test_plateau_divides_the_learning_rate():
    _, _, events = run(mlp(), cfg(schedule="plateau", epochs=4, lr=1e-9, gamma=0.2,
                                  plateau_patience=0))
    by_epoch = {e["epoch"]: e["lr"] for e in of(events, "step")}
    assert by_epoch[1] == pytest.approx(1e-9)
    assert by_epoch[4] < by_epoch[1]  # no improvement at lr 1e-9: the rate was divided


def test_clipping_by_norm_reports_the_norm_before_clipping():
    one_batch = dict(epochs=1, batch_size=10_000, val_split=0.0, optimizer="sgd", lr=0.1,
                     log_every=1)
    _, _, free_events = run(mlp(), cfg(**one_batch))
    events = []
    clipped = Trainer(mlp(), cfg(clip_norm=1e-3, **one_batch), on_event=events.append)
    clipped.setup()
    before = [p.detach().clone() for p in clipped.params]
    clipped.fit()
    reported = of(events, "step")[0]["grad_norm"]
    assert reported == of(free_events, "step")[0]["grad_norm"] > 1e-3  # the pre-clip norm
    update = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(clipped.params, before)))
    assert update.item() == pytest.approx(0.1 * 1e-3, rel=1e-3)  # ||lr * clipped g|| = lr * clip_norm


def test_grad_norms_per_node_match_torch():
    t, _, events = run(mlp(), cfg(epochs=1, instrument_every=1, log_every=1, lr=1e-12,
                                  optimizer="sgd"))
    g = of(events, "grad_norms")[-1]
    assert set(g["norms"]) == {"h1", "h2", "out"}
    step = of(events, "step")[g["step"]]
    total = math.sqrt(sum(v ** 2 for v in g["norms"].values()))
    assert total == pytest.approx(step["grad_norm"], rel=1e-4)


def test_frozen_nodes_and_transfer_learning(tmp_path):
    src, _, _ = run(mlp(), cfg(epochs=1))
    save_weights(src.module, tmp_path / "pre.safetensors")
    doc = mlp(classes=3)  # other output size: 'out' cannot load
    t, final, events = run(doc, cfg(dataset="blobs", epochs=1, frozen=["h1"],
                                    init_weights=str(tmp_path / "pre.safetensors")))
    assert final["status"] == "completed"
    assert torch.equal(t.module.h1.weight, src.module.h1.weight)  # loaded and frozen
    assert not torch.equal(t.module.h2.weight, src.module.h2.weight)  # loaded, then trained
    assert t.loaded_nodes == ["h1", "h2"]
    warn = of(events, "warning")
    assert any(w["node"] == "out" for w in warn)


def test_early_stopping():
    _, final, events = run(mlp(), cfg(epochs=20, lr=1e-12, early_stopping=2, optimizer="sgd"))
    assert final["status"] == "early_stopped" and len(of(events, "epoch")) < 20


# ---- control and events -------------------------------------------------------------------
def test_pause_single_step_probe_and_stop_from_another_thread():
    control = Control()
    control.pause()
    events = []
    t = Trainer(mlp(), cfg(epochs=50, log_every=1, visualize_every=1), on_event=events.append,
                control=control)
    th = threading.Thread(target=t.fit)
    th.start()
    try:
        import time

        time.sleep(1.0)
        assert not of(events, "step")  # paused before the first step
        control.set_probe("h2")
        for _ in range(2):
            control.step()
            deadline = time.time() + 10
            while len(t.step_losses) < _ + 1 and time.time() < deadline:
                time.sleep(0.01)
        time.sleep(0.2)
        assert len(of(events, "step")) == 2
        assert of(events, "feature_maps")[-1]["node"] == "h2"
        control.stop()
    finally:
        control.stop()
        th.join(30)
    assert of(events, "finished")[0]["metrics"]["status"] == "stopped"


def test_event_protocol_fields_and_pickling():
    _, _, events = run(mlp(), cfg(epochs=1, visualize_every=5))
    need = {"started": {"total_steps", "steps_per_epoch", "epochs", "device", "params", "nodes"},
            "step": {"step", "epoch", "batch", "loss", "lr", "grad_norm", "samples_per_s"},
            "grad_norms": {"step", "norms"},
            "epoch": {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                      "confusion", "misclassified"},
            "feature_maps": {"step", "node", "maps"}, "histograms": {"step", "node", "weights",
                                                                     "activations"},
            "finished": {"metrics"}}
    for kind, keys in need.items():
        got = of(events, kind)
        assert got, kind
        assert keys <= set(got[0]), (kind, keys - set(got[0]))
    pickle.loads(pickle.dumps(events))
    assert of(events, "started")[0]["nodes"] == ["h1", "h2", "out"]


# ---- headless CLI -------------------------------------------------------------------------
@pytest.mark.slow
def test_train_cli_end_to_end(tmp_path):
    doc = mlp()
    doc.set_training(cfg(dataset="moons", epochs=2).to_dict())
    save_graph(doc, tmp_path / "net.json")
    out = tmp_path / "run"
    proc = subprocess.run([*CLI, "train", str(tmp_path / "net.json"),
                           "--out", str(out), "--epochs", "3", "--seed", "2"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(final)
    assert final["epochs"] == 3 and 0.5 < final["val_accuracy"] <= 1
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    assert (out / "weights.safetensors").exists() and (out / "checkpoints" / "epoch0003.pt").exists()
    assert "epoch 3" in proc.stderr  # the progress bar



def test_train_cli_reports_bad_data_without_traceback(tmp_path, capsys):
    from runtime.cli import main

    doc = mlp()
    doc.set_training(cfg(dataset="moons", epochs=1).to_dict())
    save_graph(doc, tmp_path / "net.json")
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,0\n3,x,1\n")
    code = main(["train", str(tmp_path / "net.json"), "--out", str(tmp_path / "run"), "--quiet",
                 "--data", "csv:bad.csv"])  # relative to the graph file's folder
    err = capsys.readouterr().err
    assert code == 1 and f"{tmp_path / 'bad.csv'}, record 1" in err and "'x'" in err
    assert "Traceback" not in err


def _train_in_child(doc_json: str, config: dict, queue, control) -> None:
    from runtime.serialization import loads

    Trainer(loads(doc_json), TrainConfig.from_dict(config), on_event=queue.put,
            control=control).fit()


@pytest.mark.slow
def test_control_works_across_a_spawned_process():
    import multiprocessing as mp
    import queue as queue_mod

    from runtime.serialization import dumps

    ctx = mp.get_context("spawn")
    control = Control(ctx)
    control.pause()
    q = ctx.Queue()
    config = cfg(epochs=200, log_every=1).to_dict()
    child = ctx.Process(target=_train_in_child, args=(dumps(mlp()), config, q, control))
    child.start()
    seen = []

    def until(pred, timeout=90.0):
        import time

        end = time.time() + timeout
        while time.time() < end:
            try:
                e = q.get(timeout=0.5)
            except queue_mod.Empty:
                continue
            seen.append(e)
            if pred(e):
                return e
        raise AssertionError(f"timed out; last events {[e['event'] for e in seen[-5:]]}")

    try:
        until(lambda e: e["event"] == "started")
        control.step()
        assert until(lambda e: e["event"] == "step")["step"] == 0
        with pytest.raises(queue_mod.Empty):  # paused again after the single step
            while True:
                assert q.get(timeout=1.0)["event"] != "step"
        control.resume()
        until(lambda e: e["event"] == "step" and e["step"] >= 20)
        control.stop()
        final = until(lambda e: e["event"] == "finished")
        assert final["metrics"]["status"] == "stopped"
    finally:
        control.stop()
        child.join(30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


def test_train_cli_resumes_from_a_run_folder(tmp_path, capsys):
    from runtime.cli import main

    doc = mlp()
    doc.set_training(cfg(dataset="moons", epochs=2).to_dict())
    save_graph(doc, tmp_path / "net.json")
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "net.json"), "--out", str(out), "--quiet"]) == 0
    assert main(["train", str(tmp_path / "net.json"), "--out", str(out), "--quiet",
                 "--epochs", "3", "--resume", str(out)]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final["epochs"] == 3 and final["status"] == "completed"
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
