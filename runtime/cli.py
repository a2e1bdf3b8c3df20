"""``netbuilder validate|summary|compile`` (and the subcommands other modules add).

Every failure prints plain messages naming the place and exits 1; never a traceback.
Subcommands are registered in SUBCOMMANDS so training and export can add theirs.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from .catalog._util import fmt_shape
from .diagnostics import has_errors
from .serialization import GraphFileError, load_graph

# name -> (help, add_arguments(parser), run(args) -> exit code)
SUBCOMMANDS: dict[str, tuple[str, Callable, Callable]] = {}


def subcommand(name: str, help: str, add_arguments: Callable):
    def deco(run: Callable) -> Callable:
        SUBCOMMANDS[name] = (help, add_arguments, run)
        return run
    return deco


def _file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json)")


def _load(path: str):
    """Load or print every problem and return None."""
    try:
        return load_graph(path)
    except GraphFileError as exc:
        print(f"error: cannot load {exc.source}", file=sys.stderr)
        for prob in exc.problems:
            print(f"  {prob}", file=sys.stderr)
        return None


@subcommand("validate", "check a graph; exit 0 when valid, 1 with diagnostics otherwise", _file_arg)
def cmd_validate(args) -> int:
    from .validation import validate

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


def _summary_args(p: argparse.ArgumentParser) -> None:
    _file_arg(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


@subcommand("summary", "per-layer output shapes, parameters and MACs", _summary_args)
def cmd_summary(args) -> int:
    from .analysis import analyze
    from .validation import analysis_diagnostics, validate

    doc = _load(args.file)
    if doc is None:
        return 1
    diags = validate(doc, shapes=False)
    analysis = analyze(doc) if not has_errors(diags) else None
    if analysis is not None:  # what validate adds: shapes and ids out of range
        diags = diags + analysis_diagnostics(doc, analysis)
    errors = [d for d in diags if d.is_error]
    if errors:
        for d in errors:
            print(str(d), file=sys.stderr)
        return 1
    rows = []
    for nid in analysis.order:
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


@subcommand("compile", "print the PyTorch code the graph compiles to", _file_arg)
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


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    parser = argparse.ArgumentParser(
        prog="netbuilder",
        description="Design, train and export neural networks. Without a subcommand, "
                    "starts the editor.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, add_args, run) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def _load_plugins() -> None:
    """Import the modules that register further subcommands (train, export...)."""
    import importlib

    for mod in ("runtime.training.cli", "runtime.export.cli"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is None or not mod.startswith(exc.name):
                raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
