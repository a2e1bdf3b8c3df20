"""Undo commands: one QUndoCommand per edit, each calling only GraphDocument methods.

Commands capture what they need to undo in ``__init__`` or on their first ``redo`` and
never touch graphics items: the scene follows the document's events (ryvencore /
NodeGraphQt style). Compound edits (reconnect, cut) are macros on the stack.
"""
from __future__ import annotations

import copy
import itertools
import time
from typing import Any, Iterable

from PySide6.QtGui import QUndoCommand

from runtime.graph import Edge, GraphDocument, GraphError, Node, type_prefix

_MOVE_ID = 4001
_PARAM_ID = 4002
PARAM_MERGE_S = 0.6  # edits of one parameter closer together than this are one step
_drag_counter = itertools.count(1)


def new_drag_id() -> int:
    """A fresh id for one drag gesture: MoveNodes with the same drag id merge."""
    return next(_drag_counter)


class AddNode(QUndoCommand):
    def __init__(self, doc: GraphDocument, type_id: str, position=(0.0, 0.0),
                 params: dict[str, Any] | None = None, label: str = "",
                 node_id: str | None = None):
        super().__init__(f"Add {type_id}")
        self.doc, self.type_id, self.position = doc, type_id, tuple(position)
        self.params, self.label = copy.deepcopy(params or {}), label
        self.node_id = node_id or doc.new_id(type_id)

    def redo(self) -> None:
        self.doc.add_node(self.type_id, self.params, node_id=self.node_id, label=self.label,
                          position=self.position)

    def undo(self) -> None:
        self.doc.remove_node(self.node_id)


class RemoveNodes(QUndoCommand):
    """Delete nodes with all their edges; undo puts nodes and edges back."""

    def __init__(self, doc: GraphDocument, node_ids: Iterable[str]):
        ids = [n for n in node_ids if n in doc]
        super().__init__(f"Delete {len(ids)} node{'s' if len(ids) != 1 else ''}")
        self.doc, self.node_ids = doc, ids
        self._removed: list[tuple[Node, list[Edge]]] = []

    def redo(self) -> None:
        self._removed = [self.doc.remove_node(n) for n in self.node_ids]

    def undo(self) -> None:
        # Reverse order: an edge between two removed nodes went out with the first one,
        # so it comes back with it, once the second is in place again.
        for node, edges in reversed(self._removed):
            self.doc.insert_node(copy.deepcopy(node), edges)
        self._removed = []


class Connect(QUndoCommand):
    def __init__(self, doc: GraphDocument, edge: Edge):
        super().__init__(f"Connect {edge.source} to {edge.target}")
        self.doc, self.edge = doc, edge

    def redo(self) -> None:
        self.doc.add_edge(self.edge)

    def undo(self) -> None:
        self.doc.remove_edge(self.edge)


class Disconnect(QUndoCommand):
    def __init__(self, doc: GraphDocument, edges: Iterable[Edge]):
        self.edges = [e for e in edges if e in doc.edges]
        super().__init__(f"Disconnect {len(self.edges)} edge{'s' if len(self.edges) != 1 else ''}")
        self.doc = doc

    def redo(self) -> None:
        for e in self.edges:
            self.doc.remove_edge(e)

    def undo(self) -> None:
        for e in reversed(self.edges):
            self.doc.add_edge(e, keep_stale=True)  # back as it was, even into a stale port


