"""Groups: named frames around a set of nodes, kept in ``doc.metadata["groups"]``.

A group is ``{"id": "group1", "title": "Block 1", "nodes": [ids]}``. It is drawn as a
frame behind its nodes; dragging the frame's title moves its nodes; Group and Ungroup
are undo commands that call ``GraphDocument.set_metadata``. Groups do not change what
the graph computes (validation and the compiler ignore them).
"""
from __future__ import annotations

import copy

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

from .theme import LIGHT

TITLE_H = 22.0
MARGIN = 16.0
_FONT = QFont()
_FONT.setPointSizeF(9.0)
_FONT.setBold(True)


def groups_of(metadata: dict) -> list[dict]:
    groups = metadata.get("groups") if isinstance(metadata, dict) else None
    return [g for g in groups if isinstance(g, dict) and isinstance(g.get("nodes"), list)] \
        if isinstance(groups, list) else []


def with_group(metadata: dict, node_ids, title: str | None = None) -> tuple[dict, str]:
    """A copy of ``metadata`` with a new group of ``node_ids`` (taken out of older groups)."""
    meta = copy.deepcopy(metadata)
    ids = list(node_ids)
    groups = [dict(g, nodes=[n for n in g["nodes"] if n not in ids]) for g in groups_of(meta)]
    groups = [g for g in groups if g["nodes"]]
    taken = {g.get("id") for g in groups}
    i = 1
    while f"group{i}" in taken:
        i += 1
    gid = f"group{i}"
    groups.append({"id": gid, "title": title or f"Block {i}", "nodes": ids})
    meta["groups"] = groups
    return meta, gid


def without_groups_of(metadata: dict, node_ids) -> dict:
    """A copy of ``metadata`` without the groups holding any of ``node_ids``."""
    meta = copy.deepcopy(metadata)
    ids = set(node_ids)
    groups = [g for g in groups_of(meta) if not ids & set(g["nodes"])]
    if groups:
        meta["groups"] = groups
    else:
        meta.pop("groups", None)
    return meta


class GroupItem(QGraphicsItem):
    """A frame behind its nodes with the group's title; drag the title to move them all."""

    def __init__(self, group: dict, scene):
        super().__init__()
        self.group, self._scene = group, scene
        self.setZValue(-2)
        self.setAcceptedMouseButtons(Qt.LeftButton)
        self._rect = QRectF()
        self.setToolTip(f"{group.get('title', '')}: {len(group['nodes'])} nodes "
                        "(drag the title to move the group)")
        self.update_bounds()

    def members(self):
        items = self._scene.node_items
        return [items[n] for n in self.group["nodes"] if n in items]

    def update_bounds(self) -> None:
        rect = QRectF()
        for item in self.members():
            rect = rect.united(item.sceneBoundingRect().adjusted(12, 12, -12, -12))
        if not rect.isNull():
            rect = rect.adjusted(-MARGIN, -MARGIN - TITLE_H, MARGIN, MARGIN)
        self.prepareGeometryChange()
        self._rect = rect

    def boundingRect(self) -> QRectF:
        return self._rect

    def _title_rect(self) -> QRectF:
        return QRectF(self._rect.left(), self._rect.top(), self._rect.width(), TITLE_H)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._rect.isNull():
            return
        theme = getattr(self._scene, "theme", LIGHT)
        accent = theme.c("selection")
        fill = QColor(accent)
        fill.setAlpha(22)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(accent, 1.2, Qt.DashLine))
        painter.setBrush(fill)
        painter.drawRoundedRect(self._rect, 8, 8)
        painter.setPen(theme.c("text"))
        painter.setFont(_FONT)
        painter.drawText(self._title_rect().adjusted(10, 0, -10, 0),
                         Qt.AlignVCenter | Qt.AlignLeft, str(self.group.get("title", "")))

    def shape(self):
        from PySide6.QtGui import QPainterPath

        path = QPainterPath()
        path.addRect(self._title_rect())  # only the title grabs the mouse
        return path

    def mousePressEvent(self, event) -> None:
        self._scene.select_nodes([i.node.id for i in self.members()])
        self._scene.begin_move()
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        delta = event.scenePos() - event.lastScenePos()
        for item in self.members():
            item.moveBy(delta.x(), delta.y())
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        self._scene.end_move()
        event.accept()
