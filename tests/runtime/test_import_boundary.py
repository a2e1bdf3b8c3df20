"""runtime/ is the headless core: importing and using it never pulls in Qt or the GUI.

Runs in a fresh interpreter (this test process may have imported Qt already).
"""
from __future__ import annotations

import pytest

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUI = ("PySide6", "shiboken6", "pyqtgraph", "graph_editor", "app")

SCRIPT = r"""
import importlib, json, pkgutil, sys, tempfile
GUI = %r

def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & set(GUI))

stages = {}
import runtime
from runtime import GraphDocument, analyze, build_module, example_inputs, validate
doc = GraphDocument("tiny")
doc.add_node("ImageInput", {"channels": 1, "height": 6, "width": 6}, node_id="img")
doc.add_node("Conv2d", {"filters": 2}, node_id="conv")
doc.add_node("Flatten", node_id="flat")
doc.add_node("Dense", {"units": 3}, node_id="fc")
doc.add_node("Output", node_id="out")
for a, b, port in (("img", "conv", "x"), ("conv", "flat", "x"), ("flat", "fc", "x"),
                   ("fc", "out", "x")):
    doc.connect(a, "out", b, port)
assert validate(doc) == [], validate(doc)
assert analyze(doc).nodes["fc"].output_shape == (3,)
y = build_module(doc, mode="predict")(*example_inputs(doc, batch=2))
assert tuple(y.shape) == (2, 3)
stages["import runtime, analyze, build, run"] = loaded()

skipped = []
for info in pkgutil.walk_packages(runtime.__path__, "runtime."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as exc:  # an optional extra (onnx...) not installed
        skipped.append(f"{info.name}: {exc.name}")
stages["import every runtime module"] = loaded()

from runtime.cli import main
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    runtime.save_graph(doc, f.name)
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["validate", f.name]) == 0
    assert main(["summary", f.name]) == 0
stages["runtime.cli validate, summary"] = loaded()
print(json.dumps({"stages": stages, "skipped": skipped}))
""" % (GUI,)


@pytest.mark.slow
def test_runtime_never_imports_the_gui():
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    for stage, gui_modules in report["stages"].items():
        assert gui_modules == [], f"{stage} imported {gui_modules}"
