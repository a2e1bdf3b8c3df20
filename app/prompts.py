"""Every question the main window asks the user, in one replaceable object.

Tests substitute a scripted ``Prompts`` so they drive the real window without modal
dialogs; the app uses message boxes and file dialogs.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

FILE_FILTER = "Netbuilder graphs (*.json);;All files (*)"


class Prompts:
    def __init__(self, parent: QWidget | None = None):
        self.parent = parent

    def error(self, title: str, text: str, details: str = "") -> None:
        box = QMessageBox(QMessageBox.Warning, title, text, QMessageBox.Ok, self.parent)
        if details:
            box.setInformativeText(details)
        box.exec()

    def unsaved(self, name: str) -> str:
        """'save', 'discard' or 'cancel'."""
        answer = QMessageBox.question(
            self.parent, "Unsaved changes",
            f"{name} has unsaved changes. Save them before closing?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def recover(self, name: str, when: str) -> bool:
        answer = QMessageBox.question(
            self.parent, "Recover unsaved work",
            f"Netbuilder found unsaved changes to {name} from {when} (the app may have "
            "closed unexpectedly).\n\nRecover them? (No discards the recovery file.)",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
        return answer == QMessageBox.Yes

    def open_path(self, directory: str = "") -> Path | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, "Open graph", directory, FILE_FILTER)
        return Path(path) if path else None

    def save_path(self, suggestion: str = "") -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, "Save graph as", suggestion, FILE_FILTER)
        if not path:
            return None
        p = Path(path)
        return p if p.suffix else p.with_suffix(".json")
