"""Ids out of range are caught by validation, not by an IndexError while training;
summary, compile and build_module refuse what validate refuses."""
import json
from pathlib import Path

import pytest
import torch

from runtime import GraphDocument, build_module, example_inputs, load_graph, save_graph, validate
from runtime.cli import main as cli_main
from runtime.compiler import CompileError
from tests.builders import token_classifier

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def test_consistent_ids_are_valid_and_train():
    d = token_classifier(vocab=20, table=20, classes=3, scores=3)
    assert validate(d) == []
    out = build_module(d)(*example_inputs(d, batch=4, mode="train"))
    assert torch.isfinite(out["loss"])


def test_vocabulary_larger_than_embedding_is_an_error():
    d = token_classifier(vocab=50, table=20, classes=3, scores=3)
    diags = [x for x in validate(d) if x.code == "id_range"]
    assert len(diags) == 1
    assert diags[0].node_id == "embed" and diags[0].param == "num_embeddings"
    assert "49" in diags[0].message and "tokens" in diags[0].message
    with pytest.raises(CompileError) as exc:  # not an IndexError at run time
        build_module(d)
    assert [x.node_id for x in exc.value.diagnostics if x.is_error] == ["embed"]


def test_classes_differ_from_scores_is_an_error():
    d = token_classifier(vocab=20, table=20, classes=10, scores=3)
    diags = [x for x in validate(d) if x.code == "id_range"]
    assert len(diags) == 1
    assert diags[0].node_id == "loss" and diags[0].port == "target"
    assert "10 classes" in diags[0].message and "3" in diags[0].message


def test_one_hot_too_small():
    d = GraphDocument("onehot")
    d.add_node("TokenInput", {"steps": 3, "vocab_size": 8}, node_id="tokens")
    d.add_node("OneHot", {"num_classes": 4}, node_id="onehot")
    d.add_node("Output", node_id="y")
    d.connect("tokens", "out", "onehot", "ids")
    d.connect("onehot", "out", "y", "x")
    diags = [x for x in validate(d) if x.code == "id_range"]
    assert [x.node_id for x in diags] == ["onehot"]


def _spirals_with_classes(tmp_path, classes: int) -> Path:
    """mlp_spirals (2 scores) with its Target saying ``classes`` classes."""
    doc = load_graph(EXAMPLES / "mlp_spirals.json")
    doc.set_param("label", "num_classes", classes)
    path = tmp_path / "spirals.json"
    save_graph(doc, path)
    return path


@pytest.mark.parametrize("command", ["validate", "summary", "compile"])
def test_every_command_refuses_classes_the_scores_lack(command, tmp_path, capsys):
    """Before, only validate ran the id checks: summary and compile exited 0 and the
    compiled module failed in training with 'IndexError: Target 4 is out of bounds'."""
    path = _spirals_with_classes(tmp_path, 5)
    args = [command, str(path)] + (["--json"] if command == "summary" else [])
    assert cli_main(args) == 1
    out, err = capsys.readouterr()
    assert "node 'loss'" in err and "5 classes" in err and "have 2" in err
    assert "Traceback" not in out + err
    assert "def forward" not in out and '"nodes"' not in out
    assert cli_main([command, str(_spirals_with_classes(tmp_path, 2))]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("mode", ["train", "predict"])
def test_build_module_refuses_what_validate_refuses(mode):
    doc = load_graph(EXAMPLES / "mlp_spirals.json")
    doc.set_param("label", "num_classes", 5)
    want = [(x.node_id, x.code, x.message) for x in validate(doc) if x.is_error]
    assert want and want[0][:2] == ("loss", "id_range")
    with pytest.raises(CompileError) as exc:
        build_module(doc, mode=mode)
    assert [(x.node_id, x.code, x.message) for x in exc.value.diagnostics if x.is_error] == want
    text_graph_doc = token_classifier(vocab=50, table=20, classes=3, scores=3)
    with pytest.raises(CompileError) as exc:  # vocabulary larger than the table
        build_module(text_graph_doc, mode=mode)
    assert {x.node_id for x in exc.value.diagnostics if x.is_error} == {"embed"}


def test_summary_json_of_a_consistent_graph_still_works(tmp_path, capsys):
    path = tmp_path / "ids.json"
    save_graph(token_classifier(vocab=20, table=20, classes=3, scores=3), path)
    assert cli_main(["summary", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] > 0
