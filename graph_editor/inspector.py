"""The inspector: the selected node's label, parameters (widgets generated from the
catalog's Param schema, with bounds and choices), analysis results and documentation.

Edits leave as ``*_requested`` signals; the inspector follows the document's events.
"""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QLineEdit, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from runtime.catalog import Param
from runtime.graph import GraphDocument

from .items import fmt_shape

INT_LIMIT = 2_000_000_000


def format_value(param: Param, value: Any) -> str:
    """The text a line edit shows for a size / ints / table / str value."""
    if param.type == "size" and isinstance(value, int):
        return str(value)
    if param.type in ("size", "ints"):
        return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    if param.type == "table":
        return json.dumps(value)
    return "" if value is None else str(value)


def parse_value(param: Param, text: str) -> Any:
    """Parse a line edit's text for ``param``; ValueError with a plain message when bad."""
    text = text.strip()
    if param.type == "str":
        return text
    if param.type == "table":
        if not text.startswith("["):  # rows separated by ';', numbers by spaces or commas
            rows = [r for r in text.split(";") if r.strip()]
            try:
                return [[int(v) for v in r.replace(",", " ").split()] for r in rows]
            except ValueError:
                raise ValueError("expected rows of whole numbers separated by ';'") from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("expected a list of lists, e.g. [[0, 1, 2], [1, 2, 3]]") from None
    else:
        parts = [p for p in text.replace("[", " ").replace("]", " ").replace(",", " ").split()]
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ValueError("expected whole numbers separated by commas") from None
        if param.type == "size" and len(nums) == 1:
            value = nums[0]
        else:
            value = nums
        if param.type == "size" and not nums:
            raise ValueError("expected a whole number")
    problem = param.check(value)
    if problem:
        raise ValueError(problem)
    return value


