"""Bad input gives a clear message naming the place, never a traceback.

Every bad file is checked twice: through the Python API (``GraphFileError.problems``
with their locations, or validation ``Diagnostic``s pinned to nodes and ports) and through
the command line (``validate|summary|compile FILE``: exit status 1, stderr names the
place, no 'Traceback'). All three subcommands run in-process through ``runtime.cli.main``
for every file; a subprocess (``python -m app.main``, the real entry point) costs about
1.5 s of torch import, so it runs for a few files covering each kind of problem.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime import GraphDocument, GraphFileError, load_graph, loads, validate
from runtime.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


def node(id_, type_, **params):
    return {"id": id_, "type": type_, "params": params}


def edge(src, sport, dst, dport):
    return {"source": src, "source_port": sport, "target": dst, "target_port": dport}


def graph(nodes, edges, **top):
    return {"format": "netbuilder.graph", "version": 1, "nodes": nodes, "edges": edges, **top}


VEC = node("v", "VectorInput", features=6)
OUT = node("out", "Output")


@dataclass
class Bad:
    name: str
    content: object  # dict/list -> JSON, str -> text, bytes -> raw, None -> no file, "DIR"
    expect: tuple[str, ...]  # substrings naming the place and the problem
    code: str | None = None  # None: a load problem; else the validation diagnostic code
    nodes: tuple[str, ...] = ()  # nodes the diagnostic must name

    def write(self, folder: Path) -> Path:
        path = folder / f"{self.name}.json"
        if self.content is None:
            return path
        if self.content == "DIR":
            path.mkdir()
        elif isinstance(self.content, bytes):
            path.write_bytes(self.content)
        elif isinstance(self.content, str):
            path.write_text(self.content)
        else:
            path.write_text(json.dumps(self.content))
        return path


CASES = [
    Bad("malformed_json", '{"format": "netbuilder.graph",\n  "nodes": [,]}',
        ("line 2, column 13", "malformed JSON")),
    Bad("empty_file", "", ("line 1, column 1", "malformed JSON")),
    Bad("not_an_object", "[1, 2]", ("$:", "expected a JSON object, found list")),
    Bad("missing_file", None, ("no such file",)),
    Bad("a_directory", "DIR", ("cannot read",)),
    Bad("non_utf8", b'{"format": "netbuilder.graph", "label": "\xff\xfe caf\xe9"}',
        ("cannot read", "utf-8")),
    Bad("wrong_format", {"format": "keras.model", "version": 1, "nodes": [], "edges": []},
        ("$.format", "not a Netbuilder graph", "keras.model")),
    Bad("newer_version", {**graph([], []), "version": 99},
        ("$.version", "newer Netbuilder", "99")),
    Bad("version_zero", {**graph([], []), "version": 0}, ("$.version", "minimum")),
    Bad("missing_edges_key", {"format": "netbuilder.graph", "version": 1, "nodes": []},
        ("$:", "'edges' is a required property")),
    Bad("bad_node_id", graph([node("1st", "Dense")], []), ("$.nodes[0].id", "1st")),
    Bad("duplicate_id", graph([VEC, node("v", "Dense")], []),
        ("$.nodes[1].id", "'v' exists already")),
    Bad("unknown_type", graph([VEC, node("c", "Conv2D")], []),
        ("$.nodes[1].type", "unknown node type 'Conv2D'", "did you mean Conv2d")),
    Bad("unknown_param", graph([VEC, node("fc", "Dense", unitz=3)], []),
        ("$.nodes[1].params.unitz", "no parameter 'unitz'")),
    Bad("missing_port", graph([VEC, node("fc", "Dense"), OUT],
                              [edge("v", "out", "fc", "input"), edge("fc", "out", "out", "x")]),
        ("$.edges[0]", "'fc'", "no input port 'input'")),
    Bad("edge_to_unknown_node", graph([VEC, OUT], [edge("v", "out", "ghost", "x")]),
        ("$.edges[0].target", "no node with id 'ghost'")),
    Bad("unconnected_input", graph([VEC, node("fc", "Dense"), OUT], [edge("fc", "out", "out", "x")]),
        ("node 'fc' port 'x'", "not connected"), code="unconnected", nodes=("fc",)),
    Bad("out_of_range_param",
        graph([VEC, node("fc", "Dense", units=0), OUT],
              [edge("v", "out", "fc", "x"), edge("fc", "out", "out", "x")]),
        ("node 'fc' parameter 'units'", "at least 1", "received 0"), code="param", nodes=("fc",)),
    Bad("absurd_size_param",  # 10^30 units: no torch 'Overflow when unpacking' text
        graph([VEC, node("fc", "Dense", units=10**30), OUT],
              [edge("v", "out", "fc", "x"), edge("fc", "out", "out", "x")]),
        ("node 'fc' parameter 'units'", "at most 2,147,483,647", "a number of 31 digits"),
        code="param", nodes=("fc",)),
    Bad("sizes_past_what_torch_holds",  # each size allowed, their product is not
        graph([node("v", "VectorInput", features=2**31 - 1),
               node("fc", "Dense", units=2**31 - 1), OUT],
              [edge("v", "out", "fc", "x"), edge("fc", "out", "out", "x")]),
        ("node 'fc' port 'x' parameter 'units'", "sizes are too large", "2,147,483,647",
         "more elements than torch can hold"), code="shape", nodes=("fc",)),
    Bad("input_past_what_torch_holds",
        graph([node("img", "ImageInput", channels=2**31 - 1, height=2**31 - 1,
                    width=2**31 - 1), node("flat", "Flatten"), OUT],
              [edge("img", "out", "flat", "x"), edge("flat", "out", "out", "x")]),
        ("node 'img' parameter 'channels'", "more than a torch tensor can hold"),
        code="shape", nodes=("img",)),
    Bad("wrong_param_type",
        graph([VEC, node("d", "Dropout", p="half"), OUT],
              [edge("v", "out", "d", "x"), edge("d", "out", "out", "x")]),
        ("node 'd' parameter 'p'", "expected a number", "'half'"), code="param", nodes=("d",)),
    Bad("cycle",
        graph([VEC, node("add", "Add"), node("relu", "ReLU"), OUT],
              [edge("v", "out", "add", "x1"), edge("add", "out", "relu", "x"),
               edge("relu", "out", "add", "x2"), edge("relu", "out", "out", "x")]),
        ("cycle", "add", "relu", "Delay"), code="cycle", nodes=("add", "relu")),
    Bad("shape_mismatch_rank",
        graph([VEC, node("conv", "Conv2d"), OUT],
              [edge("v", "out", "conv", "x"), edge("conv", "out", "out", "x")]),
        ("node 'conv' port 'x'", "v.out", "expected (C, H, W)", "received (6)"),
        code="shape", nodes=("conv", "v")),
    Bad("shape_mismatch_add",
        graph([VEC, node("w", "VectorInput", features=4), node("add", "Add"), OUT],
              [edge("v", "out", "add", "x1"), edge("w", "out", "add", "x2"),
               edge("add", "out", "out", "x")]),
        ("node 'add' port 'x2'", "w.out", "expected (6)", "received (4)"),
        code="shape", nodes=("add", "w")),
    Bad("two_edges_into_one_input",
        graph([VEC, node("w", "VectorInput", features=6), node("fc", "Dense"), OUT],
              [edge("v", "out", "fc", "x"), edge("w", "out", "fc", "x"),
               edge("fc", "out", "out", "x")]),
        ("node 'fc' port 'x'", "2 incoming edges", "v.out", "w.out"),
        code="fan_in", nodes=("fc", "v", "w")),
    Bad("incompatible_kinds",
        graph([node("tok", "TokenInput"), node("fc", "Dense"), OUT],
              [edge("tok", "out", "fc", "x"), edge("fc", "out", "out", "x")]),
        ("node 'fc' port 'x'", "takes float values", "tok.out gives index values"),
        code="kind", nodes=("fc", "tok")),
]
IDS = [c.name for c in CASES]
# Through a real subprocess: one or two files per kind of problem (start-up is slow).
SUBPROCESS = {
    "validate": ("malformed_json", "missing_file", "non_utf8", "unknown_type", "cycle"),
    "summary": ("shape_mismatch_rank",),
    "compile": ("two_edges_into_one_input",),
}


# ---- Python API ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_api_reports_the_place(case: Bad, tmp_path):
    path = case.write(tmp_path)
    if case.code is None:
        with pytest.raises(GraphFileError) as info:
            load_graph(path)
        err = info.value
        assert err.problems, "a GraphFileError lists its problems"
        assert all(p.location and p.message for p in err.problems)
        text = "\n".join(str(p) for p in err.problems)
        assert str(path) in str(err)
    else:
        doc = load_graph(path)
        diags = [d for d in validate(doc) if d.is_error]
        found = [d for d in diags if d.code == case.code]
        assert found, f"expected a {case.code!r} diagnostic, got {diags}"
        d = found[0]
        assert set(case.nodes) <= set(d.nodes), d.nodes
        assert d.node_id in case.nodes
        text = str(d)
    for part in case.expect:
        assert part in text, f"{part!r} not in {text!r}"


def test_all_problems_are_reported_at_once():
    data = graph([node("a", "Dense", unitz=1), node("b", "Nope"), node("c", "ReLU")],
                 [edge("a", "out", "zz", "x"), edge("c", "oops", "a", "x")])
    with pytest.raises(GraphFileError) as info:
        loads(json.dumps(data), "multi.json")
    locations = [p.location for p in info.value.problems]
    assert locations == ["$.nodes[0].params.unitz", "$.nodes[1].type", "$.edges[0].target",
                         "$.edges[1]"]


def test_edges_to_a_failed_node_are_not_reported_twice():
    data = graph([VEC, node("c", "Conv2D")], [edge("v", "out", "c", "x")])
    with pytest.raises(GraphFileError) as info:
        loads(json.dumps(data))
    assert [p.location for p in info.value.problems] == ["$.nodes[1].type"]


def test_port_that_disappears_after_a_parameter_change():
    """Split with 3 parts wired from out3, then parts=2: the edge names the lost port."""
    doc = GraphDocument()
    doc.add_node("VectorInput", {"features": 6}, node_id="v")
    doc.add_node("Split", {"parts": 3}, node_id="split")
    doc.add_node("Output", node_id="out")
    doc.connect("v", "out", "split", "x")
    doc.connect("split", "out3", "out", "x")
    doc.set_param("split", "parts", 2)
    found = [d for d in validate(doc) if d.code == "port"]
    assert found and found[0].node_id == "split" and found[0].port == "out3"
    assert "split.out3 -> out.x" in found[0].message


# ---- command line --------------------------------------------------------------------------

def _run_cli(command: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.main", command, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Run every subprocess once, a few at a time: {(command, case name): result}."""
    folder = tmp_path_factory.mktemp("bad_cli")
    paths = {c.name: c.write(folder) for c in CASES}
    jobs = [(cmd, name) for cmd, names in SUBPROCESS.items() for name in names]
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = pool.map(lambda job: _run_cli(job[0], paths[job[1]]), jobs)
        return dict(zip(jobs, runs)), paths


