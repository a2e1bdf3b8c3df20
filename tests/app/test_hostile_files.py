"""Hostile files opened in the app: the window shows the problem, keeps its document and
never raises; the inspector says what a pool's stride 0 means."""
from __future__ import annotations

import json
import os

from PySide6.QtWidgets import QLabel

from tests.app.helpers import ScriptedPrompts
from tests.app.test_window import EXAMPLES
from runtime.serialization import MAX_FILE_BYTES


def _opened_with_error(w, path) -> tuple[str, str, str]:
    before = w.document
    w.prompts.errors.clear()
    assert not w.open_path(path)
    assert w.document is before
    (error,) = w.prompts.errors
    return error


def test_devices_huge_and_hostile_files_show_a_message(make_window, tmp_path):
    w = make_window(prompts=ScriptedPrompts())
    w.open_example(EXAMPLES / "lenet5.json")
    if os.path.exists("/dev/zero"):
        title, text, details = _opened_with_error(w, "/dev/zero")
        assert title == "Cannot open graph" and "not a regular file" in details
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    assert f"at most {MAX_FILE_BYTES:,}" in _opened_with_error(w, huge)[2]
    deep = tmp_path / "deep.json"
    deep.write_text('{"format": "netbuilder.graph", "version": 1, "edges": [], "nodes": '
                    + "[" * 5000 + "]" * 5000 + "}")
    assert "nested more than" in _opened_with_error(w, deep)[2]
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": "netbuilder.graph", "version": 2.0, "nodes": [],
                                 "edges": []}))
    assert "newer Netbuilder" in _opened_with_error(w, newer)[2]
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({"format": "netbuilder.graph", "version": 1, "edges": [],
                                 "nodes": [{"id": "train", "type": "Dense"}]}))
    assert "choose another" in _opened_with_error(w, clash)[2]


def test_the_inspector_names_stride_zero(make_window):
    w = make_window(prompts=ScriptedPrompts())
    w.open_example(EXAMPLES / "vgg_small.json")
    pool = next(n.id for n in w.document if n.type == "MaxPool")
    w.select_node(pool)
    labels = [lab.text() for lab in w.inspector.findChildren(QLabel)]
    assert "stride (0 = window size)" in labels
    assert "kernel size" in labels
