"""The graph document: evented mutations, undoable removal, ids, atomic save."""
from __future__ import annotations

import os

import pytest

from runtime import Edge, GraphDocument, GraphError, load_graph, save_graph
from runtime.events import Event
from runtime.serialization import graph_to_dict
from runtime.graph import check_node_id, type_prefix

EVENTS = ("node_added", "node_removed", "edge_added", "edge_removed", "param_changed",
          "label_changed", "node_moved", "training_changed", "metadata_changed", "changed")


def record(doc: GraphDocument) -> list:
    """Subscribe to every event; returns the list the calls are appended to."""
    log: list = []
    for name in EVENTS:
        getattr(doc, name).connect(lambda *args, _n=name: log.append((_n, args)))
    return log


def without_edge_order(doc: GraphDocument) -> dict:
    data = graph_to_dict(doc)
    data["edges"].sort(key=lambda e: tuple(e.values()))
    return data


def mlp() -> GraphDocument:
    doc = GraphDocument("mlp")
    doc.add_node("VectorInput", {"features": 4}, node_id="x", position=(0, 0))
    doc.add_node("Dense", {"units": 8}, node_id="h", label="hidden", position=(100, 0))
    doc.add_node("ReLU", node_id="r")
    doc.add_node("Dense", {"units": 2}, node_id="o")
    doc.add_node("Output", node_id="out")
    for a, b in (("x", "h"), ("h", "r"), ("r", "o"), ("o", "out")):
        doc.connect(a, "out", b, "x")
    return doc


# ---- events ---------------------------------------------------------------------------------

def test_every_mutation_emits_its_event_then_changed():
    doc = GraphDocument()
    log = record(doc)

    def step(call, event):
        before, rev = len(log), doc.revision
        result = call()
        emitted = log[before:]
        assert [name for name, _ in emitted] == [event, "changed"], emitted
        assert doc.revision == rev + 1
        return result, emitted[0][1]

    node, args = step(lambda: doc.add_node("VectorInput", node_id="x"), "node_added")
    assert args == (node,)
    step(lambda: doc.add_node("Dense", node_id="fc"), "node_added")
    edge, args = step(lambda: doc.connect("x", "out", "fc", "x"), "edge_added")
    assert args == (edge,) and edge == Edge("x", "out", "fc", "x")
    old, args = step(lambda: doc.set_param("fc", "units", 3), "param_changed")
    assert old == 10 and args == ("fc", "units", 10, 3)
    _, args = step(lambda: doc.set_label("fc", "scores"), "label_changed")
    assert args == ("fc", "", "scores")
    _, args = step(lambda: doc.move_node("fc", (5, 6)), "node_moved")
    assert args == ("fc", (0.0, 0.0), (5.0, 6.0))
    _, args = step(lambda: doc.set_training({"epochs": 3}), "training_changed")
    assert args == ({}, {"epochs": 3})
    _, args = step(lambda: doc.set_metadata({"name": "n2"}), "metadata_changed")
    assert args[1] == {"name": "n2"}
    _, args = step(lambda: doc.remove_edge(edge), "edge_removed")
    assert args == (edge,)
    removed, args = step(lambda: doc.remove_node("fc"), "node_removed")
    assert args == (removed[0],)


def test_remove_node_emits_edge_removals_first():
    doc = mlp()
    log = record(doc)
    doc.remove_node("r")
    names = [n for n, _ in log]
    assert names == ["edge_removed", "changed", "edge_removed", "changed",
                     "node_removed", "changed"]
    assert {args[0] for n, args in log if n == "edge_removed"} == {
        Edge("h", "out", "r", "x"), Edge("r", "out", "o", "x")}


def test_refused_mutations_emit_nothing():
    doc = mlp()
    log = record(doc)
    rev = doc.revision
    with pytest.raises(GraphError):
        doc.add_node("Dense", node_id="h")  # duplicate id
    with pytest.raises(KeyError, match="did you mean Conv2d"):
        doc.add_node("Conv2D")
    with pytest.raises(GraphError, match="no input port 'y'"):
        doc.connect("x", "out", "h", "y")
    with pytest.raises(GraphError, match="no node with id 'ghost'"):
        doc.connect("ghost", "out", "h", "x")
    with pytest.raises(GraphError, match="exists already"):
        doc.connect("x", "out", "h", "x")
    with pytest.raises(GraphError, match="no edge"):
        doc.remove_edge(Edge("x", "out", "o", "x"))
    with pytest.raises(KeyError):
        doc.set_param("h", "no_such_param", 1)
    with pytest.raises(GraphError):
        doc.remove_node("ghost")
    assert log == [] and doc.revision == rev


def test_event_callbacks_may_disconnect_while_running():
    ev = Event("e")
    calls = []

    def once(*args):
        calls.append(("once", args))
        ev.disconnect(once)

    ev.connect(once)
    ev.connect(lambda *a: calls.append(("always", a)))
    ev.emit(1)
    ev.emit(2)
    assert calls == [("once", (1,)), ("always", (1,)), ("always", (2,))]
    assert len(ev) == 1


# ---- undo support, ids ---------------------------------------------------------------------------

def test_remove_then_insert_restores_an_equal_document():
    doc = mlp()
    before = doc.copy()
    node, edges = doc.remove_node("h")
    assert node.id == "h" and node.params["units"] == 8 and node.label == "hidden"
    assert sorted(map(str, edges)) == ["h.out -> r.x", "x.out -> h.x"]
    assert "h" not in doc and doc != before
    doc.insert_node(node, edges)
    # the node is back in its place (node order = the compiled input order); edges come
    # back appended, and edge order carries no meaning, so compare them as a set
    assert list(doc.nodes) == list(before.nodes)
    assert set(doc.edges) == set(before.edges)
    assert without_edge_order(doc) == without_edge_order(before)
    with pytest.raises(GraphError):
        doc.insert_node(node)  # already there


