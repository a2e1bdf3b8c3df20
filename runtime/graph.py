"""The graph document: nodes, edges, training configuration, metadata, and its events.

The document is the evented model of the editor (napari-style): every mutation is one
method that emits one past-tense event, then ``changed``. The editor's undo commands
call these methods and nothing else; views subscribe to the events.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .catalog import get_spec
from .events import Event

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_IDS = frozenset({"self", "torch", "input", "output", "forward", "training"} | {
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
    "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
    "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
    "return", "try", "while", "with", "yield"})


class GraphError(ValueError):
    """A mutation the document refuses (unknown node, bad id, duplicate edge...)."""


@dataclass
class Node:
    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    position: tuple[float, float] = (0.0, 0.0)

    @property
    def spec(self):
        return get_spec(self.type)

    @property
    def display_name(self) -> str:
        return self.label or self.id

    def input_ports(self):
        return self.spec.input_ports(self.params)

    def output_ports(self):
        return self.spec.output_ports(self.params)


@dataclass(frozen=True)
class Edge:
    """Output port ``source_port`` of ``source`` feeds input ``target_port`` of ``target``."""

    source: str
    source_port: str
    target: str
    target_port: str

    def __str__(self) -> str:
        return f"{self.source}.{self.source_port} -> {self.target}.{self.target_port}"


def type_prefix(type_id: str) -> str:
    """'Conv2d' -> 'conv2d', 'MaxPool' -> 'max_pool': the stem of generated node ids."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type_id).lower()


