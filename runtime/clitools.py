"""Small helpers the subcommands share: the file argument and loading with a report."""
from __future__ import annotations

import argparse
import sys

from .serialization import GraphFileError, load_graph


def file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json)")


def load_or_report(path: str):
    """Load a graph, or print every problem (naming the file) and return None."""
    try:
        return load_graph(path)
    except GraphFileError as exc:
        print(f"error: cannot load {exc.source}", file=sys.stderr)
        for prob in exc.problems:
            print(f"  {prob}", file=sys.stderr)
        return None