def test_undo_of_a_multi_node_removal_restores_order_and_signature():
    """Remove an input and a middle node; put them back in reverse order (undo)."""
    from runtime.compiler import signature

    doc = mlp()
    doc.add_node("VectorInput", {"features": 4}, node_id="x2")
    doc.add_node("Add", node_id="add")
    doc.remove_edge(Edge("x", "out", "h", "x"))
    doc.connect("x", "out", "add", "x1")
    doc.connect("x2", "out", "add", "x2")
    doc.connect("add", "out", "h", "x")
    before = doc.copy()
    removed = [doc.remove_node(n) for n in ("x", "r", "add")]
    for node, edges in reversed(removed):
        doc.insert_node(node, edges)
    assert list(doc.nodes) == list(before.nodes)
    assert signature(doc) == signature(before)
    assert set(doc.edges) == set(before.edges)


def test_copy_is_deep_and_has_no_subscribers():
    doc = mlp()
    record(doc)
    twin = doc.copy()
    assert twin == doc and twin is not doc
    assert all(len(getattr(twin, name)) == 0 for name in EVENTS)
    twin.set_param("h", "units", 99)
    assert doc.nodes["h"].params["units"] == 8 and twin != doc


def test_params_are_copied_in():
    doc = GraphDocument()
    levels = [1, 2]
    doc.add_node("SpatialPyramidPool", {"levels": levels}, node_id="spp")
    levels.append(3)
    assert doc.nodes["spp"].params["levels"] == [1, 2]
    new = [4]
    doc.set_param("spp", "levels", new)
    new.append(5)
    assert doc.nodes["spp"].params["levels"] == [4]


def test_new_id():
    doc = GraphDocument()
    assert doc.new_id("Conv2d") == "conv1"
    doc.add_node("Conv2d")
    doc.add_node("Conv2d")
    assert list(doc.nodes) == ["conv1", "conv2"]
    assert doc.new_id("Conv2d") == "conv3"
    doc.remove_node("conv1")
    assert doc.new_id("Conv2d") == "conv1"  # gaps are reused
    assert doc.add_node("MaxPool").id == "max_pool1"
    assert type_prefix("LocalResponseNorm") == "local_response_norm"
    # ids read like the type
    assert [type_prefix(t) for t in ("ReLU", "LeakyReLU", "LSTM", "GELU", "Conv1d")] == \
        ["relu", "leaky_relu", "lstm", "gelu", "conv"]


def test_empty_id_means_generate_one():
    doc = GraphDocument()
    assert doc.add_node("Dense", node_id="").id == "dense1"
    with pytest.raises(GraphError):
        check_node_id("")


@pytest.mark.parametrize("bad", ["1x", "a-b", "with space", "ünï", "class", "self",
                                 "forward", "torch", "None"])
def test_bad_ids_are_refused(bad):
    doc = GraphDocument()
    with pytest.raises(GraphError, match="node id"):
        doc.add_node("Dense", node_id=bad)
    assert len(doc) == 0


# ---- files ------------------------------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path):
    doc = mlp()
    doc.set_training({"epochs": 2, "optimizer": {"type": "sgd", "lr": 0.1}})
    path = tmp_path / "sub" / "dir" / "mlp.json"  # folders are created
    save_graph(doc, path)
    again = load_graph(path)
    assert again == doc and again.revision == 0
    assert again.nodes["h"].position == (100.0, 0.0) and again.nodes["h"].label == "hidden"


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    save_graph(mlp(), path)
    original = path.read_bytes()
    changed = mlp()
    changed.set_param("h", "units", 64)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_graph(changed, path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["net.json"]  # no temporary file left behind


def test_failure_while_writing_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    save_graph(mlp(), path)
    original = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        save_graph(GraphDocument("other"), path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["net.json"]


def _add_with_three_inputs():
    d = GraphDocument()
    d.add_node("VectorInput", node_id="x")
    d.add_node("Add", {"inputs": 3}, node_id="a")
    for p in ("x1", "x2", "x3"):
        d.connect("x", "out", "a", p)
    d.set_param("a", "inputs", 2)  # x3's wire is now stale: kept, reported
    return d


def test_a_wire_into_a_port_a_parameter_removed_survives_save_and_reopen(tmp_path):
    from runtime import validate
    from runtime.serialization import load_graph, save_graph

    d = _add_with_three_inputs()
    save_graph(d, tmp_path / "g.json")
    back = load_graph(tmp_path / "g.json")  # this used to refuse the file
    assert set(back.edges) == set(d.edges)
    (diag,) = [x for x in validate(back) if x.code == "port"]
    assert diag.node_id == "a" and diag.port == "x3" and "no longer has" in diag.message
    back.set_param("a", "inputs", 3)  # raising the count reattaches it
    assert not [x for x in validate(back) if x.code == "port"]


def test_removing_and_restoring_a_node_keeps_its_stale_wires():
    d = _add_with_three_inputs()
    before = set(d.edges)
    node, edges = d.remove_node("a")
    d.insert_node(node, edges)  # undo of a deletion
    assert set(d.edges) == before


def test_a_port_that_can_never_exist_is_still_refused():
    d = GraphDocument()
    d.add_node("VectorInput", node_id="x")
    d.add_node("Dense", node_id="h")
    with pytest.raises(GraphError, match="no input port 'y'"):
        d.add_edge(Edge("x", "out", "h", "y"), keep_stale=True)  # Dense's ports are fixed