class SetParam(QUndoCommand):
    """Change one parameter. A burst of edits of the same parameter (a spin box's arrow
    held down or clicked quickly) merges into one step; edits further apart than
    PARAM_MERGE_S stay separate, so every value the user paused on can be undone to."""

    def __init__(self, doc: GraphDocument, node_id: str, name: str, value: Any):
        super().__init__(f"Set {node_id}.{name}")
        self.doc, self.node_id, self.name = doc, node_id, name
        self.old = copy.deepcopy(doc.node(node_id).params.get(name))
        self.new = copy.deepcopy(value)
        self.last_edit = time.monotonic()

    def id(self) -> int:
        return _PARAM_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetParam) or (other.node_id, other.name) != (self.node_id, self.name):
            return False
        if other.doc is not self.doc or other.last_edit - self.last_edit > PARAM_MERGE_S:
            return False
        self.new, self.last_edit = other.new, other.last_edit
        if self.new == self.old:  # spun back to where it started: no step at all
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        self.doc.set_param(self.node_id, self.name, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.doc.set_param(self.node_id, self.name, copy.deepcopy(self.old))


class SetLabel(QUndoCommand):
    def __init__(self, doc: GraphDocument, node_id: str, label: str):
        super().__init__(f"Rename {node_id}")
        self.doc, self.node_id, self.label = doc, node_id, label
        self.old = doc.node(node_id).label

    def redo(self) -> None:
        self.doc.set_label(self.node_id, self.label)

    def undo(self) -> None:
        self.doc.set_label(self.node_id, self.old)


class MoveNodes(QUndoCommand):
    """Move nodes: ``moves`` maps node id -> (old position, new position).

    One command per drag: commands carrying the same ``drag_id`` merge into one step.
    """

    def __init__(self, doc: GraphDocument, moves: dict[str, tuple], drag_id: int | None = None,
                 text: str | None = None):
        super().__init__(text or f"Move {len(moves)} node{'s' if len(moves) != 1 else ''}")
        self.doc = doc
        self.moves = {k: (tuple(a), tuple(b)) for k, (a, b) in moves.items()}
        self.drag_id = drag_id if drag_id is not None else new_drag_id()

    def id(self) -> int:
        return _MOVE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MoveNodes) or other.drag_id != self.drag_id:
            return False
        for k, (old, new) in other.moves.items():
            self.moves[k] = (self.moves[k][0] if k in self.moves else old, new)
        return True

    def redo(self) -> None:
        for k, (_, new) in self.moves.items():
            self.doc.move_node(k, new)

    def undo(self) -> None:
        for k, (old, _) in self.moves.items():
            self.doc.move_node(k, old)


class Layout(MoveNodes):
    def __init__(self, doc: GraphDocument, positions: dict[str, tuple[float, float]]):
        moves = {k: (doc.node(k).position, tuple(p)) for k, p in positions.items()}
        super().__init__(doc, moves, text="Auto-layout")

    def mergeWith(self, other: QUndoCommand) -> bool:
        return False


class Paste(QUndoCommand):
    """Insert nodes and edges from clipboard data; ids are kept when free, else renamed."""

    def __init__(self, doc: GraphDocument, data: dict, offset=(0.0, 0.0), text: str = "Paste"):
        super().__init__(text)
        self.doc = doc
        taken = set(doc.nodes)
        self.id_map: dict[str, str] = {}
        for n in data.get("nodes", []):
            nid = n["id"]
            if nid in taken:
                stem, i = type_prefix(n["type"]), 1
                while f"{stem}{i}" in taken:
                    i += 1
                nid = f"{stem}{i}"
            taken.add(nid)
            self.id_map[n["id"]] = nid
        dx, dy = offset
        self.nodes = [dict(type=n["type"], params=copy.deepcopy(n.get("params", {})),
                           label=n.get("label", ""), node_id=self.id_map[n["id"]],
                           position=(n.get("position", (0, 0))[0] + dx,
                                     n.get("position", (0, 0))[1] + dy))
                      for n in data.get("nodes", [])]
        self.edges = [Edge(self.id_map[e["source"]], e["source_port"],
                           self.id_map[e["target"]], e["target_port"])
                      for e in data.get("edges", [])
                      if e["source"] in self.id_map and e["target"] in self.id_map]

    @property
    def new_ids(self) -> list[str]:
        return list(self.id_map.values())

    def redo(self) -> None:
        for n in self.nodes:
            self.doc.add_node(n["type"], n["params"], node_id=n["node_id"], label=n["label"],
                              position=n["position"])
        kept = []
        for e in self.edges:  # a fragment from another version may name a missing port
            try:
                self.doc.add_edge(e)
            except GraphError:
                continue
            kept.append(e)
        self.edges = kept

    def undo(self) -> None:
        for n in reversed(self.nodes):
            self.doc.remove_node(n["node_id"])


