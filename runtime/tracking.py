"""What changed in a document since derived data (validation, analysis) was last computed.

A :class:`ChangeTracker` subscribes to a :class:`GraphDocument`'s events and collects the
nodes whose parameters or inputs changed, and whether the structure (nodes, edges) or any
label changed. Validation and analysis keep one each in ``doc.derived`` and recompute only
what an edit can have touched. As a safety net for code that edits ``node.params`` in place
instead of calling ``set_param``, :meth:`ChangeTracker.take` also compares every node's
parameters with a snapshot taken when it was last seen (a cheap dict comparison).
"""
from __future__ import annotations

import weakref
from typing import Any


def snapshot(value: Any) -> Any:
    """A copy of a parameter value deep enough to detect in-place edits (lists, dicts)."""
    if isinstance(value, list):
        return [snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value


class Changes:
    __slots__ = ("structure", "labels", "params", "inputs")

    def __init__(self, structure: bool, labels: bool, params: set[str], inputs: set[str]):
        self.structure = structure  # a node or an edge was added or removed
        self.labels = labels  # a label changed (messages use display names)
        self.params = params  # nodes whose parameters changed (or that are new)
        self.inputs = inputs  # nodes whose incoming edges changed


class ChangeTracker:
    def __init__(self, doc):
        self._doc = weakref.ref(doc)  # the document holds us (via its events), not back
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._reset(everything=True)
        doc.node_added.connect(self._on_node_added)
        doc.node_removed.connect(self._on_node_removed)
        doc.edge_added.connect(self._on_edge)
        doc.edge_removed.connect(self._on_edge)
        doc.param_changed.connect(self._on_param)
        doc.label_changed.connect(self._on_label)

    def _reset(self, everything: bool = False) -> None:
        self._structure = self._labels = everything
        self._params: set[str] = set()
        self._inputs: set[str] = set()

    def _on_node_added(self, node) -> None:
        self._structure = True
        self._params.add(node.id)

    def _on_node_removed(self, node) -> None:
        self._structure = True
        self._snapshots.pop(node.id, None)

    def _on_edge(self, edge) -> None:
        self._structure = True
        self._inputs.add(edge.target)

    def _on_param(self, node_id, name, old, new) -> None:
        self._params.add(node_id)

    def _on_label(self, node_id, old, new) -> None:
        self._labels = True

    def take(self) -> Changes:
        """The changes since the last call (the first call reports everything as new)."""
        params = self._params
        snaps = self._snapshots
        for nid, node in self._doc().nodes.items():
            snap = snaps.get(nid)
            if snap is None or nid in params or node.params != snap:
                params.add(nid)
                snaps[nid] = snapshot(node.params)
        out = Changes(self._structure, self._labels, params, self._inputs)
        self._reset()
        return out
