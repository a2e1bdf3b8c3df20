"""The layer palette (categories from the catalog, search as you type, drag onto the
canvas) and the quick-add popup (Tab or double-click on the canvas)."""
from __future__ import annotations

import re

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QLineEdit, QListWidget,
                               QListWidgetItem, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from runtime.catalog import LayerSpec, categories

from .theme import category_colour
from .view import LAYER_MIME

TYPE_ROLE = Qt.UserRole + 1


def _words(text: str) -> list[str]:
    """Lower-case words: split at spaces, hyphens, underscores and camel-case humps."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return [w for w in re.split(r"[^0-9a-zA-Z]+", text.lower()) if w]


def match_rank(spec: LayerSpec, text: str) -> int | None:
    """How well ``spec`` matches the search ``text`` (lower is better; None: no match).

    0: the type id or title is the text (ignoring case, spaces and hyphens);
    1: the type id or title starts with it; 2: every word of the text starts a word of
    the name; 3: every word appears in the name; 4: in the category or description."""
    words = _words(text)
    if not words:
        return 0
    query = "".join(words)
    names = ["".join(_words(spec.type)), "".join(_words(spec.title))]
    if query in names:
        return 0
    if any(n.startswith(query) for n in names):
        return 1
    name_words = _words(spec.type) + _words(spec.title)
    if all(any(nw.startswith(w) for nw in name_words) for w in words):
        return 2
    name = " ".join(names + name_words)
    if all(w in name for w in words):
        return 3
    hay = f"{name} {spec.category} {spec.doc}".lower()
    return 4 if all(w in hay for w in text.lower().split()) else None


def matches(spec: LayerSpec, text: str) -> bool:
    """Every word of ``text`` appears in the type id, title, category or doc."""
    return match_rank(spec, text) is not None


def _swatch(colour: QColor) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(colour)
    return QIcon(pix)


class _LayerTree(QTreeWidget):
    def mimeData(self, items):
        mime = QMimeData()
        type_id = items[0].data(0, TYPE_ROLE) if items else None
        if type_id:
            mime.setData(LAYER_MIME, type_id.encode())
            mime.setText(type_id)
        return mime

    def mimeTypes(self):
        return [LAYER_MIME]


class PaletteWidget(QWidget):
    """Layers by category; drag one onto the canvas, or double-click / Enter to add it."""

    add_requested = Signal(str)  # node type (the editor places it at the view centre)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = _LayerTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._items: list[tuple[QTreeWidgetItem, LayerSpec]] = []
        for cat, specs in categories().items():
            top = QTreeWidgetItem([cat])
            top.setFlags(Qt.ItemIsEnabled)
            top.setIcon(0, _swatch(category_colour(cat)))
            f = top.font(0)
            f.setBold(True)
            top.setFont(0, f)
            self.tree.addTopLevelItem(top)
            for spec in specs:
                child = QTreeWidgetItem([spec.title])
                child.setData(0, TYPE_ROLE, spec.type)
                child.setToolTip(0, f"<b>{spec.title}</b> ({spec.type})<br>{spec.doc}")
                child.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                top.addChild(child)
                self._items.append((child, spec))
        self.tree.expandAll()
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_visible)
        self.tree.itemActivated.connect(self._activated)

    def filter(self, text: str) -> None:
        for top_i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(top_i)
            any_visible = False
            for i in range(top.childCount()):
                child = top.child(i)
                spec = next(s for c, s in self._items if c is child)
                ok = matches(spec, text)
                child.setHidden(not ok)
                any_visible |= ok
            top.setHidden(not any_visible)
        best = self.visible_types()[:1] if text.strip() else []
        item = next((c for c, s in self._items if best and s.type == best[0]), None)
        self.tree.setCurrentItem(item)  # the best match, which Enter adds
        if item is not None:
            self.tree.scrollToItem(item)

    def visible_types(self) -> list[str]:
        """The shown layers, best match for the search text first (Enter adds the first)."""
        text = self.search.text()
        shown = [s for c, s in self._items if not c.isHidden() and not c.parent().isHidden()]
        return [s.type for s in sorted(shown, key=lambda s: match_rank(s, text))]

    def _add_first_visible(self) -> None:
        types = self.visible_types()
        if types:
            self.add_requested.emit(types[0])

    def _activated(self, item: QTreeWidgetItem, column: int = 0) -> None:
        type_id = item.data(0, TYPE_ROLE)
        if type_id:
            self.add_requested.emit(type_id)


class QuickAddPopup(QFrame):
    """A search box with the matching layers, shown at the cursor; Enter adds the first."""

    chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent, Qt.Popup)
        self.setFrameShape(QFrame.StyledPanel)
        self.edit = QLineEdit(placeholderText="Add layer: type to search…")
        self.list = QListWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        self.resize(280, 320)
        self._specs = [s for specs in categories().values() for s in specs]
        self.edit.textChanged.connect(self._refill)
        self.edit.returnPressed.connect(self._accept_current)
        self.list.itemActivated.connect(lambda item: self._choose(item.data(TYPE_ROLE)))
        self.edit.installEventFilter(self)
        self._refill("")

    def eventFilter(self, obj, event) -> bool:
        from PySide6.QtCore import QEvent

        if obj is self.edit and event.type() == QEvent.KeyPress and event.key() in (
                Qt.Key_Down, Qt.Key_Up):
            row = self.list.currentRow() + (1 if event.key() == Qt.Key_Down else -1)
            self.list.setCurrentRow(max(0, min(self.list.count() - 1, row)))
            return True
        return super().eventFilter(obj, event)

    def _refill(self, text: str) -> None:
        self.list.clear()
        ranked = [(r, i, s) for i, s in enumerate(self._specs)
                  if (r := match_rank(s, text)) is not None]
        for _, _, spec in sorted(ranked, key=lambda t: t[:2]):
            item = QListWidgetItem(_swatch(category_colour(spec.category)),
                                   f"{spec.title}  ·  {spec.category}")
            item.setData(TYPE_ROLE, spec.type)
            item.setToolTip(spec.doc)
            self.list.addItem(item)
        self.list.setCurrentRow(0)

    def _accept_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._choose(item.data(TYPE_ROLE))

    def _choose(self, type_id: str) -> None:
        self.hide()
        self.chosen.emit(type_id)

    def popup_at(self, global_pos: QPoint) -> None:
        self.edit.clear()
        self.move(global_pos)
        self.show()
        self.edit.setFocus()
