"""The editor, validate() and the command line check a graph with the same pipeline:
an id-range error (a vocabulary of 100 into an Embedding of 50) shows in all three."""
from __future__ import annotations

from runtime import blocks, validate
from runtime.cli import main as cli_main
from runtime.serialization import save_graph
from tests.builders import token_classifier


def id_errors(diags):
    return [d for d in diags if d.code == "id_range" and d.is_error]


def test_id_range_error_in_editor_validate_and_cli(make_window, qtbot, tmp_path, capsys):
    doc = token_classifier(vocab=100, table=50, classes=3, scores=3)
    path = tmp_path / "ids.json"
    save_graph(doc, path)

    (want,) = id_errors(validate(doc))
    assert want.node_id == "embed" and "up to 99" in want.message

    assert cli_main(["validate", str(path)]) == 1
    assert want.message in capsys.readouterr().err

    w = make_window()
    assert w.open_path(path)
    qtbot.waitUntil(lambda: bool(id_errors(w.editor.diagnostics)), timeout=20_000)
    (shown,) = id_errors(w.editor.diagnostics)
    assert shown == want
    texts = [w.diagnostics.item(i).text() for i in range(w.diagnostics.count())]
    assert any(want.message in t for t in texts), texts
    assert w.editor.scene.node_items["embed"].error  # pinned to the node on the canvas
    # the sound parts keep their shapes on the canvas
    assert w.editor.analysis.nodes["embed"].output_shape == (5, 4)


def test_id_range_error_inside_a_block_is_pinned_to_the_block(make_window, qtbot):
    doc = token_classifier(vocab=100, table=50, classes=3, scores=3)
    bid = blocks.group(doc, ["embed", "flat"])
    (want,) = id_errors(validate(doc))
    assert want.node_id == bid and "inside the block, embed" in want.message

    w = make_window()
    w.set_document(doc, None)
    w.editor.run_analysis()
    assert id_errors(w.editor.diagnostics) == [want]
    assert w.editor.scene.node_items[bid].error
