"""Copy and paste as JSON: works between windows and processes through the clipboard."""
from __future__ import annotations

import json

from PySide6.QtCore import QMimeData
from PySide6.QtWidgets import QApplication

from runtime.graph import GraphDocument

CLIP_MIME = "application/x-netbuilder-graph"
CLIP_FORMAT = "netbuilder-clipboard"


def selection_to_dict(doc: GraphDocument, node_ids) -> dict:
    ids = [n for n in node_ids if n in doc]
    keep = set(ids)
    return {
        "format": CLIP_FORMAT,
        "nodes": [{"id": n.id, "type": n.type, "label": n.label,
                   "params": json.loads(json.dumps(n.params)),
                   "position": list(n.position)} for n in (doc.node(i) for i in ids)],
        "edges": [{"source": e.source, "source_port": e.source_port, "target": e.target,
                   "target_port": e.target_port}
                  for e in doc.edges if e.source in keep and e.target in keep],
    }


def copy_to_clipboard(data: dict) -> None:
    text = json.dumps(data, indent=1)
    mime = QMimeData()
    mime.setData(CLIP_MIME, text.encode())
    mime.setText(text)
    QApplication.clipboard().setMimeData(mime)


def clipboard_data() -> dict | None:
    """The graph fragment on the clipboard, or None when it holds something else."""
    mime = QApplication.clipboard().mimeData()
    if mime is None:
        return None
    if mime.hasFormat(CLIP_MIME):
        text = bytes(mime.data(CLIP_MIME)).decode("utf-8", "replace")
    elif mime.hasText():
        text = mime.text()
    else:
        return None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != CLIP_FORMAT:
        return None
    from runtime.catalog import CATALOG

    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not all(
            isinstance(n, dict) and n.get("type") in CATALOG and isinstance(n.get("id"), str)
            for n in nodes):
        return None
    return data