class InspectorWidget(QWidget):
    param_edit_requested = Signal(str, str, object)  # node id, parameter, value
    label_edit_requested = Signal(str, str)  # node id, label

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc: GraphDocument | None = None
        self.node_id: str | None = None
        self.editors: dict[str, QWidget] = {}
        self._errors: dict[str, QLabel] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        outer.addWidget(scroll)
        self._body = QWidget()
        scroll.setWidget(self._body)
        self._layout = QVBoxLayout(self._body)
        self.title = QLabel()
        self.title.setTextFormat(Qt.RichText)
        self.title.setWordWrap(True)
        self.label_edit = QLineEdit(placeholderText="label (optional)")
        self.label_edit.editingFinished.connect(self._label_edited)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.info = QLabel()
        self.info.setTextFormat(Qt.RichText)
        self.info.setWordWrap(True)
        self.doc_label = QLabel()
        self.doc_label.setTextFormat(Qt.RichText)
        self.doc_label.setWordWrap(True)
        self.doc_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        for w in (self.title, self.label_edit):
            self._layout.addWidget(w)
        self._layout.addLayout(self.form)
        self._layout.addWidget(self.info)
        self._layout.addWidget(self.doc_label)
        self._layout.addStretch(1)
        self.set_node(None)

    # ---- wiring to the document ----------------------------------------------------
    def set_document(self, doc: GraphDocument | None) -> None:
        if self.doc is not None:
            self.doc.param_changed.disconnect(self._on_param_changed)
            self.doc.label_changed.disconnect(self._on_label_changed)
            self.doc.node_removed.disconnect(self._on_node_removed)
        self.doc = doc
        if doc is not None:
            doc.param_changed.connect(self._on_param_changed)
            doc.label_changed.connect(self._on_label_changed)
            doc.node_removed.connect(self._on_node_removed)
        self.set_node(None)

    def _on_param_changed(self, node_id, name, old, new) -> None:
        if node_id == self.node_id and name in self.editors:
            self._show_value(self.doc.node(node_id).spec.param(name), self.editors[name], new)

    def _on_label_changed(self, node_id, old, new) -> None:
        if node_id == self.node_id and self.label_edit.text() != new:
            self.label_edit.setText(new)

    def _on_node_removed(self, node) -> None:
        if node.id == self.node_id:
            self.set_node(None)

    # ---- content -------------------------------------------------------------------
    def set_node(self, node_id: str | None) -> None:
        focus_name = next((n for n, w in self.editors.items() if w.hasFocus()), None)
        # take the rows out and let Qt delete their widgets later: removeRow deletes them at
        # once, while the edit that led here may still be inside one of them (a crash seen
        # once when adding a layer from the palette while an editor held focus)
        while self.form.rowCount():
            row = self.form.takeRow(0)
            for item in (row.labelItem, row.fieldItem):
                widget = item.widget() if item is not None else None
                if widget is not None:
                    widget.hide()
                    widget.deleteLater()
        self.editors, self._errors = {}, {}
        node = self.doc.nodes.get(node_id) if (self.doc is not None and node_id) else None
        self.node_id = node.id if node is not None else None
        visible = node is not None
        self.label_edit.setVisible(visible)
        self.info.setVisible(visible)
        if node is None:
            self.title.setText("<i>Select a node to see and edit its parameters.</i>")
            self.doc_label.setText("")
            return
        spec = node.spec
        self.title.setText(f"<b style='font-size:12pt'>{spec.title}</b><br>"
                           f"<span style='color:gray'>{spec.category} · id "
                           f"<code>{node.id}</code></span>")
        self.label_edit.setText(node.label)
        for param in spec.params:
            if param.type == "graph":  # a Block's inner graph: edited by opening the block
                continue
            editor = self._make_editor(param, node.params.get(param.name, param.default))
            editor.setToolTip(param.doc)
            self.editors[param.name] = editor
            err = QLabel()
            err.setStyleSheet("color: #d62728")
            err.setWordWrap(True)
            err.hide()
            self._errors[param.name] = err
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(1)
            lay.addWidget(editor)
            lay.addWidget(err)
            name = QLabel(param.display_label())
            name.setToolTip(param.doc)
            self.form.addRow(name, box)
        if focus_name in self.editors:
            self.editors[focus_name].setFocus()
        ports = ", ".join(f"{p.name} ({p.kind})" for p in node.input_ports()) or "none"
        outs = ", ".join(f"{p.name} ({p.kind})" for p in node.output_ports()) or "none"
        self.doc_label.setText(f"<p>{_esc(spec.doc)}</p><p><b>Inputs:</b> {ports}<br>"
                               f"<b>Outputs:</b> {outs}</p>")

    def set_analysis(self, info, messages: list[str]) -> None:
        """Show analysis of the current node: output shapes, counts, its problems."""
        if self.node_id is None:
            return
        lines = []
        if info is not None and info.output_shapes:
            lines.append("<b>Output:</b> " + ", ".join(
                f"{k} {fmt_shape(s)}" for k, s in info.output_shapes.items()))
            lines.append(f"<b>Parameters:</b> {info.params:,} &nbsp; <b>MACs:</b> {info.macs:,}")
            if info.receptive_field:
                lines.append("<b>Receptive field:</b> " + "×".join(map(str, info.receptive_field)))
        for m in messages:
            lines.append(f"<span style='color:#d62728'>{_esc(m)}</span>")
        self.info.setText("<br>".join(lines))

    def _make_editor(self, param: Param, value: Any) -> QWidget:
        name = param.name
        if param.type == "int":
            w = QSpinBox()
            w.setRange(int(param.min) if param.min is not None else -INT_LIMIT,
                       int(param.max) if param.max is not None else INT_LIMIT)
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=name: self._emit(n, int(v)))
            return w
        if param.type == "float":
            w = QDoubleSpinBox()
            w.setDecimals(6)
            w.setRange(param.min if param.min is not None else -1e12,
                       param.max if param.max is not None else 1e12)
            w.setSingleStep(0.1 if (param.max or 10) > 1 else 0.01)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=name: self._emit(n, float(v)))
            return w
        if param.type == "bool":
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(lambda v, n=name: self._emit(n, bool(v)))
            return w
        if param.type == "choice":
            w = QComboBox()
            w.addItems(list(param.choices or ()))
            w.setCurrentText(str(value))
            w.currentTextChanged.connect(lambda v, n=name: self._emit(n, v))
            return w
        w = QLineEdit(format_value(param, value))
        hints = {"size": "a number, or one per axis: 5 or 5, 3", "ints": "numbers: 16, -1",
                 "table": "rows of input maps: 0 1 2; 1 2 3 (empty: LeNet-5's table)"}
        w.setPlaceholderText(hints.get(param.type, ""))
        w.editingFinished.connect(lambda n=name, p=param, e=w: self._line_edited(n, p, e))
        return w

    def _show_value(self, param: Param, w: QWidget, value: Any) -> None:
        """Update an editor in place (never rebuild the widget that is emitting)."""
        w.blockSignals(True)
        try:
            if isinstance(w, QSpinBox):
                w.setValue(int(value))
            elif isinstance(w, QDoubleSpinBox):
                w.setValue(float(value))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QComboBox):
                w.setCurrentText(str(value))
            elif isinstance(w, QLineEdit):
                w.setText(format_value(param, value))
        finally:
            w.blockSignals(False)
        err = self._errors.get(param.name)
        if err is not None:
            err.hide()

    def _line_edited(self, name: str, param: Param, edit: QLineEdit) -> None:
        err = self._errors.get(name)
        try:
            value = parse_value(param, edit.text())
        except ValueError as exc:
            if err is not None:
                err.setText(f"{name}: {exc}")
                err.show()
            return
        if err is not None:
            err.hide()
        self._emit(name, value)

    def _emit(self, name: str, value: Any) -> None:
        if self.node_id is None or self.doc is None:
            return
        if self.doc.node(self.node_id).params.get(name) == value:
            return
        self.param_edit_requested.emit(self.node_id, name, value)

    def _label_edited(self) -> None:
        if self.node_id is None or self.doc is None:
            return
        text = self.label_edit.text().strip()
        if text != self.doc.node(self.node_id).label:
            self.label_edit_requested.emit(self.node_id, text)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
