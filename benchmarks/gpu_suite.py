"""One command for a GPU: train three gallery examples there and measure the speed-ups.

    python3 benchmarks/gpu_suite.py [--device cuda] [--out gpu_suite.md]
    python3 benchmarks/gpu_suite.py --device cpu --quick     # the same sections, small (tests)

Sections (each guarded: a failure prints an error row and the others go on):

1. digits_cnn, char_lstm and resnet_small trained on the device from their own training
   sections (epochs capped), and on the CPU the same way: validation accuracies side by
   side, with the device's time and peak memory.
2. trainer vs plain loop: samples/s of Netbuilder's trainer and of a hand-written loop
   (exported model.py, DataLoader, Adam) on resnet_small; alternating, median of rounds.
3. compiled graph vs model.py: training-step throughput of the module Netbuilder builds
   from the graph and of the exported model.py class, same batch.
4. instrumentation on/off: the trainer at its defaults vs with per-node gradient norms,
   probes and feature maps turned off.
5. AMP and 6. torch.compile: training-step throughput with and without (after warm-up).

All data is generated or bundled (nothing is downloaded). Needs only torch, numpy and
this repository. Prints a table and, with ``--out``, writes it as markdown too.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plain  # noqa: E402

from runtime import load_graph  # noqa: E402

EX = plain.ROOT / "resources" / "examples"
ROWS: list[tuple[str, str, str]] = []  # (section, what, result)


def row(section: str, what: str, result: str) -> None:
    ROWS.append((section, what, result))
    print(f"{section:<28} {what:<44} {result}", flush=True)


def guarded(section: str):
    def wrap(fn):
        def run(*a, **kw):
            t0 = time.perf_counter()
            try:
                fn(*a, **kw)
            except Exception as exc:  # noqa: BLE001 - one failing section must not stop the rest
                row(section, "ERROR", f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}")
                traceback.print_exc(limit=3, file=sys.stderr)
            finally:
                print(f"  ({section}: {time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
        return run
    return wrap


def _train(doc, device, epochs, max_steps=None, **cfg):
    from runtime.training import TrainConfig, Trainer

    config = TrainConfig.from_dict({**doc.training, "device": device, "epochs": epochs,
                                    "early_stopping": 0, **cfg})
    t0 = time.perf_counter()
    final = Trainer(doc, config, max_steps=max_steps).fit()
    if final["status"] != "completed":
        raise RuntimeError(final.get("error") or final["status"])
    return final, time.perf_counter() - t0


@guarded("1 training")
def section_training(args):
    for name in ("digits_cnn", "char_lstm", "resnet_small"):
        doc = load_graph(EX / f"{name}.json")
        epochs = 1 if args.quick else min(int(doc.training.get("epochs", 5)), args.max_epochs)
        steps = 3 if args.quick else None
        small = {"val_split": 0.05} if args.quick else {}
        try:
            small["dataset"] = spec = _data(name, args)
            dev, t_dev = _train(doc, args.device, epochs, steps, **small)
            cpu, t_cpu = (dev, t_dev) if args.device == "cpu" else _train(
                doc, "cpu", epochs, steps, **small)
            row("1 training", f"{name} ({epochs} epoch(s), {spec.split(':')[0].split('?')[0]})",
                f"val acc {plain.fmt(dev['val_accuracy'])} on {args.device} "
                f"({t_dev:.1f} s, peak {plain.fmt(dev.get('memory_mb'), 4)} MB) vs "
                f"{plain.fmt(cpu['val_accuracy'])} on cpu ({t_cpu:.1f} s)")
        except Exception as exc:  # noqa: BLE001
            row("1 training", f"{name}", f"ERROR {type(exc).__name__}: {str(exc)[:150]}")


def _small(args) -> dict:
    """--quick: train on about 15% of the set (the rest is held out)."""
    return {"val_split": 0.85} if args.quick else {}


_DATA: dict = {}


def _data(name: str, args) -> str:
    """The example's own dataset spec; generated data of the same shape where that set
    needs scikit-learn (the bundled digits) and it is not installed, and for resnet_small
    with --quick (160 CIFAR-shaped records)."""
    key = (name, args.quick)
    if key in _DATA:
        return _DATA[key]
    import tempfile

    from tests.runtime.data_files import write_cifar, write_idx_pair

    spec = load_graph(EX / f"{name}.json").training["dataset"]
    have_digits = True
    try:
        import sklearn  # noqa: F401
    except ImportError:
        have_digits = False
    folder = Path(tempfile.mkdtemp(prefix="nb_suite_"))
    if name == "resnet_small" and (args.quick or not have_digits):
        spec = f"cifar:{write_cifar(folder, n=(160,) if args.quick else (1800,))}"
    elif spec.startswith("digits") and not have_digits:  # digits_cnn: 1x8x8
        images, labels = write_idx_pair(folder, n=1800)
        spec = f"idx:{images},{labels}?size=8"
    _DATA[key] = spec
    return spec


def _rounds(args):
    return 1 if args.quick else 3


@guarded("2 trainer vs plain")
def section_parity(args):
    doc = load_graph(EX / "resnet_small.json")
    spec = _data("resnet_small", args)
    cfg = doc.training
    train, val = plain.arrays(doc, spec, cfg["val_split"], cfg.get("seed", 0))
    ratios = []
    for _ in range(_rounds(args)):
        nb = plain.train_netbuilder(doc, spec, 1, args.device)
        pl = plain.train_plain(plain.exported_model(doc), train, val, 1, cfg["batch_size"],
                               cfg["lr"], 1, args.device)
        ratios.append(nb["samples_per_s"] / pl["samples_per_s"])
    row("2 trainer vs plain", "resnet_small, samples/s trainer / plain",
        f"{statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)})")


def _batch(doc, device, n, spec):
    from runtime.data import bind, load_dataset

    ds = load_dataset(spec, doc)
    xs, ys = bind(ds, doc)
    return [torch.from_numpy(a[:n]).to(device) for a in xs + ys]


def _step_rate(step_model, params, batch, device, steps, amp=False, channels_last=False):
    """Training steps per second of loss = step_model(*batch)["loss"] (after warm-up)."""
    dev = torch.device(device)
    opt = torch.optim.Adam(params, lr=1e-4)
    dtype = (torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported()
             else torch.float16) if amp and dev.type == "cuda" else None
    if channels_last:
        batch = [b.contiguous(memory_format=torch.channels_last) if b.dim() == 4 else b
                 for b in batch]

    def one():
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            loss = step_model(*batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()

    for _ in range(1 if steps < 5 else 3):
        one()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def _built(doc, device):
    from runtime.compiler import build_module

    return build_module(doc, mode="train").to(device)


@guarded("3 graph vs model.py")
def section_graph_vs_export(args):
    doc = load_graph(EX / "resnet_small.json")
    bs = 8 if args.quick else int(doc.training["batch_size"])
    batch = _batch(doc, args.device, bs, _data("resnet_small", args))
    steps = 2 if args.quick else 100
    a_rates, b_rates = [], []
    built = _built(doc, args.device)
    exported = plain.exported_model(doc).to(args.device)
    for _ in range(_rounds(args)):
        a_rates.append(_step_rate(built, built.parameters(), batch, args.device, steps))
        b_rates.append(_step_rate(exported.compute_losses, exported.parameters(), batch,
                                  args.device, steps))
    a, b = statistics.median(a_rates), statistics.median(b_rates)
    row("3 graph vs model.py", f"resnet_small steps/s, batch {bs}",
        f"graph {a:.1f}, model.py {b:.1f}, ratio {a / b:.3f}")


@guarded("4 instrumentation")
def section_instrumentation(args):
    doc = load_graph(EX / "digits_cnn.json")
    on, off = [], []
    for _ in range(_rounds(args)):
        on.append(plain.train_netbuilder(doc, _data("digits_cnn", args), 1, args.device,
                                         **_small(args))["samples_per_s"])
        off.append(plain.train_netbuilder(doc, _data("digits_cnn", args), 1, args.device,
                                          instrument_every=10**9, visualize_every=10**9,
                                          **_small(args))["samples_per_s"])
    a, b = statistics.median(on), statistics.median(off)
    row("4 instrumentation", "digits_cnn samples/s, defaults vs off",
        f"on {a:,.0f}, off {b:,.0f}, on/off {a / b:.3f}")


def _resnet_eager(args):
    """resnet_small built from the graph, a batch of 256 and its eager steps/s."""
    doc = load_graph(EX / "resnet_small.json")
    batch = _batch(doc, args.device, 256, _data("resnet_small", args))
    m = _built(doc, args.device)
    return m, batch, _step_rate(m, m.parameters(), batch, args.device, 50)


@guarded("5 AMP")
def section_amp(args):
    if not args.device.startswith("cuda"):
        row("5 AMP", "resnet_small", "n/a (mixed precision is used on CUDA only)")
        return
    m, batch, fp32 = _resnet_eager(args)
    amp = _step_rate(m, m.parameters(), batch, args.device, 50, amp=True)
    m.to(memory_format=torch.channels_last)
    amp_cl = _step_rate(m, m.parameters(), batch, args.device, 50, amp=True, channels_last=True)
    row("5 AMP", "resnet_small steps/s, batch 256",
        f"fp32 {fp32:.1f}, amp {amp:.1f} (x{amp / fp32:.2f}), amp+channels_last "
        f"{amp_cl:.1f} (x{amp_cl / fp32:.2f})")


@guarded("6 compile")
def section_compile(args):
    if args.quick:
        row("6 compile", "resnet_small", "skipped with --quick (compiling takes minutes on a CPU)")
        return
    m, batch, eager = _resnet_eager(args)
    t0 = time.perf_counter()
    compiled = torch.compile(m)
    _step_rate(compiled, m.parameters(), batch, args.device, 1)  # compiles (warm-up inside)
    took = time.perf_counter() - t0
    fast = _step_rate(compiled, m.parameters(), batch, args.device, 50)
    row("6 compile", "resnet_small steps/s, batch 256",
        f"eager {eager:.1f}, compiled {fast:.1f} (x{fast / eager:.2f}; compiling took {took:.0f} s)")


def write_markdown(path: Path, args, header: str) -> None:
    lines = [f"{header}", "", "| section | measured | result |", "|---|---|---|"]
    lines += [f"| {s} | {w} | {r.replace('|', '/')} |" for s, w, r in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    ap.add_argument("--out", help="also write the table as markdown to this file")
    ap.add_argument("--max-epochs", type=int, default=5, help="cap on each example's epochs")
    args = ap.parse_args(argv)
    name = args.device
    if args.device.startswith("cuda") and torch.cuda.is_available():
        name = f"{args.device} ({torch.cuda.get_device_name(0)})"
    header = (f"GPU suite on {name}, torch {torch.__version__}, Python "
              f"{platform.python_version()}{' (--quick)' if args.quick else ''}")
    print(header, flush=True)
    t0 = time.perf_counter()
    for section in (section_training, section_parity, section_graph_vs_export,
                    section_instrumentation, section_amp, section_compile):
        section(args)
    row("total", "wall time", f"{time.perf_counter() - t0:.0f} s")
    if args.out:
        write_markdown(Path(args.out), args, header)
        print(f"table written to {args.out}")
    return 1 if any(w == "ERROR" for _, w, _ in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
