"""The diagnostics list: errors and warnings; activating one selects its node."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyle

NODE_ROLE = Qt.UserRole + 1


class DiagnosticsPanel(QListWidget):
    node_activated = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)
        self._last: list | None = None

    def set_diagnostics(self, diagnostics) -> None:
        key = [(d.node_id, d.severity, d.message) for d in diagnostics]
        if key == self._last:
            return
        self._last = key
        self.clear()
        style = self.style()
        icons = {True: style.standardIcon(QStyle.SP_MessageBoxCritical),
                 False: style.standardIcon(QStyle.SP_MessageBoxWarning)}
        ordered = sorted(diagnostics, key=lambda d: (not d.is_error, d.node_id or ""))
        for d in ordered:
            where = d.node_id or "graph"
            item = QListWidgetItem(icons[d.is_error], f"{where}: {d.message}")
            item.setData(NODE_ROLE, d.node_id)
            item.setToolTip(str(d))
            if d.is_error:
                item.setForeground(QColor("#c62828"))
            self.addItem(item)
        if not diagnostics:
            item = QListWidgetItem("No problems found.")
            item.setFlags(Qt.NoItemFlags)
            self.addItem(item)

    def _clicked(self, item: QListWidgetItem) -> None:
        node_id = item.data(NODE_ROLE)
        if node_id:
            self.node_activated.emit(node_id)