class GraphDocument:
    """A network as a graph of typed nodes. See docs/graph-format.md for the file format."""

    def __init__(self, name: str = "untitled"):
        self._nodes: dict[str, Node] = {}
        # Edges in insertion order (value: a sequence number), with per-node indexes so
        # edge lookups cost O(degree), not O(edges). Maintained by the mutation methods.
        self._edges: dict[Edge, int] = {}
        self._edge_seq = 0
        self._in: dict[str, list[Edge]] = {}
        self._out: dict[str, list[Edge]] = {}
        self._edges_tuple: tuple[Edge, ...] | None = None
        self.structure_revision = 0  # bumped when nodes or edges are added or removed
        # Derived data (validation and analysis state), owned by those modules.
        self.derived: dict[str, Any] = {}
        self.training: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {"name": name}
        self._removed_at: dict[str, int] = {}  # node id -> its index when removed (for undo)
        self.revision = 0  # bumped by every mutation
        self.node_added = Event("node_added")  # (node)
        self.node_removed = Event("node_removed")  # (node)
        self.edge_added = Event("edge_added")  # (edge)
        self.edge_removed = Event("edge_removed")  # (edge)
        self.param_changed = Event("param_changed")  # (node_id, name, old, new)
        self.label_changed = Event("label_changed")  # (node_id, old, new)
        self.node_moved = Event("node_moved")  # (node_id, old_pos, new_pos)
        self.training_changed = Event("training_changed")  # (old, new)
        self.metadata_changed = Event("metadata_changed")  # (old, new)
        self.changed = Event("changed")  # () after any of the above

    # ---- reading ----------------------------------------------------------------
    @property
    def nodes(self) -> dict[str, Node]:
        """Nodes by id (read-only by convention: mutate through the methods)."""
        return self._nodes

    @property
    def edges(self) -> tuple[Edge, ...]:
        if self._edges_tuple is None:
            self._edges_tuple = tuple(self._edges)
        return self._edges_tuple

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise GraphError(f"no node with id {node_id!r}") from None

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def in_edges(self, node_id: str) -> list[Edge]:
        return list(self._in.get(node_id, ()))

    def out_edges(self, node_id: str) -> list[Edge]:
        return list(self._out.get(node_id, ()))

    def new_id(self, type_id: str) -> str:
        stem = type_prefix(type_id)
        i = 1
        while f"{stem}{i}" in self._nodes:
            i += 1
        return f"{stem}{i}"

    # ---- mutations ----------------------------------------------------------------
    def add_node(self, type_id: str, params: dict[str, Any] | None = None, *,
                 node_id: str | None = None, label: str = "",
                 position: Iterable[float] = (0.0, 0.0)) -> Node:
        spec = get_spec(type_id)  # KeyError names the unknown type
        node_id = node_id or self.new_id(type_id)
        check_node_id(node_id)
        if node_id in self._nodes:
            raise GraphError(f"a node with id {node_id!r} exists already")
        node = Node(node_id, type_id, spec.full_params(copy.deepcopy(params)), label,
                    _pos(position))
        self._nodes[node_id] = node
        self._mutated(self.node_added, node)
        return node

    def insert_node(self, node: Node, edges: Iterable[Edge] = (), *,
                    index: int | None = None) -> None:
        """Put a node (with its edges) into the document: the undo of a removal, or a node
        built elsewhere. ``index``: its place in node order (node order fixes the order of
        a compiled module's inputs); by default the place it had when it was removed, else
        the end."""
        if node.id in self._nodes:
            raise GraphError(f"a node with id {node.id!r} exists already")
        at = self._removed_at.pop(node.id, None)
        if index is not None:
            at = index
        self._nodes[node.id] = node
        if at is not None:  # move the nodes after ``at`` behind it
            for later in list(self._nodes)[at:-1]:
                self._nodes[later] = self._nodes.pop(later)
        self._mutated(self.node_added, node)
        for e in edges:
            self.add_edge(e, keep_stale=True)  # as they were, stale ports included

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its edges; returns both so the removal can be undone."""
        node = self.node(node_id)
        removed = sorted(set(self._in.get(node_id, ())) | set(self._out.get(node_id, ())),
                         key=self._edges.__getitem__)  # in document order
        for e in removed:
            self.remove_edge(e)
        self._removed_at[node_id] = list(self._nodes).index(node_id)
        del self._nodes[node_id]
        self._in.pop(node_id, None)
        self._out.pop(node_id, None)
        self._mutated(self.node_removed, node)
        return node, removed

    def add_edge(self, edge: Edge, *, keep_stale: bool = False) -> Edge:
        """Add an edge; its ports must exist. With ``keep_stale``, an edge into a port that
        only exists for other parameter values (an Add's ``x3`` after ``inputs`` went from
        3 to 2, a Block port whose BlockInput was deleted inside) is kept as it is:
        validation reports it on the node, and raising the count again reattaches it. The
        document reaches that state through ``set_param``, so undo and loading a saved
        file must accept it."""
        for end, port, outs in ((edge.source, edge.source_port, True),
                                (edge.target, edge.target_port, False)):
            node = self.node(end)
            ports = node.output_ports() if outs else node.input_ports()
            if port not in {p.name for p in ports}:
                dynamic = callable(node.spec.outputs if outs else node.spec.inputs)
                if keep_stale and dynamic:
                    continue
                side = "output" if outs else "input"
                raise GraphError(f"node {end!r} ({node.type}) has no {side} port {port!r}")
        if edge in self._edges:
            raise GraphError(f"edge {edge} exists already")
        self._edges[edge] = self._edge_seq
        self._edge_seq += 1
        self._in.setdefault(edge.target, []).append(edge)
        self._out.setdefault(edge.source, []).append(edge)
        self._edges_tuple = None
        self._mutated(self.edge_added, edge)
        return edge

    def connect(self, source: str, source_port: str, target: str, target_port: str) -> Edge:
        return self.add_edge(Edge(source, source_port, target, target_port))

    def remove_edge(self, edge: Edge) -> None:
        if edge not in self._edges:
            raise GraphError(f"no edge {edge}")
        del self._edges[edge]
        self._in[edge.target].remove(edge)
        self._out[edge.source].remove(edge)
        self._edges_tuple = None
        self._mutated(self.edge_removed, edge)

    def set_param(self, node_id: str, name: str, value: Any) -> Any:
        """Set one parameter; returns the old value. Values are checked by validation."""
        node = self.node(node_id)
        node.spec.param(name)  # KeyError for a parameter the type does not have
        old = node.params.get(name)
        node.params[name] = copy.deepcopy(value)
        self._mutated(self.param_changed, node_id, name, old, value)
        return old

    def set_label(self, node_id: str, label: str) -> str:
        node = self.node(node_id)
        old, node.label = node.label, label
        self._mutated(self.label_changed, node_id, old, label)
        return old

    def move_node(self, node_id: str, position: Iterable[float]) -> tuple[float, float]:
        node = self.node(node_id)
        old, node.position = node.position, _pos(position)
        self._mutated(self.node_moved, node_id, old, node.position)
        return old

    def set_training(self, config: dict[str, Any]) -> dict[str, Any]:
        old, self.training = self.training, copy.deepcopy(config)
        self._mutated(self.training_changed, old, self.training)
        return old

    def set_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        old, self.metadata = self.metadata, copy.deepcopy(metadata)
        self._mutated(self.metadata_changed, old, self.metadata)
        return old

    def _mutated(self, event: Event, *args: Any) -> None:
        self.revision += 1
        if (event is self.node_added or event is self.node_removed or event is self.edge_added
                or event is self.edge_removed):
            self.structure_revision += 1
        event.emit(*args)
        self.changed.emit()

    # ---- whole-document helpers -------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """Metadata, nodes, edges and training as plain JSON values (a deep copy): the
        body of the file format (runtime/serialization.py adds format and version)."""
        out: dict[str, Any] = {
            "metadata": self.metadata,
            "nodes": [{"id": n.id, "type": n.type, "label": n.label, "params": n.params,
                       "position": [round(n.position[0], 2), round(n.position[1], 2)]}
                      for n in self._nodes.values()],
            "edges": [{"source": e.source, "source_port": e.source_port,
                       "target": e.target, "target_port": e.target_port}
                      for e in self.edges],
        }
        if self.training:
            out["training"] = self.training
        return json.loads(json.dumps(out))  # a deep, JSON-clean copy

    def copy(self) -> "GraphDocument":
        """A deep copy with no subscribers (revisions start at 0)."""
        out = GraphDocument()
        out.metadata = copy.deepcopy(self.metadata)
        out.training = copy.deepcopy(self.training)
        for n in self._nodes.values():
            out._nodes[n.id] = Node(n.id, n.type, copy.deepcopy(n.params), n.label, n.position)
        for e in self.edges:
            out._edges[e] = out._edge_seq
            out._edge_seq += 1
            out._in.setdefault(e.target, []).append(e)
            out._out.setdefault(e.source, []).append(e)
        return out

    def __eq__(self, other: object) -> bool:
        """Same metadata, training, nodes and edges, in the same order (positions to 0.01,
        as saved)."""
        if not isinstance(other, GraphDocument):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]  (mutable)


def check_node_id(node_id: str) -> None:
    if not isinstance(node_id, str) or not ID_RE.match(node_id):
        raise GraphError(f"node id {node_id!r} must start with a letter or _ and contain only "
                         "letters, digits and _ (it names the layer in generated code)")
    if node_id in RESERVED_IDS:
        raise GraphError(f"node id {node_id!r} is a reserved word; choose another")


def _pos(position: Iterable[float]) -> tuple[float, float]:
    x, y = position
    return (float(x), float(y))
