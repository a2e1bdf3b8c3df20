"""The start page shown by ``netbuilder`` without a file: new, open, examples, recent."""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

PATH_ROLE = Qt.UserRole + 1


def example_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def example_title(path: Path) -> str:
    """The example's display name (its metadata name, else the file stem)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        name = meta.get("title") or meta.get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    return str(name) if name else path.stem.replace("_", " ")


def example_description(path: Path) -> str:
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        return str(meta.get("description", ""))
    except (OSError, ValueError, AttributeError):
        return ""


class StartPage(QWidget):
    new_requested = Signal()
    open_requested = Signal()
    example_requested = Signal(object)  # Path
    recent_requested = Signal(object)  # Path

    def __init__(self, examples_dir: Path, parent=None):
        super().__init__(parent)
        self.setObjectName("StartPage")
        title = QLabel("<h1>Netbuilder</h1><p>Draw a neural network, watch it train, "
                       "export it.</p>")
        new_btn = QPushButton("New graph")
        open_btn = QPushButton("Open…")
        for b in (new_btn, open_btn):
            b.setMinimumHeight(34)
        new_btn.clicked.connect(self.new_requested)
        open_btn.clicked.connect(self.open_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(new_btn)
        buttons.addWidget(open_btn)
        buttons.addStretch(1)
        self.examples = QListWidget()
        for p in example_files(examples_dir):
            item = QListWidgetItem(example_title(p))
            item.setData(PATH_ROLE, str(p))
            item.setToolTip(example_description(p) or p.name)
            self.examples.addItem(item)
        self.examples.itemActivated.connect(
            lambda it: self.example_requested.emit(Path(it.data(PATH_ROLE))))
        self.examples.itemClicked.connect(
            lambda it: self.example_requested.emit(Path(it.data(PATH_ROLE))))
        self.recent = QListWidget()
        self.recent.itemActivated.connect(
            lambda it: self.recent_requested.emit(Path(it.data(PATH_ROLE))))
        self.recent.itemClicked.connect(
            lambda it: self.recent_requested.emit(Path(it.data(PATH_ROLE))))
        grid = QGridLayout()
        grid.addWidget(QLabel("<b>Examples</b>"), 0, 0)
        grid.addWidget(QLabel("<b>Recent files</b>"), 0, 1)
        grid.addWidget(self.examples, 1, 0)
        grid.addWidget(self.recent, 1, 1)
        inner = QWidget()
        inner.setMaximumWidth(900)
        lay = QVBoxLayout(inner)
        lay.addWidget(title)
        lay.addLayout(buttons)
        lay.addLayout(grid, 1)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(inner, 4)
        outer.addStretch(1)

    def set_recent(self, paths: list[Path]) -> None:
        self.recent.clear()
        for p in paths:
            item = QListWidgetItem(f"{p.name}  —  {p.parent}")
            item.setData(PATH_ROLE, str(p))
            self.recent.addItem(item)
        if not paths:
            item = QListWidgetItem("No recent files yet.")
            item.setFlags(Qt.NoItemFlags)
            self.recent.addItem(item)
