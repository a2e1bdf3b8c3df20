"""Graph files written by hand or by an attacker: every mistake gets a plain message naming
the place (or a warning where the graph is legal but rarely meant), never a traceback,
a hang or a memory blow-up. The fuzz test at the end feeds mutated gallery files through
every entry point (tests/runtime/graph_fuzz.py builds the corpus)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import time
from pathlib import Path

import pytest

from runtime import GraphFileError, analyze, build_module, load_graph, loads, save_graph, validate
from runtime.catalog import CATALOG, OTHER_NAMES
from runtime.cli import main as cli_main
from runtime.graph import MODULE_ATTRIBUTES, GraphDocument, GraphError
from runtime.serialization import MAX_DEPTH, MAX_FILE_BYTES

from .graph_fuzz import mutant, run_guarded

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def graph(nodes, edges, **top):
    return {"format": "netbuilder.graph", "version": 1, "nodes": nodes, "edges": edges, **top}


def node(id_, type_, **params):
    return {"id": id_, "type": type_, "params": params}


def edge(src, dst, sport="out", dport="x"):
    return {"source": src, "source_port": sport, "target": dst, "target_port": dport}


MLP = graph([node("v", "VectorInput", features=4), node("fc", "Dense", units=3),
             node("out", "Output")], [edge("v", "fc"), edge("fc", "out")])


def problems(content) -> list[str]:
    text = content if isinstance(content, str) else json.dumps(content)
    with pytest.raises(GraphFileError) as info:
        loads(text)
    return [str(p) for p in info.value.problems]


def cli(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(list(args))
    return code, out.getvalue() + err.getvalue()


# ---- graphs written by hand ------------------------------------------------------------

def _without_flatten(name: str) -> dict:
    d = example(name)
    flat = next(n for n in d["nodes"] if n["type"] == "Flatten")
    src = next(e for e in d["edges"] if e["target"] == flat["id"])
    dst = next(e for e in d["edges"] if e["source"] == flat["id"])
    d["nodes"].remove(flat)
    d["edges"] = [e for e in d["edges"] if flat["id"] not in (e["source"], e["target"])]
    d["edges"].append(edge(src["source"], dst["target"], src["source_port"], dst["target_port"]))
    return d


def test_dense_on_an_image_tensor_warns_that_a_flatten_may_be_missing(tmp_path):
    d = graph([node("img", "ImageInput", channels=3, height=8, width=8),
               node("conv", "Conv2d", filters=4, kernel_size=3, padding=1),
               node("pool", "MaxPool"), node("fc1", "Dense", units=16),
               node("fc2", "Dense", units=5), node("out", "Output")],
              [edge("img", "conv"), edge("conv", "pool"), edge("pool", "fc1"),
               edge("fc1", "fc2"), edge("fc2", "out")])
    diags = validate(loads(json.dumps(d)))
    assert not any(x.is_error for x in diags), diags
    (warn,) = [x for x in diags if x.code == "last_axis"]  # one, on the first Dense
    assert warn.node_id == "fc1" and warn.severity == "warning" and "pool" in warn.nodes
    assert warn.message.startswith("Dense applies to the last axis of (4, 4, 4) from pool.out")
    assert "add a Flatten before it" in warn.message
    code, out = cli("validate", _write(d, tmp_path))
    assert code == 0 and "Dense applies to the last axis" in out
    d["nodes"].insert(3, node("flat", "Flatten"))  # with the Flatten: no warning
    d["edges"][2:3] = [edge("pool", "flat"), edge("flat", "fc1")]
    assert validate(loads(json.dumps(d))) == []


@pytest.mark.slow
def test_vgg_without_its_flatten_warns():
    d = _without_flatten("vgg_small")
    diags = validate(loads(json.dumps(d)))
    (warn,) = [x for x in diags if x.code == "last_axis"]
    assert warn.node_id == "fc1" and "Dense applies to the last axis of (64, 8, 8)" in warn.message
    assert not [x for x in validate(load_graph(EXAMPLES / "vgg_small.json"))
                if x.code == "last_axis"]


def _write(data, folder: Path, name="g.json") -> str:
    path = folder / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8",
                    errors="surrogatepass")
    return str(path)


def test_concat_mismatch_names_the_input_that_differs_and_its_producer():
    d = graph([node("img", "ImageInput", channels=3, height=16, width=16),
               node("a", "Conv2d", filters=8, kernel_size=3, padding=1),
               node("b", "Conv2d", filters=4, kernel_size=3),  # no padding: 14 x 14
               node("c", "Conv2d", filters=8, kernel_size=1),
               node("cat", "Concat", inputs=3), node("out", "Output")],
              [edge("img", "a"), edge("img", "b"), edge("img", "c"),
               edge("a", "cat", dport="x1"), edge("b", "cat", dport="x2"),
               edge("c", "cat", dport="x3"), edge("cat", "out")])
    (diag,) = [x for x in validate(loads(json.dumps(d))) if x.is_error]
    assert diag.node_id == "cat" and diag.port == "x2" and "b" in diag.nodes
    assert "differs from the other inputs on axis 1 (height): 14, the others 16" in diag.message
    assert "expected" not in diag.message
    assert "input 'x2' from b.out" in diag.message and "x2: " not in diag.message


def test_concat_with_a_first_input_that_is_the_odd_one():
    d = graph([node("v", "SequenceInput", steps=5, features=3),
               node("w", "SequenceInput", steps=6, features=3),
               node("cat", "Concat", inputs=3, axis=-1), node("out", "Output")],
              [edge("w", "cat", dport="x1"), edge("v", "cat", dport="x2"),
               edge("v", "cat", dport="x3"), edge("cat", "out")])
    (diag,) = [x for x in validate(loads(json.dumps(d))) if x.is_error]
    assert diag.port == "x1" and "w" in diag.nodes and "6, the others 5" in diag.message


def test_pool_stride_zero_is_shown_and_documented_as_the_window_size():
    for t in ("MaxPool", "AvgPool", "SumPool", "L2Pool"):
        p = CATALOG[t].param("stride")
        assert p.default == 0 and p.display_label() == "stride (0 = window size)"
        assert "0 (the default) = the window size" in p.doc
    catalog_md = (ROOT / "docs" / "catalog.md").read_text(encoding="utf-8")
    assert "`stride` (stride (0 = window size) in the inspector)" in catalog_md
    assert "0 = window size" in (ROOT / "docs" / "graph-format.md").read_text(encoding="utf-8")


def test_adaptive_average_pooling_node():
    d = graph([node("img", "ImageInput", channels=2, height=9, width=7),
               node("pool", "AdaptiveAvgPool", output_size=[2, 3]), node("flat", "Flatten"),
               node("out", "Output")],
              [edge("img", "pool"), edge("pool", "flat"), edge("flat", "out")])
    doc = loads(json.dumps(d))
    assert validate(doc) == []
    info = analyze(doc).nodes["pool"]
    assert info.output_shapes["out"] == (2, 2, 3) and info.params == 0 and info.macs == 0
    import torch

    x = torch.randn(3, 2, 9, 7)
    y = build_module(doc, mode="predict")(x)
    torch.testing.assert_close(y, torch.nn.functional.adaptive_avg_pool2d(x, (2, 3)).flatten(1))
    # inside an ONNX export the same windows come from a running sum: equal values
    from runtime.catalog.modules import _window_means

    z = _window_means(_window_means(x, 2, 2), 3, 3)
    torch.testing.assert_close(z, torch.nn.functional.adaptive_avg_pool2d(x, (2, 3)))
    assert "AdaptiveAvgPool" in (ROOT / "docs" / "catalog.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_adaptive_average_pooling_exports_to_onnx_at_sizes_that_do_not_divide(tmp_path):
    from runtime.export import export

    for shape, size in (((2, 9, 7), [2, 3]), ((10, 3), 4)):
        img = (node("x", "ImageInput", channels=shape[0], height=shape[1], width=shape[2])
               if len(shape) == 3 else node("x", "SequenceInput", steps=shape[0],
                                            features=shape[1]))
        d = graph([img, node("pool", "AdaptiveAvgPool", output_size=size),
                   node("flat", "Flatten"), node("out", "Output")],
                  [edge("x", "pool"), edge("pool", "flat"), edge("flat", "out")])
        for fmt in ("onnx", "torchscript"):
            result = export(loads(json.dumps(d)), fmt, tmp_path / f"m{len(shape)}.{fmt}")
            assert result.max_abs_diff < 1e-5 and not result.notes


@pytest.mark.parametrize("name", sorted(OTHER_NAMES))
def test_torch_and_keras_names_suggest_the_catalog_name(name):
    (msg,) = problems(graph([node("a", name)], []))
    assert f"unknown node type {name!r} (did you mean {OTHER_NAMES[name]}?" in msg
    assert OTHER_NAMES[name] in CATALOG


@pytest.mark.parametrize("name,expect", [("AdaptiveAvgPool2d", "AdaptiveAvgPool"),
                                         ("Linear", "Dense"), ("Conv2D", "Conv2d"),
                                         ("Conv2d", None), ("conv2d", "Conv2d"),
                                         ("BatchNorm2d", "BatchNorm"), ("MaxPool2d", "MaxPool"),
                                         ("relu", "ReLU")])
def test_common_torch_names(name, expect):
    if expect is None:
        loads(json.dumps(graph([node("a", name)], [])))  # a catalog name: loads
        return
    (msg,) = problems(graph([node("a", name)], []))
    assert f"did you mean {expect}?" in msg


def test_summary_lists_branches_together_and_states_the_mac_convention():
    code, out = cli("summary", str(EXAMPLES / "inception_small.json"), "--json")
    assert code == 0
    ids = [r["id"] for r in json.loads(out)["nodes"]]
    for branch in (["inc1_3x3_reduce", "inc1_3x3_reduce_relu", "inc1_3x3", "inc1_3x3_relu"],
                   ["inc1_5x5_reduce", "inc1_5x5_reduce_relu", "inc1_5x5", "inc1_5x5_relu"],
                   ["inc1_pool", "inc1_pool_proj", "inc1_pool_proj_relu"]):
        at = ids.index(branch[0])
        assert ids[at:at + len(branch)] == branch, ids
    assert ids.index("inc1_concat") > max(ids.index(b) for b in ("inc1_5x5_relu", "inc1_pool_proj_relu"))
    assert ids.index("label") == ids.index("loss") - 1  # a target right before its loss
    doc = load_graph(EXAMPLES / "inception_small.json")
    order = doc.reading_order()
    seen = set()
    for nid in order:  # a topological order
        assert all(e.source in seen for e in doc.in_edges(nid)), nid
        seen.add(nid)
    code, help_text = _help("summary")
    assert "one multiply-add = 1 MAC" in " ".join(help_text.split())
    assert "bias additions, pooling, activations" in " ".join(help_text.split())
    fmt = " ".join((ROOT / "docs" / "graph-format.md").read_text(encoding="utf-8").split())
    assert "one multiply-add = 1 MAC" in fmt


def test_reading_order_of_a_recurrent_graph_is_complete():
    doc = load_graph(EXAMPLES / "gru_cell.json")
    assert sorted(doc.reading_order()) == sorted(doc.nodes)


def _help(cmd: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as info:
        cli_main([cmd, "--help"])
    return info.value.code, out.getvalue()


# ---- hostile files: plain load errors ----------------------------------------------------

def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_json_nested_deeper_than_the_limit_is_a_load_error():
    for levels in (MAX_DEPTH + 5, 1_200, 100_000):
        text = json.dumps(graph([], [], metadata={"x": "DEEP"})).replace('"DEEP"', _deep(levels))
        (msg,) = problems(text)
        assert "nested more than 128 levels deep" in msg


def test_blocks_nested_200_deep_are_a_load_error():
    inner = node("fc", "Dense")
    for _ in range(250):
        inner = {"id": "b", "type": "Block", "params": {"graph": {"nodes": [inner], "edges": []}}}
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        text = json.dumps(graph([inner], []))
    finally:
        sys.setrecursionlimit(limit)
    (msg,) = problems(text)  # (json's own parser stops first: the place is "$")
    assert "nested more than 128 levels deep" in msg
    inner = node("fc", "Dense")
    for _ in range(40):  # deeper than the limit, within what json parses
        inner = {"id": "b", "type": "Block", "params": {"graph": {"nodes": [inner], "edges": []}}}
    (msg,) = problems(graph([inner], []))
    assert msg.startswith("$.nodes[0].params.graph.nodes[0].params") and "nested more" in msg


def test_parameters_nested_600_deep_are_a_load_error():
    text = json.dumps(graph([node("r", "Reshape", shape="DEEP")], [])).replace(
        '"DEEP"', _deep(700))
    (msg,) = problems(text)
    assert msg.startswith("$.nodes[0].params.shape") and "nested more than" in msg


def test_positions_past_the_float_range_are_a_load_error():
    for pos in ([10**400, 0], [0, -(10**309)], [1e300, 0], "here", [1]):
        d = graph([{"id": "v", "type": "VectorInput", "position": pos}], [])
        text = json.dumps(d)
        msgs = problems(text)
        assert any(m.startswith("$.nodes[0].position") for m in msgs), msgs
    nan = '{"format": "netbuilder.graph", "version": 1, "edges": [], "nodes": [{"id": "v", ' \
          '"type": "VectorInput", "position": [NaN, Infinity]}]}'
    assert "out of range" in problems(nan)[0]
    with pytest.raises(GraphError, match="position"):
        GraphDocument().add_node("Dense", position=(10**400, 0))


def _block(inner_nodes, inner_edges=(), bid="blk"):
    return {"id": bid, "type": "Block",
            "params": {"graph": {"nodes": list(inner_nodes), "edges": list(inner_edges)}}}


@pytest.mark.parametrize("inner", [
    {"id": "p", "type": "BlockInput", "params": [1, 2]},
    {"id": "p", "type": "BlockInput", "params": "kind"},
    {"id": "fc", "type": "Dense", "params": 3},
    {"id": "fc", "type": "Dense", "position": [10**400, 0]},
    {"id": "fc", "type": "Dense", "label": 7},
    {"id": "train", "type": "Dense"},
])
def test_broken_inner_nodes_of_a_block_are_diagnostics(inner, tmp_path):
    d = graph([node("v", "VectorInput", features=4), _block([inner]), node("out", "Output")],
              [edge("v", "out")])
    doc = loads(json.dumps(d))
    diags = validate(doc)
    assert any(x.is_error and x.node_id == "blk" for x in diags), diags
    analyze(doc)  # never raises
    code, out = cli("validate", _write(d, tmp_path))
    assert code == 1 and "Traceback" not in out and "blk" in out


@pytest.mark.parametrize("bad", ["graph", "code", "meta", "type", "train", "eval", "to",
                                 "float", "__init__", "cuda",
                                 "state_dict", "_modules", "__class__", "parameters"])
def test_ids_clashing_with_module_attributes_are_refused(bad, tmp_path):
    d = graph([node("v", "VectorInput", features=4), node(bad, "Dense"), node("out", "Output")],
              [edge("v", bad), edge(bad, "out")])
    msgs = problems(d)
    assert msgs == [f"$.nodes[1].id: node id {bad!r} is the name of a method or attribute "
                    f"every torch module has (the id names the layer's attribute in the "
                    f"compiled module); choose another, e.g. {bad.strip('_') + '_1'!r}"]
    code, out = cli("compile", _write(d, tmp_path))
    assert code == 1 and "Traceback" not in out and "choose another" in out


def test_the_refused_attribute_names_cover_the_installed_torch():
    from torch import fx, nn

    gm = fx.GraphModule(nn.Module(), fx.Graph())
    names = {n for n in set(dir(gm)) | set(vars(gm)) if not n.startswith("__")}
    assert names <= MODULE_ATTRIBUTES, sorted(names - MODULE_ATTRIBUTES)


def test_gallery_ids_are_all_allowed_and_compile():
    for path in sorted(EXAMPLES.glob("*.json")):
        doc = load_graph(path)  # (no example uses a refused id)
        assert not set(doc.nodes) & MODULE_ATTRIBUTES


def test_an_id_with_a_trailing_newline_is_refused(tmp_path):
    d = graph([node("v", "VectorInput", features=4), node("hidden1\n", "Dense"),
               node("out", "Output")], [edge("v", "hidden1\n"), edge("hidden1\n", "out")])
    assert any("$.nodes[1].id" in m and "'hidden1\\n'" in m for m in problems(d))
    code, out = cli("compile", _write(d, tmp_path))
    assert code == 1 and "Traceback" not in out


def test_a_lone_surrogate_is_refused_at_load_and_summary_does_not_break(tmp_path):
    d = json.loads(json.dumps(MLP))
    d["nodes"][1]["label"] = "\ud800"
    text = json.dumps(d)  # "\\ud800" in the file: valid JSON, not valid Unicode
    (msg,) = problems(text)
    assert msg.startswith("$.nodes[1].label") and "lone surrogate" in msg and "\\ud800" in msg
    path = _write(text, tmp_path)
    for cmd in ("summary", "validate", "compile"):
        code, out = cli(cmd, path)
        assert code == 1 and "Traceback" not in out and "lone surrogate" in out
        out.encode("utf-8")  # printable
    d["nodes"][1]["label"] = "ok"
    d["metadata"] = {"\udfff": 1}
    assert "a key holds an invalid character" in problems(d)[0]


@pytest.mark.parametrize("version,ok", [(2.0, False), (2, False), (1.5, False),
                                        (1.0, True), (1, True)])
def test_version_numbers(version, ok):
    d = {**MLP, "version": version}
    if ok:
        assert len(loads(json.dumps(d))) == 3
    else:
        (msg,) = problems(d)
        assert msg.startswith("$.version: written by a newer Netbuilder")


def test_devices_pipes_and_huge_files_are_refused_before_reading(tmp_path):
    for dev in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(dev):
            with pytest.raises(GraphFileError, match="not a regular file"):
                load_graph(dev)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opening it to read would block forever without a writer
    with pytest.raises(GraphFileError, match="not a regular file"):
        load_graph(fifo)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: no disk used
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(GraphFileError, match=f"at most {MAX_FILE_BYTES:,}"):
        load_graph(huge)
    code, out = cli("validate", "/dev/zero")
    assert code == 1 and "not a regular file" in out and "Traceback" not in out


def test_a_save_removes_stale_temporaries_left_by_a_killed_save(tmp_path):
    target = tmp_path / "big.json"
    doc = loads(json.dumps(MLP))
    save_graph(doc, target)
    stale_old = tmp_path / ".big.json.k3j2h1g0.tmp"  # an older save's name, hours old
    stale_old.write_text("{")
    os.utime(stale_old, (time.time() - 7200,) * 2)
    dead = tmp_path / ".big.json.4194305.abcd1234.tmp"  # the writer (a pid) is gone
    dead.write_text("{")
    live = tmp_path / f".big.json.{os.getpid()}.zzzz.tmp"  # a save in progress: kept
    live.write_text("{")
    other = tmp_path / ".other.json.1.abcd.tmp"  # another file's: kept
    other.write_text("{")
    save_graph(doc, target)
    assert not stale_old.exists() and not dead.exists()
    assert live.exists() and other.exists()
    assert load_graph(target) == doc


# ---- the fuzz test -----------------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("NETBUILDER_FUZZ_EXAMPLES", "300"))
CASE_SECONDS = 60.0  # a case past this is a hang (the slowest take about 5 s here)
RSS_GROWTH_BYTES = 3 * 2**30  # peak memory may not grow past this over the whole run


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # (KiB on Linux)


@pytest.mark.slow
@pytest.mark.timeout(max(900, FUZZ_EXAMPLES * 3))
def test_mutated_gallery_files_never_raise_hang_or_blow_up(tmp_path):
    """NETBUILDER_FUZZ_EXAMPLES=3000 for the big run (default 300)."""
    base = _peak_rss()
    findings = {}
    for seed in range(FUZZ_EXAMPLES):
        name, text = mutant(seed)
        found = run_guarded(text, tmp_path, CASE_SECONDS)  # a hang is a finding
        if found:
            findings[name] = found
        assert _peak_rss() - base < RSS_GROWTH_BYTES, f"memory blew up at {name}"
    assert not findings, "\n".join(f"--- {k}\n" + "\n".join(v) for k, v in findings.items())


def test_the_fuzz_corpus_is_fixed_and_hostile():
    assert mutant(7) == mutant(7)
    texts = [mutant(s)[1] for s in range(30)]
    assert len(set(texts)) > 25
    loaded = 0
    for t in texts:
        try:
            loads(t)
            loaded += 1
        except GraphFileError:
            pass
    assert 3 < loaded < 27  # some mutants load (and reach validation), some do not


def test_analyze_never_raises_on_parameters_validation_refuses():
    for name, key, value in (("bigru_tagger", "steps", None), ("lenet5", "height", "32"),
                             ("mlp_spirals", "features", [2])):
        d = example(name)
        n = next(n for n in d["nodes"] if key in n.get("params", {}))
        n["params"][key] = value
        doc = loads(json.dumps(d))
        result = analyze(doc)  # no exception
        diag = next(x for x in result.diagnostics if x.node_id == n["id"])
        assert diag.param == key and "expected a whole number" in diag.message
        assert any(x.code == "param" and x.node_id == n["id"] for x in validate(doc))


# ---- long sequences ------------------------------------------------------------------------

def _with_steps(name: str, steps: int) -> dict:
    d = example(name)
    for n in d["nodes"]:
        p = n.get("params", {})
        if "steps" in p:
            p["steps"] = steps
        if n["type"] == "Target" and isinstance(p.get("shape"), list) and p["shape"]:
            p["shape"][0] = steps
    return d


SLOW = pytest.mark.slow  # (torch's meta LSTM and GRU run step by step: seconds at T = 90)


@pytest.mark.parametrize("type_id,params", [
    ("RNN", {}), pytest.param("LSTM", {"bidirectional": True}, marks=SLOW),
    pytest.param("GRU", {"num_layers": 2, "return_sequences": False}, marks=SLOW),
    pytest.param("LSTM", {"initial_state": "input", "hidden_size": 4}, marks=SLOW),
    ("LeakyRNN", {}), ("EchoState", {"units": 3}),
    pytest.param("GRU", {"hidden_size": 3, "bidirectional": True}, marks=SLOW)])
def test_recurrent_layers_on_long_sequences_equal_the_full_evaluation(type_id, params):
    from runtime.evaluation import compute
    from runtime.graph import Node
    from runtime.longseq import long_sequence_result

    node = Node("n", type_id, CATALOG[type_id].full_params(params))
    ins = {p.name: (((90, 5) if p.name == "x" else (4,)), "float")
           for p in node.input_ports()}
    full, short = compute(node, ins), long_sequence_result(node, ins, compute)
    assert full.error is None
    assert (short.shapes, short.kinds, short.params, short.macs, short.bytes) == \
        (full.shapes, full.kinds, full.params, full.macs, full.bytes)


def test_analysis_runs_recurrent_layers_at_short_lengths_only(monkeypatch):
    """The fused layers' meta forward (step by step in torch) never sees the real T:
    analysis of a million-step sequence costs what a short one does."""
    import runtime.evaluation as ev

    seen: list[int] = []
    real = ev.compute

    def spy(node, ins):
        if node.type in ("GRU", "LSTM", "RNN", "EchoState", "LeakyRNN"):
            seen.append(ins["x"][0][0])
        return real(node, ins)
    monkeypatch.setattr(ev, "compute", spy)
    ev.clear_cache()
    for name in ("bigru_tagger", "echo_state_sine", "char_lstm"):
        doc = loads(json.dumps(_with_steps(name, 1_000_000)))
        assert not [x for x in validate(doc) if x.is_error], name
        a = analyze(doc)
        rec = next(n for n in doc if n.type in ("GRU", "LSTM", "EchoState"))
        shape = a.nodes[rec.id].output_shapes["out"]
        assert shape[0] == 1_000_000 and a.nodes[rec.id].macs > 1_000_000
    assert seen and max(seen) <= 4, seen


def test_absurd_sequence_lengths_are_a_parameter_error():
    for name in ("echo_state_sine", "bigru_tagger"):
        doc = loads(json.dumps(_with_steps(name, 10**7)))
        errors = [x for x in validate(doc) if x.is_error]
        assert errors and errors[0].param == "steps" and "at most 1000000" in errors[0].message


def test_numbers_past_a_floats_range_are_parameter_errors_everywhere():
    """(A fuzz finding: 10**400 in a parameter with a maximum raised OverflowError.)"""
    huge = 10**400
    for spec in CATALOG.values():
        for p in spec.params:
            if p.type not in ("int", "float", "size", "ints"):
                continue
            for value in (huge, -huge, [huge] if p.type in ("size", "ints") else huge):
                problems_ = spec.param_problems({p.name: value})
                assert any(name == p.name and len(msg) < 200 for name, msg in problems_), \
                    (spec.type, p.name, problems_)  # a short message, no exception


@pytest.mark.slow
def test_torch_adaptive_average_pooling_imports_as_the_node(tmp_path):
    (tmp_path / "m.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n        self.pool = nn.AdaptiveAvgPool2d((3, 2))\n"
        "        self.fc = nn.Linear(24, 5)\n\n    def forward(self, x):\n"
        "        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))\n")
    code, out = cli("import", str(tmp_path / "m.py"), "--class", "Net", "--input-shape",
                    "3,11,9", "--out", str(tmp_path / "g.json"))
    assert code == 0 and "max abs diff" in out, out
    doc = load_graph(tmp_path / "g.json")
    (pool,) = [n for n in doc if n.type == "AdaptiveAvgPool"]
    assert pool.params["output_size"] == [3, 2]
    assert analyze(doc).nodes[pool.id].output_shapes["out"] == (4, 3, 2)


@pytest.mark.slow
def test_the_temporary_of_a_save_killed_with_sigkill_is_removed_by_the_next_save(tmp_path):
    import signal
    import subprocess
    import sys

    target = tmp_path / "big.json"
    doc = loads(json.dumps(MLP))
    save_graph(doc, target)
    child = subprocess.Popen(  # a save of 400 MB: killed while it writes
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from runtime.serialization import atomic_write_bytes; "
         "atomic_write_bytes(Path(sys.argv[1]), b' ' * 400_000_000)", str(target)],
        cwd=ROOT)
    deadline = time.monotonic() + 60
    pattern = f".big.json.{child.pid}.*.tmp"
    while not list(tmp_path.glob(pattern)) and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(tmp_path.glob(pattern)), "the save finished before it could be killed"
    assert load_graph(target) == doc  # the old file is intact
    save_graph(doc, target)
    assert not list(tmp_path.glob(".big.json.*.tmp"))
    assert load_graph(target) == doc


def test_predict_mode_refuses_a_graph_whose_predictions_need_a_target():
    """(A fuzz finding: a Target wired into a layer compiled in train mode, and predict
    mode raised KeyError.)"""
    from runtime.compiler import CompileError

    d = graph([node("v", "VectorInput", features=4), node("y", "Target", kind="value",
                                                           shape=[4]),
               node("add", "Add"), node("out", "Output"), node("loss", "SquaredError")],
              [edge("v", "add", dport="x1"), edge("y", "add", dport="x2"),
               edge("add", "out"), edge("add", "loss", dport="pred"),
               edge("y", "loss", dport="target")])
    doc = loads(json.dumps(d))
    build_module(doc, mode="train")  # legal for training
    with pytest.raises(CompileError) as info:
        build_module(doc, mode="predict")
    (diag,) = info.value.diagnostics
    assert diag.node_id == "y" and diag.code == "target_use" and "add" in diag.nodes


def test_a_delay_fed_from_outside_its_recurrent_region_is_a_diagnostic(tmp_path):
    """(A fuzz finding: a Delay fed by the region's Last node validated, and compile
    raised KeyError.)"""
    d = example("gru_cell")
    feed = next(e for e in d["edges"] if e["target"] == "h_prev" and e["target_port"] == "x")
    feed["source"] = "last"
    doc = loads(json.dumps(d))
    (diag,) = [x for x in validate(doc) if x.is_error]
    assert diag.node_id == "h_prev" and diag.port == "x" and "last" in diag.nodes
    assert "not part of it" in diag.message
    code, out = cli("compile", _write(d, tmp_path))
    assert code == 1 and "Traceback" not in out
