"""File > Export and File > Import on the real main window; the export dialog runs the
real exporter in a child process and shows the verification result."""
from __future__ import annotations

import pytest

from PySide6.QtCore import Qt

from app import export_ui
from runtime.graph import GraphDocument


def small_doc() -> GraphDocument:
    d = GraphDocument("tiny mlp")
    d.add_node("VectorInput", {"features": 3}, node_id="x")
    d.add_node("Dense", {"units": 4}, node_id="h")
    d.add_node("Tanh", node_id="act")
    d.add_node("Dense", {"units": 2}, node_id="o")
    d.add_node("Target", {"num_classes": 2}, node_id="t")
    d.add_node("CrossEntropy", node_id="loss")
    for a, b in (("x", "h"), ("h", "act"), ("act", "o")):
        d.connect(a, "out", b, "x")
    d.connect("o", "out", "loss", "pred")
    d.connect("t", "out", "loss", "target")
    return d


@pytest.mark.slow
def test_export_dialog_exports_and_shows_the_verification(qtbot, tmp_path):
    dlg = export_ui.ExportDialog(small_doc(), default_dir=tmp_path, base_name="tiny")
    qtbot.addWidget(dlg)
    assert all(b.isEnabled() for b in dlg.format_buttons.values())
    assert dlg.reason_labels["torchscript"].text()  # the deprecation is said up front
    dlg.select_format("onnx")
    assert dlg.path_edit.text() == str(tmp_path / "tiny.onnx")
    qtbot.mouseClick(dlg.export_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=90_000)
    assert dlg.result["ok"], dlg.result
    assert (tmp_path / "tiny.onnx").exists()
    assert "max abs difference" in dlg.status_label.text()
    assert dlg.progress_bar.value() == 100
    assert "onnxruntime" in dlg.details.toPlainText() and "batch 4" in dlg.details.toPlainText()


@pytest.mark.slow
def test_export_dialog_reports_failure_and_unsupported_formats(qtbot, tmp_path):
    broken = GraphDocument("broken")
    broken.add_node("VectorInput", node_id="x")
    broken.add_node("Dense", node_id="d")
    broken.add_node("Output", node_id="o")
    broken.connect("d", "out", "o", "x")
    dlg = export_ui.ExportDialog(broken, default_dir=tmp_path)
    qtbot.addWidget(dlg)
    assert not any(b.isEnabled() for b in dlg.format_buttons.values())
    assert "is not connected" in dlg.reason_labels["onnx"].text()
    assert not dlg.export_button.isEnabled()
    # a supported graph with weights that do not fit: a plain failure message
    dlg2 = export_ui.ExportDialog(small_doc(), default_dir=tmp_path)
    qtbot.addWidget(dlg2)
    dlg2.select_format("bundle")
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"not safetensors")
    dlg2.weights_combo.setCurrentIndex(1)
    dlg2.weights_edit.setText(str(bad))
    dlg2.start_export()
    qtbot.waitUntil(lambda: dlg2.result is not None, timeout=90_000)
    assert not dlg2.result["ok"]
    assert "safetensors" in dlg2.status_label.text()


@pytest.mark.slow
def test_install_adds_menu_actions_and_import_replaces_the_document(qtbot, tmp_path):
    from app.window import MainWindow

    class Prompts:
        def __init__(self):
            self.errors = []

        def error(self, title, text, details=""):
            self.errors.append((title, text, details))

        def unsaved(self, name):
            return "discard"

        def recover(self, name, when):
            return False

    win = MainWindow(small_doc(), prompts=Prompts(), recovery_dir=tmp_path / "rec", plugins=False)
    qtbot.addWidget(win)
    export_ui.install(win)
    titles = [a.text() for a in win.menu("&File").actions()]
    assert "&Export..." in titles and "&Import PyTorch/ONNX..." in titles
    dlg = export_ui.open_export_dialog(win)
    assert dlg.isVisible() and dlg.selected_format() is not None
    dlg.close()
    src = tmp_path / "user_net.py"
    src.write_text("import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n"
                   "    def __init__(self):\n        super().__init__()\n"
                   "        self.fc = nn.Linear(5, 3)\n        self.act = nn.ReLU()\n\n"
                   "    def forward(self, x):\n        return self.act(self.fc(x))\n")
    assert export_ui.module_classes(src) == ["Net"]
    job = export_ui.open_import(win, str(src), "Net", ["5"])
    with qtbot.waitSignal(job.imported, timeout=90_000):
        pass
    assert sorted(n.type for n in win.document) == ["Dense", "Output", "ReLU", "VectorInput"]
    bad = export_ui.open_import(win, str(src), "Missing", ["5"])
    with qtbot.waitSignal(bad.failed, timeout=90_000):
        pass
    assert win.prompts.errors and "Missing" in win.prompts.errors[-1][2]


@pytest.mark.slow
def test_export_dialog_offers_the_last_training_runs_weights(qtbot, tmp_path):
    import torch
    from safetensors.torch import save_file

    from runtime.compiler import build_module
    from runtime.export import load_bundle

    doc = small_doc()
    state = {k: torch.full_like(v, 0.25) for k, v in build_module(doc).state_dict().items()}
    (tmp_path / "run1").mkdir()
    weights = tmp_path / "run1" / "weights.safetensors"
    save_file(state, str(weights))
    plain = export_ui.ExportDialog(doc, default_dir=tmp_path)  # no run yet: two choices
    qtbot.addWidget(plain)
    assert plain.weights_combo.count() == 2 and plain.weights_combo.currentIndex() == 0
    dlg = export_ui.ExportDialog(doc, default_dir=tmp_path, trained_weights=weights)
    qtbot.addWidget(dlg)
    assert dlg.weights_combo.count() == 3
    assert dlg.weights_combo.currentData() == dlg.WEIGHTS_RUN  # the default after a run
    assert "last training run" in dlg.weights_combo.currentText()
    assert not dlg.weights_edit.isEnabled()
    dlg.select_format("bundle")
    dlg.start_export()
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=90_000)
    assert dlg.result["ok"], dlg.result
    _, exported = load_bundle(dlg.path_edit.text())
    assert all(torch.equal(exported[k], state[k]) for k in state)


@pytest.mark.slow
def test_export_dialog_asks_before_replacing_and_never_writes_over_the_graph(qtbot, tmp_path):
    graph = tmp_path / "tiny.json"
    from runtime import save_graph

    save_graph(small_doc(), graph)
    dlg = export_ui.ExportDialog(small_doc(), default_dir=tmp_path, base_name="tiny",
                                 source_path=graph)
    qtbot.addWidget(dlg)
    dlg.select_format("onnx")
    asked = []
    dlg.path_edit.setText(str(graph))  # the graph's own file: refused without asking
    dlg.confirm_replace = lambda path: asked.append(path) or True
    dlg.start_export()
    assert dlg.job is None and not asked and "own file" in dlg.status_label.text()
    assert graph.read_text().startswith("{")
    out = tmp_path / "tiny.onnx"
    out.write_bytes(b"keep me")
    dlg.path_edit.setText(str(out))
    dlg.confirm_replace = lambda path: asked.append(path) or False  # "No"
    dlg.start_export()
    assert asked == [out] and dlg.job is None and out.read_bytes() == b"keep me"
    assert "kept" in dlg.status_label.text()
    dlg.confirm_replace = lambda path: True  # "Yes": replaced once verified
    dlg.start_export()
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=90_000)
    assert dlg.result["ok"], dlg.result
    assert out.read_bytes() != b"keep me" and out.stat().st_size > 100
