"""Blocks: grouping a selection into one node with an inner graph (runtime/blocks.py)."""
from __future__ import annotations


import pytest
import torch

from runtime import analyze, build_module, dumps, loads, validate
from runtime import blocks
from runtime.compiler import example_inputs
from tests.builders import example, lenet5



def _edges(doc):
    return sorted(str(e) for e in doc.edges)


def _same(a, b):
    """Equal nodes in the same order and the same edge set."""
    from runtime.serialization import graph_to_dict

    da, db = graph_to_dict(a), graph_to_dict(b)
    return da["nodes"] == db["nodes"] and _edges(a) == _edges(b) and da["metadata"] == db["metadata"]


@pytest.fixture
def lenet():
    return lenet5()


def test_group_c1_tanh_validates_and_keeps_totals(lenet):
    before = analyze(lenet)
    bid = blocks.group(lenet, ["C1", "tanh_C1"])
    assert bid == "block1" and "C1" not in lenet and lenet.nodes[bid].type == "Block"
    assert [p.name for p in lenet.nodes[bid].input_ports()] == ["in1"]
    assert [p.name for p in lenet.nodes[bid].output_ports()] == ["out1"]
    assert [d for d in validate(lenet) if d.is_error] == []
    after = analyze(lenet)
    assert after.total_params == before.total_params
    assert after.total_macs == before.total_macs
    assert after.nodes[bid].output_shapes == {"out1": (6, 28, 28)}
    assert after.nodes[bid].params == before.nodes["C1"].params
    assert after.input_shapes(lenet, "S2") == {"x": (6, 28, 28)}


def test_compiled_outputs_equal_with_copied_weights(lenet):
    flat = build_module(lenet, mode="predict")
    grouped_doc = lenet.copy()
    bid = blocks.group(grouped_doc, ["C1", "tanh_C1"])
    grouped = build_module(grouped_doc, mode="predict")
    state = {}
    for k, v in flat.state_dict().items():
        head, _, rest = k.partition(".")
        state[(f"{bid}__{head}" if head in ("C1", "tanh_C1") else head) + "." + rest] = v
    grouped.load_state_dict(state)
    x = example_inputs(lenet, batch=3)
    with torch.no_grad():
        a, b = flat(*x), grouped(*x)
    assert torch.equal(a, b)


def test_save_reopen_and_ungroup_restore(lenet):
    original = lenet.copy()
    bid = blocks.group(lenet, ["C1", "tanh_C1"])
    again = loads(dumps(lenet), "grouped")
    assert again == lenet
    assert analyze(again).total_params == analyze(original).total_params
    ids = blocks.ungroup(again, bid)
    assert ids == ["C1", "tanh_C1"]
    assert _same(again, original)


def test_edit_inside_block_changes_outer_shapes(lenet):
    bid = blocks.group(lenet, ["C1", "tanh_C1"])
    inner = blocks.inner_document(lenet.nodes[bid])
    inner.set_param("C1", "filters", 8)
    lenet.set_param(bid, "graph", blocks.graph_param(inner))
    assert analyze(lenet).nodes[bid].output_shapes == {"out1": (8, 28, 28)}
    assert analyze(lenet).nodes["S2"].output_shape == (8, 14, 14)  # downstream follows


def test_inner_errors_are_reported_on_the_block(lenet):
    bid = blocks.group(lenet, ["C1", "tanh_C1"])
    inner = blocks.inner_document(lenet.nodes[bid])
    inner.set_param("C1", "kernel_size", 40)  # larger than the 32x32 image
    lenet.set_param(bid, "graph", blocks.graph_param(inner))
    errs = [d for d in validate(lenet) if d.is_error]
    assert errs and errs[0].node_id == bid and "C1" in errs[0].message


def test_broken_inner_graph_is_a_diagnostic(lenet):
    bid = blocks.group(lenet, ["C1", "tanh_C1"])
    lenet.set_param(bid, "graph", {"nodes": [{"id": "x", "type": "Nope"}], "edges": []})
    errs = [d for d in validate(lenet) if d.is_error]
    assert errs and errs[0].node_id == bid and "Nope" in errs[0].message
    lenet.set_param(bid, "graph", "not a graph")
    errs = [d for d in validate(lenet) if d.is_error]
    assert errs and errs[0].node_id == bid and errs[0].param == "graph"


def test_nested_blocks_expand(lenet):
    reference = analyze(lenet)
    inner_id = blocks.group(lenet, ["C1", "tanh_C1"])
    outer_id = blocks.group(lenet, [inner_id, "S2", "tanh_S2"])
    flat = blocks.expand(lenet)
    assert f"{outer_id}__{inner_id}__C1" in flat
    assert analyze(lenet).total_params == reference.total_params
    assert [d for d in validate(lenet) if d.is_error] == []


def test_block_free_documents_take_no_detour(lenet):
    validate(lenet)
    analyze(lenet)
    assert lenet.derived["has_blocks"] == (lenet.structure_revision, False)
    assert "analyzer" in lenet.derived and "validator" in lenet.derived


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["python", "onnx", "bundle"])
def test_grouped_graph_exports_and_verifies(lenet, tmp_path, fmt):
    from runtime.export.core import export

    blocks.group(lenet, ["C1", "tanh_C1"])
    out = tmp_path / ("lenet.onnx" if fmt == "onnx" else "lenet")
    result = export(lenet, fmt, out)
    assert result.verified, result
    if fmt == "python":
        code = (out / "model.py").read_text()
        assert "self.block1__C1 = " in code


def test_a_wire_to_a_block_port_removed_inside_is_reported_and_undoable():
    """Deleting a BlockInput inside an open block leaves the outer wire to that port:
    it is an error on the block (not a crash), and deleting and restoring the block
    brings the wire back as it was."""
    doc = example("mlp_spirals")
    bid = blocks.group(doc, ["hidden1", "tanh1", "hidden2"])
    inner = blocks.inner_document(doc.node(bid))
    (bin_id,) = [n.id for n in inner if n.type == "BlockInput"]
    inner.remove_node(bin_id)
    doc.set_param(bid, "graph", blocks.graph_param(inner))
    stale = [d for d in validate(doc) if d.code == "port" and d.node_id == bid]
    assert stale and bin_id in stale[0].message
    edges = set(doc.edges)
    node, removed = doc.remove_node(bid)
    doc.insert_node(node, removed)
    assert set(doc.edges) == edges
