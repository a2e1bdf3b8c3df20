"""Small helpers the subcommands share: the file argument and loading with a report."""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from .serialization import MAX_FILE_BYTES, GraphFileError, LoadProblem, load_graph, loads

BUNDLE_GRAPH = "graph.json"  # a model bundle (folder or .zip) keeps its graph under this name


def file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a Netbuilder graph (.json), or a model bundle (.zip or folder) "
                                "whose graph is checked")


def load_graph_or_bundle(path: str | Path):
    """A graph file, or the graph inside a model bundle (a folder or .zip holding
    graph.json). GraphFileError when neither can be read."""
    path = Path(path)
    if path.is_dir() and (path / BUNDLE_GRAPH).is_file():
        return load_graph(path / BUNDLE_GRAPH)
    if path.is_file() and zipfile.is_zipfile(path):
        source = f"{path} ({BUNDLE_GRAPH} inside)"
        try:
            with zipfile.ZipFile(path) as z:
                info = z.getinfo(BUNDLE_GRAPH)
                if info.file_size > MAX_FILE_BYTES:
                    raise GraphFileError(source, [LoadProblem(BUNDLE_GRAPH, "too large for a graph")])
                text = z.read(info).decode("utf-8")
        except KeyError:
            raise GraphFileError(str(path), [LoadProblem(str(path), "a .zip file without "
                                 f"{BUNDLE_GRAPH}: not a Netbuilder model bundle")]) from None
        except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise GraphFileError(source, [LoadProblem(BUNDLE_GRAPH, f"cannot read: {exc}")]) from None
        return loads(text, source)
    return load_graph(path)


def load_or_report(path: str):
    """Load a graph (or a bundle's graph), or print every problem (naming the file) and
    return None."""
    try:
        return load_graph_or_bundle(path)
    except GraphFileError as exc:
        print(f"error: cannot load {exc.source}", file=sys.stderr)
        for prob in exc.problems:
            print(f"  {prob}", file=sys.stderr)
        return None
