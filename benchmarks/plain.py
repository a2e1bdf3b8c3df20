"""What a practitioner would write by hand, for side-by-side measurements: the exported
model.py, a DataLoader over the same arrays, Adam, the same batch size.

Shared by bench_parity.py and gpu_suite.py. Imports only torch, numpy and the repo.
"""
from __future__ import annotations

import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def exported_model(doc, folder: str | Path | None = None) -> torch.nn.Module:
    """Export ``doc`` as model.py and instantiate its class (fresh weights)."""
    from runtime.export import export

    folder = Path(folder or tempfile.mkdtemp(prefix="nb_plain_")) / "model"
    export(doc, "python", folder)
    name = f"nb_model_{abs(hash(str(folder)))}"
    spec = importlib.util.spec_from_file_location(name, folder / "model.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    cls = next(v for v in vars(mod).values() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and hasattr(v, "compute_losses"))
    return cls()


def arrays(doc, spec: str, val_split: float, seed: int = 0):
    """(train inputs+targets, val inputs+targets) as normalised numpy arrays, the way a
    script would prepare them (the trainer's split and statistics)."""
    from runtime.data import bind, load_dataset, normalisation, split

    ds = load_dataset(spec, doc, seed=seed)
    train, val, _ = split(ds, val_split, 0.0, seed)
    tx, ty = bind(train, doc)
    stats = normalisation(tx)
    vx, vy = bind(val, doc) if val is not None else ([], [])
    norm = lambda xs: [(x - s[0]) / s[1] if s is not None else x for x, s in zip(xs, stats)]  # noqa: E731
    return norm(tx) + ty, norm(vx) + vy


def train_plain(model, train, val, n_inputs: int, batch_size: int, lr: float, epochs: int,
                device: str, amp: bool = False, compile: bool = False, workers: int = 0,
                seed: int = 0) -> dict:
    """Train with a plain loop; returns seconds of training, samples/s and validation
    accuracy after each epoch (first output, argmax over classes)."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = model.to(dev)
    ds = torch.utils.data.TensorDataset(*[torch.from_numpy(np.ascontiguousarray(a)) for a in train])
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True,
                                         num_workers=workers, pin_memory=dev.type == "cuda",
                                         drop_last=False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step_fn = torch.compile(model.compute_losses) if compile else model.compute_losses
    amp_dtype = (torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported()
                 else torch.float16) if amp and dev.type == "cuda" else None
    accs, seconds, samples = [], 0.0, 0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for batch in loader:
            batch = [t.to(dev, non_blocking=True) for t in batch]
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = step_fn(*batch)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.float().backward()
            opt.step()
            samples += len(batch[0])
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        accs.append(accuracy(model, val, n_inputs, batch_size * 4, dev))
    return {"seconds": seconds, "samples_per_s": samples / max(seconds, 1e-9), "val_accuracy": accs}


@torch.no_grad()
def accuracy(model, val, n_inputs: int, batch_size: int, dev) -> float | None:
    if not val:
        return None
    model.eval()
    correct = total = 0
    for i in range(0, len(val[0]), batch_size):
        b = [torch.from_numpy(np.ascontiguousarray(a[i:i + batch_size])).to(dev) for a in val]
        out = model(*b[:n_inputs])
        pred = (out[0] if isinstance(out, (tuple, list)) else out).argmax(-1)
        correct += int((pred == b[n_inputs]).sum())
        total += len(b[n_inputs])
    model.train()
    return correct / total if total else None


def train_netbuilder(doc, spec: str, epochs: int, device: str, **cfg) -> dict:
    """Train with Netbuilder's Trainer (its defaults, plus ``cfg``); seconds of training
    (from the first step's start to the last step's end, evaluation excluded, as in
    train_plain), samples/s and validation accuracy per epoch."""
    from runtime.training import TrainConfig, Trainer

    config = TrainConfig.from_dict({**(doc.training or {}), "dataset": spec, "epochs": epochs,
                                    "early_stopping": 0, "device": device, **cfg})
    marks: dict = {"t": None, "train": 0.0, "samples": 0, "acc": []}

    def on_event(e):
        if e["event"] == "started":
            marks["t"] = time.perf_counter()
        elif e["event"] == "epoch":
            marks["acc"].append(e.get("val_accuracy"))

    t = Trainer(doc, config, on_event=on_event)
    t.setup()
    loop_epoch = t._end_epoch  # time the training steps only: stop the clock at each epoch end

    def end_epoch(epoch, *a):
        if t.device.type == "cuda":
            torch.cuda.synchronize()
        marks["train"] += time.perf_counter() - marks["t"]
        marks["samples"] += t.n_train
        status = loop_epoch(epoch, *a)
        marks["t"] = time.perf_counter()
        return status

    t._end_epoch = end_epoch
    final = t.fit()
    if final["status"] != "completed":
        raise RuntimeError(final.get("error") or final["status"])
    return {"seconds": marks["train"], "samples_per_s": marks["samples"] / max(marks["train"], 1e-9),
            "val_accuracy": marks["acc"], "trainer": t}


def fmt(x, digits=3):
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"