class SetGroups(QUndoCommand):
    """Group or ungroup: replaces the document's metadata (where groups live)."""

    def __init__(self, doc: GraphDocument, metadata: dict, text: str):
        super().__init__(text)
        self.doc, self.new, self.old = doc, copy.deepcopy(metadata), copy.deepcopy(doc.metadata)

    def redo(self) -> None:
        self.doc.set_metadata(self.new)

    def undo(self) -> None:
        self.doc.set_metadata(self.old)


class SetMetadata(SetGroups):
    """Replace the document's metadata (the layout direction, a name)."""


def Group(doc: GraphDocument, node_ids, title: str | None = None) -> SetGroups:
    from .groups import with_group

    chosen = set(node_ids)
    ids = [n for n in doc.nodes if n in chosen]  # document order, not click order
    meta, gid = with_group(doc.metadata, ids, title)
    cmd = SetGroups(doc, meta, f"Group {len(ids)} nodes")
    cmd.group_id = gid
    return cmd


def Ungroup(doc: GraphDocument, node_ids) -> SetGroups:
    from .groups import without_groups_of

    return SetGroups(doc, without_groups_of(doc.metadata, node_ids), "Ungroup")


class GroupBlock(QUndoCommand):
    """Replace the selection by one Block node holding it as its inner graph."""

    def __init__(self, doc: GraphDocument, node_ids, label: str = "", analysis=None):
        from runtime import blocks

        if analysis is None:  # the shapes of the block's inputs
            from runtime.pipeline import analyze

            analysis = analyze(doc)
        self.plan = blocks.group_plan(doc, node_ids, label=label, analysis=analysis)
        super().__init__(f"Group {len(self.plan['remove'])} nodes into a block")
        self.doc = doc
        self.block_id = self.plan["block"]["node_id"]
        self._removed: list[tuple[Node, list[Edge], int]] = []

    def redo(self) -> None:
        from runtime import blocks

        self._removed = blocks.apply_group(self.doc, self.plan)

    def undo(self) -> None:
        from runtime import blocks

        blocks.undo_group(self.doc, self.block_id, self._removed)
        self._removed = []


class UngroupBlock(QUndoCommand):
    """Replace a Block node by its inner nodes and edges."""

    def __init__(self, doc: GraphDocument, block_id: str):
        from runtime import blocks

        self.plan = blocks.ungroup_plan(doc, block_id)
        super().__init__(f"Ungroup {block_id}")
        self.doc, self.block_id = doc, block_id
        self._block: tuple[Node, list[Edge], int] | None = None

    @property
    def new_ids(self) -> list[str]:
        return [n.id for n in self.plan["nodes"]]

    def redo(self) -> None:
        from runtime import blocks

        node = self.doc.node(self.block_id)
        edges = [e for e in self.doc.edges if self.block_id in (e.source, e.target)]
        self._block = (copy.deepcopy(node), edges, list(self.doc.nodes).index(self.block_id))
        blocks.apply_ungroup(self.doc, self.block_id, self.plan)

    def undo(self) -> None:
        for nid in reversed(self.new_ids):
            self.doc.remove_node(nid)
        node, edges, index = self._block
        self.doc.insert_node(copy.deepcopy(node), edges, index=index)  # back in its place


class DropRedo(QUndoCommand):
    """Pushes nothing: pushing it only discards the redo entries above the current index
    (used when a block closes unchanged, so its inner steps cannot be redone on the
    parent). Obsolete after redo, so QUndoStack drops it."""

    def __init__(self):
        super().__init__("")

    def redo(self) -> None:
        self.setObsolete(True)

    def undo(self) -> None:
        pass
