"""File > Export... and File > Import PyTorch/ONNX...

Exports and imports run in a child process (``python -m runtime.cli export|import``):
the editor never freezes, a crash in torch cannot take unsaved work down, and the user's
Python file (which an import of a PyTorch module must run) never runs inside the editor.
The dialog shows which formats the graph supports (and why not), the progress, and the
verification result with the largest difference found.
"""
from __future__ import annotations

import ast
import json
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDialog, QDialogButtonBox,
                               QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPlainTextEdit, QProgressBar,
                               QPushButton, QRadioButton, QVBoxLayout, QWidget)

REPO_ROOT = Path(__file__).resolve().parent.parent
SUFFIX = {"bundle": ".zip", "torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx", "python": ""}


def _child_env() -> QProcessEnvironment:
    env = QProcessEnvironment.systemEnvironment()
    paths = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.insert("PYTHONPATH", os.pathsep.join(paths))
    return env


class _CliJob(QProcess):
    """``netbuilder ARGS`` in a child Python, with progress lines ("[ 30%] message") parsed."""

    progress = Signal(int, str)
    done = Signal(int, str, str)  # exit code, stdout, stderr

    def __init__(self, args: list[str], parent=None):
        super().__init__(parent)
        self._out, self._err = b"", b""
        self.setProcessEnvironment(_child_env())
        self.setWorkingDirectory(str(REPO_ROOT))
        self.readyReadStandardOutput.connect(self._read_out)
        self.readyReadStandardError.connect(self._read_err)
        self.finished.connect(self._finished)
        self.errorOccurred.connect(self._error)
        self._args = ["-m", "runtime"] + args

    def start_job(self) -> None:
        self.start(sys.executable, self._args)

    def _read_out(self):
        self._out += bytes(self.readAllStandardOutput())

    def _read_err(self):
        chunk = bytes(self.readAllStandardError())
        self._err += chunk
        for line in chunk.decode("utf-8", "replace").splitlines():
            line = line.strip()
            if line.startswith("[") and "%]" in line:
                try:
                    pct = int(line[1:line.index("%")].strip())
                except ValueError:
                    continue
                self.progress.emit(pct, line[line.index("%]") + 2:].strip())

    def _finished(self, code, status):
        self._read_out()
        self._read_err()
        if status != QProcess.NormalExit:
            code = code or -1
        self.done.emit(int(code), self._out.decode("utf-8", "replace"),
                       self._err.decode("utf-8", "replace"))

    def _error(self, err):
        if err == QProcess.FailedToStart:
            self.done.emit(-1, "", f"could not start {sys.executable}")


