"""``netbuilder export`` and ``netbuilder import``: exit 0 only when the file was written
and verified; a plain message and exit 1 otherwise, never a traceback."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..clitools import load_or_report as _load
from .core import FORMAT_TITLES, FORMATS


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json) or bundle (.zip or directory)")
    p.add_argument("--format", "-f", required=True, choices=FORMATS,
                   help="; ".join(f"{k}: {v}" for k, v in FORMAT_TITLES.items()))
    p.add_argument("--out", "-o", required=True,
                   help="output path (bundle: NAME.zip or a directory; python: a directory); "
                   "an existing one is replaced only with --force")
    p.add_argument("--weights", "-w", help="trained weights: .safetensors, or a torch file "
                   "read with weights_only=True (a bundle brings its own)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out (never the file being exported)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _refuse_target(out, source, force: bool, as_json: bool = False,
                   verb: str = "exported") -> bool:
    """Print why ``out`` may not be written (it is the input, or it exists without
    --force) and return True; False when it may be written."""
    from .result import ExportError
    from .staging import check_target

    try:
        check_target(Path(out).expanduser(), overwrite=force, protect=[Path(source)], verb=verb)
    except ExportError as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return True
    return False


def _load_graph_or_bundle(path: Path, weights):
    """(document, weights) from a graph file or a bundle (.zip or folder, whose weights are
    used unless ``weights`` is given); (None, None) after printing the problem."""
    from .core import ExportError, load_bundle

    if path.is_dir() or path.suffix.lower() == ".zip":
        try:
            doc, state = load_bundle(path)
        except ExportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return None, None
        return doc, weights or state
    doc = _load(str(path))
    return doc, (weights if doc is not None else None)


def cmd_export(args) -> int:
    from .core import ExportError, capabilities, export

    path = Path(args.file)
    if _refuse_target(args.out, path, args.force, args.json):
        return 1
    doc, weights = _load_graph_or_bundle(path, args.weights)
    if doc is None:
        return 1
    cap = capabilities(doc).get(args.format)
    if cap is not None and not cap.supported:
        msg = f"{args.file} cannot be exported as {args.format}: {cap.reason}"
        if args.json:
            print(json.dumps({"ok": False, "error": msg, "unsupported": True}))
        print(f"error: {msg}", file=sys.stderr)
        return 1

    def progress(fraction: float, message: str) -> None:
        print(f"[{int(fraction * 100):3d}%] {message}", file=sys.stderr)

    try:
        result = export(doc, args.format, args.out, weights=weights, progress=progress,
                        overwrite=args.force)
    except ExportError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"ok": True, "format": result.format, "path": str(result.path),
                          "files": [str(f) for f in result.files], "verified": result.verified,
                          "max_abs_diff": result.max_abs_diff, "checks": result.checks,
                          "notes": result.notes, "seconds": round(result.seconds, 2)}))
    else:
        print(result.summary())
    return 0


def import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a Python file (needs --class; THE FILE IS EXECUTED, as if "
                   "you ran it: import only code you trust) or an .onnx file (only read)")
    p.add_argument("--class", dest="class_name", help="the nn.Module class in the Python file")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]D1,D2,...",
                   help="per-sample shape of a forward input, batch excluded (repeat per "
                   "input); not needed where the model tells it: a generated model.py, an "
                   "example_input or input_shape attribute, a first Linear layer, or a first "
                   "Conv2d/Conv1d with one size that fits")
    p.add_argument("--weights", "-w", help="weights for the Python module (.safetensors or a "
                   "torch state dict, read with weights_only=True)")
    p.add_argument("--out", "-o", required=True,
                   help="the graph to write (.json), or a bundle (.zip / directory) to keep "
                   "the weights")
    p.add_argument("--partial", action="store_true",
                   help="write the graph even when some layers could not be mapped")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out (never the file being imported)")


def _shapes(specs: list[str]):
    named, plain = {}, []
    for s in specs:
        name, _, dims = s.rpartition("=")
        try:
            shape = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            raise SystemExit(f"error: --input-shape {s!r}: expected numbers like 1,28,28")
        if name:
            named[name] = shape
        else:
            plain.append(shape)
    if named and plain:
        raise SystemExit("error: give every --input-shape with a name, or none")
    return named or plain or None


def cmd_import(args) -> int:
    from ..serialization import save_graph
    from .importer import ImportError_, import_onnx, import_python_file

    src = Path(args.source)
    if _refuse_target(args.out, src, args.force, verb="imported"):
        return 1
    try:
        if src.suffix.lower() == ".onnx":
            res = import_onnx(src)
        else:
            if not args.class_name:
                print("error: importing a Python file needs --class NAME", file=sys.stderr)
                return 1
            try:
                shapes = _shapes(args.input_shape)
            except SystemExit as exc:
                print(exc, file=sys.stderr)
                return 1
            print(f"note: running {src} to import {args.class_name}", file=sys.stderr)
            res = import_python_file(src, args.class_name, shapes, weights=args.weights)
    except ImportError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for p in res.problems:
        print(f"not mapped: {p}", file=sys.stderr)
    for n in res.notes:
        print(f"note: {n}", file=sys.stderr)
    if res.problems and not args.partial:
        print(f"error: {len(res.problems)} part(s) could not be mapped to the catalog; nothing "
              "written (use --partial to write what was mapped)", file=sys.stderr)
        return 1
    out = Path(args.out)
    try:
        if out.suffix.lower() == ".json":
            save_graph(res.doc, out)  # written whole (temporary file, then renamed)
            print(f"wrote {out} ({len(res.doc)} nodes, {len(res.doc.edges)} edges; weights "
                  "not kept: write a .zip bundle to keep them)")
            return 0
        from .core import ExportError, export

        try:
            r = export(res.doc, "bundle", out, weights=res.weights or None, overwrite=args.force)
        except ExportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {out} ({len(res.doc)} nodes, weights verified, max abs diff "
              f"{r.max_abs_diff:.3g})")
        return 0
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def dist_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json) or bundle (.zip or directory)")
    p.add_argument("--nproc", type=int, default=2, help="processes (torchrun --nproc_per_node)")
    p.add_argument("--out", "-o", help="directory for model.py, train.py and the trained "
                   "weights (default: FILE's name + _ddp)")
    p.add_argument("--weights", "-w", help="start from these weights (.safetensors)")
    p.add_argument("--epochs", type=int, help="override the graph's epochs")
    p.add_argument("--max-steps", type=int, help="stop after this many steps")
    p.add_argument("--loss-log", help="write 'step loss' lines of the global batch")


def cmd_train_dist(args) -> int:
    """Export model.py + train.py into OUT and run them under torchrun. train.py writes
    OUT/metrics.jsonl and prints, as its last line, a JSON object with the final metrics;
    with ``args.json_result`` (``netbuilder train --nproc``) a failure prints a JSON object
    with an "error" key as the last line instead."""
    import subprocess

    from .core import ExportError, export

    def fail(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        if getattr(args, "json_result", False):
            print(json.dumps({"status": "error", "error": message}), flush=True)
        return 1

    if args.nproc < 1:
        return fail("--nproc must be at least 1")
    path = Path(args.file)
    doc, weights = _load_graph_or_bundle(path, args.weights)
    if doc is None:
        return fail(f"cannot load {path}")
    out = Path(args.out or f"{path.with_suffix('')}_ddp").resolve()
    try:
        # the run's own working folder: a new run replaces the previous one's files
        r = export(doc, "python", out, weights=weights, overwrite=True)
    except ExportError as exc:
        return fail(str(exc))
    if not (out / "train.py").exists():
        return fail("the graph has no loss node: nothing to train")
    for n in r.notes:
        print(f"note: {n}", file=sys.stderr)
    launcher = [sys.executable, "-m", "torch.distributed.run"]  # this Python's torchrun
    cmd = launcher + ["--standalone", f"--nproc_per_node={args.nproc}", "train.py",
                      "--out", str(out / "trained.safetensors"),
                      "--metrics", str(out / "metrics.jsonl")]
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    if args.loss_log:
        cmd += ["--loss-log", str(Path(args.loss_log).resolve())]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    print(f"running in {out}: {' '.join(cmd[len(launcher):])}", file=sys.stderr)
    try:
        code = subprocess.call(cmd, cwd=out, env=env)
    except OSError as exc:
        return fail(f"cannot start torchrun: {exc}")
    if code != 0:
        return fail(f"torchrun exited with code {code} (see the messages above)")
    return 0
