"""The graph document: nodes, edges, training configuration, metadata, and its events.

The document is the evented model of the editor (napari-style): every mutation is one
method that emits one past-tense event, then ``changed``. The editor's undo commands
call these methods and nothing else; views subscribe to the events.
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .catalog import get_spec
from .catalog import short_repr
from .events import Event

ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # used with fullmatch (``$`` would let "a\n" in)
RESERVED_IDS = frozenset({"self", "torch", "input", "output", "forward", "training"} | {
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
    "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
    "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
    "return", "try", "while", "with", "yield"})
# Names the compiled module (a torch.fx.GraphModule, an nn.Module) already has: a node id
# names its layer's attribute, so ``train``, ``graph``, ``to``... would replace a method or
# clash with one. Ids starting with two underscores are refused as well (Python's own).
# tests/runtime/test_hostile_graphs.py checks this list against the installed torch.
MODULE_ATTRIBUTES = frozenset({
    'T_destination', '_apply', '_backward_hooks', '_backward_pre_hooks', '_boxed_call',
    '_buffers', '_call_impl', '_code', '_compiled_call_impl', '_create_node_hooks',
    '_deepcopy_hooks', '_deepcopy_init', '_erase_node_hooks', '_forward_hooks',
    '_forward_hooks_always_called', '_forward_hooks_with_kwargs', '_forward_pre_hooks',
    '_forward_pre_hooks_with_kwargs', '_get_backward_hooks', '_get_backward_pre_hooks',
    '_get_name', '_graph', '_is_full_backward_hook', '_lineno_map',
    '_load_from_state_dict', '_load_state_dict_post_hooks',
    '_load_state_dict_pre_hooks', '_maybe_warn_non_full_backward_hook', '_modules',
    '_named_members', '_non_persistent_buffers_set', '_parameters', '_prologue_start',
    '_recompile_submodules', '_register_create_node_hook', '_register_deepcopy_hook',
    '_register_erase_node_hook', '_register_load_state_dict_pre_hook',
    '_register_replace_node_hook', '_register_state_dict_hook', '_replace_hooks',
    '_replicate_for_data_parallel', '_save_to_state_dict', '_set_replace_hook',
    '_slow_forward', '_state_dict_hooks', '_state_dict_pre_hooks', '_tracer_cls',
    '_tracer_extras', '_unregister_create_node_hook', '_unregister_deepcopy_hook',
    '_unregister_erase_node_hook', '_unregister_replace_node_hook', '_version',
    '_wrapped_call', '_wrapped_call_impl', 'add_module', 'add_submodule', 'apply',
    'bfloat16', 'buffers', 'call_super_init', 'children', 'code', 'compile', 'cpu',
    'cuda', 'delete_all_unused_submodules', 'delete_submodule', 'double',
    'dump_patches', 'eval', 'extra_repr', 'float', 'forward', 'get_buffer',
    'get_extra_state', 'get_parameter', 'get_submodule', 'graph', 'half', 'ipu',
    'load_state_dict', 'meta', 'modules', 'mtia', 'named_buffers', 'named_children',
    'named_modules', 'named_parameters', 'parameters', 'print_readable', 'recompile',
    'register_backward_hook', 'register_buffer', 'register_forward_hook',
    'register_forward_pre_hook', 'register_full_backward_hook',
    'register_full_backward_pre_hook', 'register_load_state_dict_post_hook',
    'register_load_state_dict_pre_hook', 'register_module', 'register_parameter',
    'register_state_dict_post_hook', 'register_state_dict_pre_hook', 'requires_grad_',
    'set_extra_state', 'set_submodule', 'shape_env', 'share_memory', 'state_dict', 'to',
    'to_empty', 'to_folder', 'train', 'training', 'type', 'xpu', 'zero_grad'})


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
    """The stem of generated node ids, read like the type: 'ReLU' -> 'relu',
    'Conv2d' -> 'conv' (ids conv1, conv2...), 'MaxPool' -> 'max_pool', 'LSTM' -> 'lstm',
    'LeakyReLU' -> 'leaky_relu'."""
    stem = re.sub(r"[123]d$", "", type_id) or type_id  # conv1, not conv2d1
    # an acronym is one word: ReLU, GELU, LSTM, GRU (then a capital starts the next one)
    stem = re.sub(r"([A-Z][a-z]?[A-Z]+)(?=[A-Z][a-z]|$|\d)",
                  lambda m: m.group(1)[0] + m.group(1)[1:].lower(), stem)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower()


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

    def reading_order(self) -> list[str]:
        """Node ids in a topological order that keeps branches together: after a node,
        the first branch it feeds is followed to where branches meet, then the next
        branch, then what joins them (an Inception module's branches one after another).
        Ties follow the file's node order; edges leaving a Delay node (the recurrent
        feedback) do not count. Nodes on a cycle come last, in file order."""
        nodes = self._nodes
        rank = {nid: i for i, nid in enumerate(nodes)}
        indeg = dict.fromkeys(nodes, 0)
        succ: dict[str, list[str]] = {}
        for e in self.edges:
            if "delay" in nodes[e.source].spec.tags:
                continue
            succ.setdefault(e.source, []).append(e.target)
            indeg[e.target] += 1
        for nid in succ:  # each successor once, in file order
            succ[nid] = sorted(set(succ[nid]), key=rank.__getitem__)
        order: list[str] = []
        stack = sorted((n for n, d in indeg.items() if d == 0), key=rank.__getitem__,
                       reverse=True)
        while stack:
            nid = stack.pop()
            order.append(nid)
            ready = []
            for nxt in succ.get(nid, ()):
                indeg[nxt] -= 1
                if indeg[nxt] == 0:
                    ready.append(nxt)
            stack.extend(reversed(ready))  # the first branch is taken next
        if len(order) < len(nodes):
            seen = set(order)
            order += [n for n in nodes if n not in seen]
        return order

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
    if not isinstance(node_id, str) or not ID_RE.fullmatch(node_id):
        raise GraphError(f"node id {node_id!r} must start with a letter or _ and contain only "
                         "letters, digits and _ (it names the layer in generated code)")
    if node_id in RESERVED_IDS:
        raise GraphError(f"node id {node_id!r} is a reserved word; choose another")
    if node_id in MODULE_ATTRIBUTES or node_id.startswith("__"):
        raise GraphError(f"node id {node_id!r} is the name of a method or attribute every "
                         f"torch module has (the id names the layer's attribute in the "
                         f"compiled module); choose another, e.g. {node_id.strip('_') + '_1'!r}")


POSITION_LIMIT = 1e9  # canvas coordinates: far past any drawing, well inside a float


def _pos(position: Iterable[float]) -> tuple[float, float]:
    """(x, y) as floats; GraphError for anything else (a non-pair, text, an integer past
    a float's range, inf/nan, or a place further out than POSITION_LIMIT)."""
    try:
        x, y = position
        out = (float(x), float(y))
    except (TypeError, ValueError, OverflowError):
        raise GraphError(f"position {short_repr(position, 60)} must be two numbers (x, y)") from None
    if not all(math.isfinite(v) and abs(v) <= POSITION_LIMIT for v in out):
        raise GraphError(f"position {short_repr(position, 60)} is out of range (each coordinate "
                         f"between -{POSITION_LIMIT:.0e} and {POSITION_LIMIT:.0e})")
    return out