def _check_cli_output(case: Bad, rc: int, out: str, err: str, path: Path) -> None:
    assert "Traceback" not in out + err, out + err
    assert rc == 1, (rc, out, err)
    for part in case.expect:
        assert part in err, f"{part!r} not in stderr:\n{err}"
    if case.code is None:
        assert str(path) in err  # the file is named


SUBPROCESS_CASES = [(cmd, c) for cmd, names in SUBPROCESS.items() for c in CASES
                    if c.name in names]


@pytest.mark.slow
@pytest.mark.parametrize("command, case", SUBPROCESS_CASES,
                         ids=[f"{cmd}-{c.name}" for cmd, c in SUBPROCESS_CASES])
def test_cli_subprocess(command, case: Bad, cli_results):
    results, paths = cli_results
    r = results[(command, case.name)]
    _check_cli_output(case, r.returncode, r.stdout, r.stderr, paths[case.name])


@pytest.mark.parametrize("command", ["validate", "summary", "compile"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_in_process(command, case: Bad, tmp_path, capsys):
    path = case.write(tmp_path)
    rc = cli_main([command, str(path)])
    captured = capsys.readouterr()
    _check_cli_output(case, rc, captured.out, captured.err, path)


@pytest.mark.parametrize("name", ["absurd_size_param", "sizes_past_what_torch_holds",
                                  "input_past_what_torch_holds"])
def test_sizes_too_large_are_plain_words_not_torch_internals(name, tmp_path, capsys):
    case = next(c for c in CASES if c.name == name)
    path = case.write(tmp_path)
    diags = [d for d in validate(load_graph(path)) if d.is_error]
    assert len(diags) == 1 and diags[0].param  # one report, on the parameter
    for command in ("validate", "summary", "compile"):
        assert cli_main([command, str(path)]) == 1
        err = capsys.readouterr().err
        for torch_words in ("Overflow", "overflowed", "empty()", "unpack", "RuntimeError",
                            "TypeError"):
            assert torch_words not in err, err


def test_summary_json_refuses_bad_files_too(tmp_path, capsys):
    case = next(c for c in CASES if c.name == "shape_mismatch_add")
    rc = cli_main(["summary", "--json", str(case.write(tmp_path))])
    captured = capsys.readouterr()
    assert rc == 1 and captured.out == "" and "node 'add' port 'x2'" in captured.err


@pytest.mark.slow
def test_a_model_too_big_to_build_is_a_diagnostic(tmp_path, capsys):
    """Shapes and counts work on meta tensors; building needs memory. 2^46 weights (256 TB)
    exceed any address space, so this fails the same way everywhere."""
    from runtime import build_module
    from runtime.compiler import CompileError

    data = graph([node("v", "VectorInput", features=2**20), node("fc", "Dense", units=2**26),
                  OUT], [edge("v", "out", "fc", "x"), edge("fc", "out", "out", "x")])
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    doc = load_graph(path)
    assert [d for d in validate(doc) if d.is_error] == []  # analysis is fine (meta tensors)
    with pytest.raises(CompileError) as info:
        build_module(doc)
    (d,) = info.value.diagnostics
    assert (d.node_id, d.code) == ("fc", "build") and "not enough memory" in d.message
    assert cli_main(["compile", str(path)]) == 1
    err = capsys.readouterr().err
    assert "node 'fc'" in err and "not enough memory" in err and "Traceback" not in err
