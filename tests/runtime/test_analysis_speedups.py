"""The analysis speed-ups change no result.

- Shape classes: a ``same_shape`` spec is run by torch once per (type, params, input
  ranks and kinds); other sizes reuse it. Every such spec, at several sizes of every rank
  it takes, gives exactly what the full meta evaluation gives, and whole graphs (the
  benchmark graphs and every example) analyse the same with and without the classes.
- A declaration torch contradicts is not trusted: the class is dropped and every size is
  evaluated in full.
- The lean flop total equals torch's FlopCounterMode.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from torch.utils.flop_counter import FlopCounterMode

import runtime
from runtime import CATALOG, GraphDocument, load_graph
from runtime import analysis as A
from runtime import evaluation as E

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "resources" / "examples").glob("*.json"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from graphgen import make_graph  # noqa: E402

SAME_SHAPE = sorted(t for t, s in CATALOG.items() if s.same_shape)
VARIANTS = {"BatchNorm": [{}, {"affine": False}], "Dropout": [{}, {"mode": "channel"}],
            "Scale": [{}, {"learnable": True}], "Add": [{}, {"inputs": 3}],
            "Multiply": [{}, {"inputs": 3}], "Sign": [{"binary": True}]}
SIZES = {1: [(7,), (12,), (3,)], 2: [(4, 9), (6, 2), (1, 5)],
         3: [(3, 8, 8), (5, 4, 6), (2, 1, 1)]}


def fields(res):
    return (res.shapes, res.kinds, res.params, res.macs, res.bytes, res.error)


def test_the_declared_specs():
    assert {"ReLU", "Sigmoid", "Tanh", "Softmax", "BatchNorm", "Dropout", "Add",
            "Multiply"} <= set(SAME_SHAPE)
    assert not {"Dense", "Conv2d", "Flatten", "Concat", "MaxPool", "Delay"} & set(SAME_SHAPE)


@pytest.mark.parametrize("type_id", SAME_SHAPE)
def test_shape_class_equals_the_full_evaluation(type_id):
    A.clear_cache()
    for params in VARIANTS.get(type_id, [{}]):
        node = GraphDocument().add_node(type_id, params)
        ports = [p.name for p in node.spec.input_ports(node.params)]
        for rank, sizes in SIZES.items():
            for shape in sizes:
                ins = {p: (shape, "float") for p in ports}
                key = E.memo_key(node, ins)
                fast = E.same_shape_result(node, ins, key)
                full = E.compute(node, ins)
                if fast is not None:
                    assert fields(fast) == fields(full), (type_id, params, shape)
                else:  # only where torch refuses the input (e.g. a rank the layer lacks)
                    assert full.error, (type_id, params, shape)
        # mismatched inputs of a multi-input op: the builder's own error, via the full path
        if len(ports) > 1:
            ins = {p: ((4 + i,), "float") for i, p in enumerate(ports)}
            assert E.same_shape_result(node, ins, E.memo_key(node, ins)) is None
            assert E.evaluate(node, ins).error
    assert any(c[0] == type_id and v is not None for c, v in E.SHAPE_CLASSES.items())


def test_a_contradicted_declaration_is_not_trusted(monkeypatch):
    """Flatten declared same_shape (it is not): torch's first answer contradicts it, the
    class is dropped, and every size is evaluated in full (right answers, no speed-up)."""
    import dataclasses

    A.clear_cache()
    monkeypatch.setitem(CATALOG, "Flatten", dataclasses.replace(CATALOG["Flatten"],
                                                                same_shape=True))
    node = GraphDocument().add_node("Flatten")
    for shape in [(3, 4, 5), (2, 6, 7)]:
        ins = {"x": (shape, "float")}
        assert E.evaluate(node, ins).shapes == {"out": (shape[0] * shape[1] * shape[2],)}
    assert [v for k, v in E.SHAPE_CLASSES.items() if k[0] == "Flatten"] == [None]


def _snapshot(doc):
    a = A.analyze_full(doc)
    return a.order, a.nodes, [str(d) for d in a.diagnostics]


def _docs():
    for unique in (False, True):
        yield f"bench{'u' if unique else ''}", make_graph(runtime, 400, unique=unique, seed=5)
    for path in EXAMPLES:
        yield path.stem, load_graph(path)


@pytest.mark.slow
@pytest.mark.parametrize("switch", ["classes", "flop_total"])
def test_whole_graphs_analyse_the_same(switch, monkeypatch):
    docs = list(_docs())
    A.clear_cache()
    fast = {name: _snapshot(doc) for name, doc in docs}
    if switch == "classes":
        monkeypatch.setattr(E, "same_shape_result", lambda node, ins, key: None)
    else:
        monkeypatch.setattr(E, "flop_counter", lambda: FlopCounterMode(display=False))
    A.clear_cache()
    for name, doc in docs:
        assert _snapshot(doc) == fast[name], name
    A.clear_cache()
