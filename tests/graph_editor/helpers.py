"""Shared helpers for the editor tests."""
from __future__ import annotations

from runtime.serialization import graph_to_dict


def canonical(doc) -> dict:
    """The document as a dict with nodes and edges in a fixed order.

    A graph is a set of nodes and a set of edges: undoing a deletion puts a node back at
    the end of the node table, so comparisons after undo ignore table order.
    """
    d = graph_to_dict(doc)
    d["nodes"] = sorted(d["nodes"], key=lambda n: n["id"])
    d["edges"] = sorted(d["edges"], key=lambda e: (e["source"], e["source_port"],
                                                   e["target"], e["target_port"]))
    return d
