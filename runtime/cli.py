"""The ``netbuilder`` command line: one explicit table of subcommands.

``COMMANDS`` maps each subcommand to its help text and to two functions named as
``"module:function"``: one adds the subcommand's arguments to its parser, the other runs
it (``run(args) -> exit code``). A subcommand's module is imported only when that
subcommand is used, so ``netbuilder validate`` never imports the trainer or the exporters.
``python -m runtime`` is the same command as ``netbuilder``.

Every failure prints plain messages naming the place and exits 1; never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import importlib
from typing import Callable

from .catalog import fmt_shape
from .clitools import file_arg as _file_arg
from .clitools import load_or_report as _load
from .diagnostics import has_errors

# name -> (help, "module:add_arguments", "module:run"). Add a subcommand with one line here.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("check a graph; exit 0 when valid, 1 with diagnostics otherwise",
                 "runtime.clitools:file_arg", "runtime.cli:cmd_validate"),
    "summary": ("per-layer output shapes, parameters and MACs",
                "runtime.cli:summary_arguments", "runtime.cli:cmd_summary"),
    "compile": ("print the PyTorch code the graph compiles to",
                "runtime.clitools:file_arg", "runtime.cli:cmd_compile"),
    "train": ("train a graph on a dataset (headless; same trainer as the editor)",
              "runtime.training.cli:add_arguments", "runtime.training.cli:cmd_train"),
    "export": ("export a graph (bundle, torchscript, pt2, onnx, python) and verify it "
               "against the compiled module",
               "runtime.export.cli:export_arguments", "runtime.export.cli:cmd_export"),
    "import": ("import a PyTorch module (Python file + class; runs the file) or an ONNX "
               "file as a graph",
               "runtime.export.cli:import_arguments", "runtime.export.cli:cmd_import"),
    "train-dist": ("train with DistributedDataParallel under torchrun (exports model.py + "
                   "train.py, then runs torchrun --nproc_per_node N train.py)",
                   "runtime.export.cli:dist_arguments", "runtime.export.cli:cmd_train_dist"),
    "runs": ("list a graph's runs with their metrics and what changed between them; rename, "
             "note or delete a run", "runtime.experiments.cli:runs_arguments",
             "runtime.experiments.cli:cmd_runs"),
    "render": ("draw the graph as a PNG or SVG diagram (headless)", "app.render:add_arguments",
               "app.render:run"),
    "sweep": ("search training settings and node parameters with Optuna (trials in worker "
              "processes; the study resumes from its folder)",
              "runtime.experiments.cli:sweep_arguments", "runtime.experiments.cli:cmd_sweep"),
}


def _resolve(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def cmd_validate(args) -> int:
    from .pipeline import validate

    doc = _load(args.file)
    if doc is None:
        return 1
    diags = validate(doc)
    for d in diags:
        print(str(d), file=sys.stderr if d.is_error else sys.stdout)
    if has_errors(diags):
        n = sum(d.is_error for d in diags)
        print(f"{args.file}: {n} error(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: valid ({len(doc)} nodes, {len(doc.edges)} edges)")
    return 0


MAC_CONVENTION = (
    "Layers are listed in a topological order that keeps branches together (each branch "
    "of a split from start to end, then the node joining them). MACs are multiply-"
    "accumulates per sample: one multiply-add = 1 MAC (a convolution or matrix product of "
    "F flops is F/2 MACs); bias additions, pooling, activations, normalisation and "
    "element-wise sums are not counted. Parameters are the trainable ones.")


def summary_arguments(p: argparse.ArgumentParser) -> None:
    _file_arg(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.epilog = MAC_CONVENTION


def cmd_summary(args) -> int:
    from .pipeline import check

    doc = _load(args.file)
    if doc is None:
        return 1
    analysis, diags = check(doc)
    errors = [d for d in diags if d.is_error]
    if errors:
        for d in errors:
            print(str(d), file=sys.stderr)
        return 1
    rows = []
    for nid in (n for n in doc.reading_order() if n in analysis.nodes):
        node, info = doc.nodes[nid], analysis.nodes[nid]
        shape = info.output_shape
        rows.append({"id": nid, "label": node.label or nid, "type": node.type,
                     "output_shape": list(shape) if shape is not None else None,
                     "params": info.params, "macs": info.macs})
    if args.json:
        print(json.dumps({"nodes": rows, "total_params": analysis.total_params,
                          "total_macs": analysis.total_macs}, indent=2))
        return 0
    w = max([len(r["label"]) for r in rows] + [5])
    print(f"{'layer':<{w}}  {'type':<20} {'output':<18} {'params':>12} {'MACs':>14}")
    for r in rows:
        shape = fmt_shape(r["output_shape"]) if r["output_shape"] is not None else "-"
        print(f"{r['label']:<{w}}  {r['type']:<20} {shape:<18} {r['params']:>12,} {r['macs']:>14,}")
    print(f"{'total':<{w}}  {'':<20} {'':<18} {analysis.total_params:>12,} "
          f"{analysis.total_macs:>14,}")
    return 0


def cmd_compile(args) -> int:
    from .compiler import CompileError, build_module

    doc = _load(args.file)
    if doc is None:
        return 1
    try:
        module = build_module(doc)
    except CompileError as exc:
        for d in exc.diagnostics:
            if d.is_error:
                print(str(d), file=sys.stderr)
        return 1
    print(module.code.strip())
    return 0


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported (the others
    are listed by their help text)."""
    parser = argparse.ArgumentParser(
        prog="netbuilder",
        description="Design, train and export neural networks. Without a subcommand, "
                    "starts the editor.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or name == only:
            _resolve(add_args)(p)
            p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(_resolve(args.run)(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