class ExportDialog(QDialog):
    """Choose a format (with what this graph supports and why not), a path and the
    weights; run the export with progress; show the verification result."""

    finished_export = Signal(dict)  # the JSON result of the CLI (ok, max_abs_diff, ...)

    WEIGHTS_INITIAL, WEIGHTS_FILE, WEIGHTS_RUN = "initial", "file", "run"

    def __init__(self, document, parent: QWidget | None = None, *, default_dir: Path | None = None,
                 base_name: str = "model", trained_weights: Path | None = None,
                 source_path: Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setObjectName("ExportDialog")
        self.resize(640, 560)
        from runtime.serialization import dumps

        self._graph_text = dumps(document)  # a snapshot: later edits do not leak in
        self._tmp = tempfile.TemporaryDirectory(prefix="nb-export-")
        self._default_dir = Path(default_dir or Path.home())
        self._base = base_name
        self._source = Path(source_path).resolve() if source_path else None  # never written over
        self.job: _CliJob | None = None
        self.result: dict | None = None

        from runtime.export import FORMAT_TITLES, FORMATS, capabilities

        self.caps = capabilities(document)
        layout = QVBoxLayout(self)
        box = QGroupBox("Format")
        blay = QVBoxLayout(box)
        self.format_group = QButtonGroup(self)
        self.format_buttons: dict[str, QRadioButton] = {}
        self.reason_labels: dict[str, QLabel] = {}
        for i, fmt in enumerate(FORMATS):
            cap = self.caps[fmt]
            rb = QRadioButton(FORMAT_TITLES[fmt])
            rb.setObjectName(f"format_{fmt}")
            rb.setEnabled(cap.supported)
            self.format_group.addButton(rb, i)
            self.format_buttons[fmt] = rb
            why = QLabel(("not supported: " if not cap.supported else "") + cap.reason)
            why.setWordWrap(True)
            why.setObjectName(f"reason_{fmt}")
            why.setStyleSheet("color: gray; margin-left: 22px;")
            why.setVisible(bool(cap.reason))
            self.reason_labels[fmt] = why
            blay.addWidget(rb)
            blay.addWidget(why)
        layout.addWidget(box)
        first = next((f for f in ("onnx", "pt2", "bundle", "python", "torchscript")
                      if self.caps[f].supported), None)

        form = QFormLayout()
        path_row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("export_path")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        form.addRow("Save to", path_row)
        w_row = QHBoxLayout()
        self.weights_combo = QComboBox()
        self.weights_combo.setObjectName("export_weights")
        self.weights_combo.addItem("Initial weights (untrained, seed 0)", self.WEIGHTS_INITIAL)
        self.weights_combo.addItem("Trained weights from a file", self.WEIGHTS_FILE)
        # the final weights of the editor's last training run of this document
        self.trained_weights = Path(trained_weights) if trained_weights else None
        if self.trained_weights is not None and self.trained_weights.is_file():
            self.weights_combo.addItem(
                f"Weights of the last training run ({self.trained_weights.parent.name})",
                self.WEIGHTS_RUN)
            self.weights_combo.setItemData(2, str(self.trained_weights), Qt.ToolTipRole)
        else:
            self.trained_weights = None
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText(".safetensors (or a torch state dict, read weights-only)")
        self.weights_edit.setEnabled(False)
        wbrowse = QPushButton("Browse...")
        wbrowse.clicked.connect(self._browse_weights)
        self.weights_combo.currentIndexChanged.connect(
            lambda i: self.weights_edit.setEnabled(
                self.weights_combo.itemData(i) == self.WEIGHTS_FILE))
        if self.trained_weights is not None:  # after a run, export what it trained
            self.weights_combo.setCurrentIndex(self.weights_combo.findData(self.WEIGHTS_RUN))
        w_row.addWidget(self.weights_combo)
        w_row.addWidget(self.weights_edit, 1)
        w_row.addWidget(wbrowse)
        form.addRow("Weights", w_row)
        layout.addLayout(form)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setObjectName("export_status")
        self.status_label.setWordWrap(True)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setObjectName("export_details")
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.details, 1)
        buttons = QDialogButtonBox()
        self.export_button = buttons.addButton("Export", QDialogButtonBox.AcceptRole)
        self.export_button.setObjectName("export_button")
        self.close_button = buttons.addButton(QDialogButtonBox.Close)
        self.export_button.clicked.connect(self.start_export)
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(buttons)

        self.format_group.idToggled.connect(self._format_changed)
        if first is not None:
            self.format_buttons[first].setChecked(True)
        else:
            self.export_button.setEnabled(False)
            self.status_label.setText("This graph cannot be exported yet (see the reasons above).")

    # ---- choices -------------------------------------------------------------------------
    def selected_format(self) -> str | None:
        for fmt, rb in self.format_buttons.items():
            if rb.isChecked():
                return fmt
        return None

    def select_format(self, fmt: str) -> None:
        self.format_buttons[fmt].setChecked(True)

    def _format_changed(self, _id: int, checked: bool) -> None:
        if not checked:
            return
        fmt = self.selected_format()
        cur = self.path_edit.text().strip()
        base = Path(cur) if cur else self._default_dir / self._base
        stem = (base.name.split(".")[0] if base.name else self._base).removesuffix("_python")
        name = f"{stem}_python" if fmt == "python" else f"{stem}{SUFFIX[fmt]}"
        self.path_edit.setText(str(base.parent / name))

    def _browse(self) -> None:
        fmt = self.selected_format()
        if fmt == "python":
            path = QFileDialog.getExistingDirectory(self, "Directory for model.py and train.py",
                                                    str(self._default_dir))
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path_edit.text())
        if path:
            self.path_edit.setText(path)

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights", str(self._default_dir),
                                              "Weights (*.safetensors *.pt *.pth *.ckpt)")
        if path:
            self.weights_combo.setCurrentIndex(self.weights_combo.findData(self.WEIGHTS_FILE))
            self.weights_edit.setText(path)

    # ---- running ---------------------------------------------------------------------------
    def start_export(self) -> None:
        fmt = self.selected_format()
        out = self.path_edit.text().strip()
        if fmt is None or not out:
            self.status_label.setText("Choose a format and where to save it.")
            return
        target = Path(out).expanduser().resolve()
        if self._source is not None and (target == self._source or target in self._source.parents):
            self.status_label.setText(f"{target.name} is this graph's own file: choose another "
                                      "path (exporting there would replace the graph).")
            return
        replace = target.exists()
        if replace and not self.confirm_replace(target):
            self.status_label.setText(f"Not exported: {target} exists and was kept.")
            return
        graph = Path(self._tmp.name) / "graph.json"
        graph.write_text(self._graph_text, encoding="utf-8")
        args = ["export", str(graph), "--format", fmt, "--out", out, "--json"]
        if replace:
            args.append("--force")
        choice = self.weights_combo.currentData()
        if choice == self.WEIGHTS_FILE:
            w = self.weights_edit.text().strip()
            if not w:
                self.status_label.setText("Choose the weights file, or use the initial weights.")
                return
            args += ["--weights", w]
        elif choice == self.WEIGHTS_RUN:
            args += ["--weights", str(self.trained_weights)]
        self.result = None
        self.details.clear()
        self.progress_bar.setValue(2)
        self.status_label.setText(f"Exporting {fmt}...")
        self.export_button.setEnabled(False)
        self.job = _CliJob(args, self)
        self.job.progress.connect(self._on_progress)
        self.job.done.connect(self._on_done)
        self.job.start_job()

    def confirm_replace(self, path: Path) -> bool:
        """Ask before an export replaces an existing file or folder."""
        what = "folder" if path.is_dir() else "file"
        return QMessageBox.question(
            self, "Replace?", f"The {what} {path} exists.\n\nReplace it with the export? (The "
            "old one stays until the new export is written and verified.)",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.No) == QMessageBox.Yes

    def is_running(self) -> bool:
        return self.job is not None and self.job.state() != QProcess.NotRunning

    def _on_progress(self, pct: int, message: str) -> None:
        self.progress_bar.setValue(max(self.progress_bar.value(), pct))
        self.status_label.setText(message[:1].upper() + message[1:] + "...")

    def _on_done(self, code: int, out: str, err: str) -> None:
        self.export_button.setEnabled(True)
        result = None
        for line in reversed(out.strip().splitlines()):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
        if result is None:
            lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[")]
            result = {"ok": False, "error": lines[-1] if lines else f"the export process "
                      f"exited with code {code}"}
        self.result = result
        if result.get("ok"):
            self.progress_bar.setValue(100)
            self.status_label.setText(f"Written and verified: max abs difference "
                                      f"{result['max_abs_diff']:.3g} ({result['path']})")
            text = [f"Verified in {result.get('seconds', 0)} s."]
            text += [f"check: {c}" for c in result.get("checks", [])]
            text += [f"note: {n}" for n in result.get("notes", [])]
            text += ["files:"] + [f"  {f}" for f in result.get("files", [])]
            self.details.setPlainText("\n".join(text))
        else:
            self.progress_bar.setValue(0)
            self.status_label.setText("Export failed: " + str(result.get("error", "")).splitlines()[0])
            self.details.setPlainText(str(result.get("error", "")))
        self.finished_export.emit(result)

    def done(self, r: int) -> None:  # closing the dialog stops a running export
        if self.is_running():
            self.job.kill()
            self.job.waitForFinished(2000)
        super().done(r)


# ---- import ------------------------------------------------------------------------------


def module_classes(path: Path) -> list[str]:
    """Class names in a Python file, read with ast (without running the file)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    return [n.name for n in tree.body if isinstance(n, ast.ClassDef)]


class ImportJob(_CliJob):
    """Import a Python module (runs the file, in the child process) or an ONNX file into a
    bundle in a temporary directory; ``imported`` carries (document, bundle path, messages)."""

    imported = Signal(object, str, str)
    failed = Signal(str)

    def __init__(self, source: Path, class_name: str | None = None,
                 input_shapes: list[str] | None = None, parent=None):
        self._tmp = tempfile.TemporaryDirectory(prefix="nb-import-")
        self.bundle = Path(self._tmp.name) / f"{Path(source).stem}.zip"
        args = ["import", str(source), "--out", str(self.bundle)]
        if class_name:
            args += ["--class", class_name]
        for s in input_shapes or []:
            args += ["--input-shape", s]
        super().__init__(args, parent)
        self.done.connect(self._loaded)

    def _loaded(self, code, out, err):
        messages = "\n".join(ln for ln in err.strip().splitlines() if ln.strip())
        if code != 0 or not self.bundle.exists():
            self.failed.emit(messages or f"import failed (exit code {code})")
            return
        from runtime.export import ExportError, load_bundle

        try:
            doc, _ = load_bundle(self.bundle)
        except ExportError as exc:
            self.failed.emit(str(exc))
            return
        self.imported.emit(doc, str(self.bundle), (out.strip() + "\n" + messages).strip())


def install(window) -> None:
    """Add File > Export... and File > Import PyTorch/ONNX... to the main window."""
    from PySide6.QtGui import QAction

    menu = window.menu("&File")
    menu.addSeparator()
    export_action = QAction("&Export...", window)
    export_action.setObjectName("action_export")
    export_action.setShortcut("Ctrl+E")
    export_action.triggered.connect(lambda: open_export_dialog(window))
    import_action = QAction("&Import PyTorch/ONNX...", window)
    import_action.setObjectName("action_import_model")
    import_action.setToolTip("Import a PyTorch nn.Module (runs the Python file) or an ONNX file")
    import_action.triggered.connect(lambda: open_import(window))
    menu.addAction(export_action)
    menu.addAction(import_action)
    window.export_action = export_action
    window.import_model_action = import_action


def open_export_dialog(window) -> ExportDialog:
    path = getattr(window, "file_path", None)
    default_dir = Path(path).parent if path else Path.home()
    base = Path(path).stem if path else str(window.document.metadata.get("name") or "model")
    trained = getattr(getattr(window, "training_ui", None), "last_weights", None)
    dlg = ExportDialog(window.document, window, default_dir=default_dir, base_name=base,
                       trained_weights=trained, source_path=Path(path) if path else None)
    dlg.finished_export.connect(lambda r: window.show_message(
        f"Exported {r['path']} (max abs difference {r['max_abs_diff']:.3g})" if r.get("ok")
        else "Export failed", 8000))
    dlg.setAttribute(Qt.WA_DeleteOnClose)
    dlg.show()
    window.export_dialog = dlg
    return dlg


def open_import(window, source: str | None = None, class_name: str | None = None,
                shapes: list[str] | None = None) -> ImportJob | None:
    """Ask for a file (and for a Python file: the class and input shapes, after saying
    that the file will be run), then import it in a child process."""
    from PySide6.QtWidgets import QInputDialog

    if source is None:
        source, _ = QFileDialog.getOpenFileName(window, "Import a model", str(Path.home()),
                                                "Models (*.py *.onnx)")
        if not source:
            return None
    src = Path(source)
    if src.suffix.lower() == ".py" and class_name is None:
        ok = QMessageBox.question(
            window, "Import PyTorch module",
            f"Importing {src.name} runs it as Python code (in a separate process).\n"
            "Only import files you trust. Continue?") == QMessageBox.Yes
        if not ok:
            return None
        classes = module_classes(src) or [""]
        class_name, ok = QInputDialog.getItem(window, "Import PyTorch module",
                                              "nn.Module class:", classes, 0, True)
        if not ok or not class_name:
            return None
        text, ok = QInputDialog.getText(
            window, "Import PyTorch module",
            "Per-sample input shapes, batch excluded (e.g. 1,28,28; several: x=3,32,32 y=10).\n"
            "Leave empty where the model tells it: a model.py exported by Netbuilder, an\n"
            "example_input or input_shape attribute, a first Linear or Conv layer:")
        if not ok:
            return None
        shapes = text.split()
    job = ImportJob(src, class_name, shapes, window)

    def imported(doc, bundle, messages):
        job.messages = messages
        if hasattr(window, "maybe_save") and not window.maybe_save():
            window.show_message(f"Import of {src.name} kept aside: {bundle}", 10000)
            return
        replace = getattr(window, "set_document", None)
        if replace is not None:
            replace(doc, None, modified=True)
        window.show_message(f"Imported {src.name}: {len(doc)} nodes (weights in {bundle})", 10000)

    def failed(message):
        window.show_message(f"Import of {src.name} failed", 8000)
        if hasattr(window, "prompts") and hasattr(window.prompts, "error"):
            window.prompts.error("Import failed", f"{src.name} could not be imported.", message)
        else:
            QMessageBox.warning(window, "Import failed", message)
    job.imported.connect(imported)
    job.failed.connect(failed)
    job.start_job()
    window.import_job = job
    return job
