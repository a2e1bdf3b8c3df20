"""The editor controller: turns intents from the canvas, palette and inspector into undo
commands, and keeps the live analysis (validation + shapes) up to date.

It owns no widgets besides the scene it builds for each document; the main window
composes it with the view, the palette, the inspector and the diagnostics list.
"""
from __future__ import annotations

import time

import shiboken6
from PySide6.QtCore import QObject, QPointF, QRectF, QTimer, Signal
from PySide6.QtGui import QUndoStack

from runtime.graph import Edge, GraphDocument, GraphError

from . import commands as C
from .clipboard import clipboard_data, copy_to_clipboard, selection_to_dict
from .items import BLOCK_LOD, node_size
from .layout import layered_positions
from .scene import GraphScene
from .theme import LIGHT, Theme
from .view import GraphView

PASTE_OFFSET = 40.0


class GraphEditor(QObject):
    analysis_updated = Signal(object, list)  # Analysis (or None), diagnostics
    selection_changed = Signal(list)  # node ids
    message = Signal(str)  # something to tell the user (status bar)
    document_shown = Signal(object)  # the canvas shows this document (a block's inner graph)

    def __init__(self, view: GraphView, undo_stack: QUndoStack, theme: Theme = LIGHT,
                 parent=None):
        super().__init__(parent)
        self.view, self.undo_stack, self.theme = view, undo_stack, theme
        self.doc: GraphDocument | None = None
        self.scene: GraphScene | None = None
        self.analysis = None
        self.diagnostics: list = []
        self.last_analysis_s = 0.0
        self.analysis_enabled = True
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(15)  # several edits (a macro, fast typing) coalesce
        self._timer.timeout.connect(self._scheduled_analysis)
        self._waiting_for_torch = False
        self._paste_count = 0
        # Open blocks, outermost first: (the document that holds the block, block id,
        # the undo index when it was opened).
        self.block_path: list[tuple[GraphDocument, str, int]] = []
        undo_stack.indexChanged.connect(self._keep_undo_inside_block)
        view.add_requested.connect(lambda t, pos: self.add_node(t, pos))
        view.block_open_requested.connect(lambda nid: self.open_block(nid))

    # ---- document -----------------------------------------------------------------
    def set_document(self, doc: GraphDocument) -> None:
        self.block_path.clear()  # a new document abandons the open blocks' edits
        self.undo_stack.clear()
        self._attach(doc)
        self.undo_stack.setClean()

    def _attach(self, doc: GraphDocument) -> None:
        """Show ``doc`` on the canvas (the undo stack is left as it is)."""
        if self.scene is not None:
            self.scene.detach()
            for event in self._analysis_events(self.doc):
                event.disconnect(self._on_structure_changed)
        self.doc = doc
        self.scene = GraphScene(doc, self.theme, parent=self)
        self.scene.connect_requested.connect(self.connect_edge)
        self.scene.reconnect_requested.connect(self.reconnect)
        self.scene.move_requested.connect(self.move)
        self.scene.refused.connect(lambda msg: self.message.emit("Cannot connect: " + msg))
        self.scene.selectionChanged.connect(self._selection_changed)
        self.view.setScene(self.scene)
        for event in self._analysis_events(doc):
            event.connect(self._on_structure_changed)
        self.analysis, self.diagnostics = None, []
        self.schedule_analysis()
        self.document_shown.emit(doc)

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        if self.scene is not None:
            self.scene.set_theme(theme)

    def _selection_changed(self) -> None:
        self.selection_changed.emit(self.selected_ids())

    def selected_ids(self) -> list[str]:
        return self.scene.selected_node_ids() if self.scene is not None else []

    @staticmethod
    def _analysis_events(doc: GraphDocument):
        """Events that can change shapes or diagnostics (moving a node cannot)."""
        return (doc.node_added, doc.node_removed, doc.edge_added, doc.edge_removed,
                doc.param_changed, doc.label_changed)

    def _on_structure_changed(self, *args) -> None:
        self.schedule_analysis()

    # ---- live analysis -------------------------------------------------------------
    def schedule_analysis(self) -> None:
        if self.analysis_enabled:
            self._timer.start()

    def _scheduled_analysis(self) -> None:
        """The live analysis after edits; the first one of a session waits, off the UI
        thread, for torch to load (graph_editor/warmup.py) instead of freezing the window."""
        from . import warmup

        if warmup.is_ready():
            self.run_analysis()
            return
        if not self._waiting_for_torch:
            self._waiting_for_torch = True
            warmup.when_ready(self._torch_ready)

    def _torch_ready(self) -> None:
        self._waiting_for_torch = False
        self.run_analysis()

    def run_analysis(self) -> None:
        """Validate and analyse now (memoised per node: only changed nodes recompute)."""
        self._timer.stop()
        if self.doc is None:
            return
        from runtime.pipeline import check  # lazy: imports torch

        t0 = time.perf_counter()
        try:  # shapes also where part of the graph is broken; ids out of range too
            analysis, diags = check(self.doc, shapes="always")
        except Exception as exc:  # never a traceback dialog: report it as a diagnostic
            from runtime.diagnostics import ERROR, Diagnostic
            from runtime.pipeline import validate

            analysis = None
            diags = validate(self.doc, shapes=False)
            diags.append(Diagnostic(None, ERROR, f"analysis failed: {exc}", code="internal"))
        self.analysis, self.diagnostics = analysis, diags
        if self.scene is not None:
            self.scene.apply_analysis(analysis, diags)
        self.last_analysis_s = time.perf_counter() - t0
        self.analysis_updated.emit(analysis, diags)

    # ---- edits (each one undo command) ------------------------------------------------
    def _push(self, cmd) -> bool:
        try:
            cmd.redo()  # run once here so a refused edit raises before reaching the stack
        except (GraphError, KeyError, ValueError) as exc:
            self.message.emit(f"{cmd.text()}: {exc}")
            return False
        cmd.undo()
        self.undo_stack.push(cmd)
        return True

    def add_node(self, type_id: str, pos: QPointF | tuple | None = None,
                 params: dict | None = None) -> str | None:
        if pos is None:
            pos = self.view.mapToScene(self.view.viewport().rect().center())
        if isinstance(pos, QPointF):
            pos = (pos.x(), pos.y())
        grid = self.scene.snap_grid if self.scene else 0
        if grid:
            pos = (round(pos[0] / grid) * grid, round(pos[1] / grid) * grid)
        cmd = C.AddNode(self.doc, type_id, pos, params)
        if not self._push(cmd):
            return None
        self.scene.select_nodes([cmd.node_id])
        return cmd.node_id

    def add_node_after(self, type_id: str, pos: QPointF | tuple | None = None) -> str | None:
        """Add a layer and wire it after the selected node (palette and quick-add).

        With one node selected, the new layer goes to its right (unless ``pos`` is
        given) and its first free input is fed from the selected node's first
        compatible output, in one undo step: drawing a chain is one click per layer.
        """
        from .items import NODE_W
        from .scene import connection_problem

        ids = self.selected_ids()
        prev = self.doc.nodes.get(ids[0]) if len(ids) == 1 else None
        if prev is None:
            if pos is None:
                pos = self._free_spot(self.view.mapToScene(self.view.viewport().rect().center()))
            return self.add_node(type_id, pos)
        if pos is None:  # the next layer along the flow: below (TB) or to the right
            x, y = prev.position
            if self.scene.direction == "TB":
                item = self.scene.node_items.get(prev.id)
                h = item.height() if item is not None else 60.0
                pos = self._free_spot(QPointF(x, y + h + 58), down=False)
            else:
                pos = self._free_spot(QPointF(x + NODE_W + 70, y))
        self.undo_stack.beginMacro(f"Add {type_id}")
        new_id = self.add_node(type_id, pos)
        if new_id is not None:
            node = self.doc.node(new_id)
            done = False
            for out in prev.output_ports():
                for inp in node.input_ports():
                    if connection_problem(self.doc, prev.id, out.name, new_id, inp.name) is None:
                        self._push(C.Connect(self.doc, Edge(prev.id, out.name, new_id, inp.name)))
                        done = True
                        break
                if done:
                    break
        self.undo_stack.endMacro()
        return new_id

    def _free_spot(self, pos: QPointF, down: bool = True) -> tuple[float, float]:
        """``pos``, moved down (or right) until no node sits there (new layers never
        pile up)."""
        x, y = pos.x(), pos.y()
        taken = [n.position for n in self.doc]
        while any(abs(px - x) < 60 and abs(py - y) < 50 for px, py in taken):
            if down:
                y += 90
            else:
                x += 194
        return (x, y)

    def connect_edge(self, edge: Edge) -> None:
        self._push(C.Connect(self.doc, edge))

    def reconnect(self, old: Edge, new: Edge | None) -> None:
        if new is None:
            self._push(C.Disconnect(self.doc, [old]))
            return
        self.undo_stack.beginMacro(f"Reconnect {new.target}.{new.target_port}")
        self._push(C.Disconnect(self.doc, [old]))
        self._push(C.Connect(self.doc, new))
        self.undo_stack.endMacro()

    def move(self, moves: dict) -> None:
        self.undo_stack.push(C.MoveNodes(self.doc, moves))

    def set_param(self, node_id: str, name: str, value) -> None:
        self._push(C.SetParam(self.doc, node_id, name, value))

    def set_label(self, node_id: str, label: str) -> None:
        self._push(C.SetLabel(self.doc, node_id, label))

    def delete_selection(self) -> None:
        ids = self.selected_ids()
        edges = [e for e in self.scene.selected_edges()
                 if e.source not in ids and e.target not in ids]
        if not ids and not edges:
            return
        self.undo_stack.beginMacro("Delete")
        if edges:
            self._push(C.Disconnect(self.doc, edges))
        if ids:
            self._push(C.RemoveNodes(self.doc, ids))
        self.undo_stack.endMacro()

    def select_all(self) -> None:
        self.scene.select_nodes(list(self.doc.nodes))

    def copy(self) -> bool:
        ids = self.selected_ids()
        if not ids:
            self.message.emit("Nothing selected to copy")
            return False
        copy_to_clipboard(selection_to_dict(self.doc, ids))
        self._paste_count = 0
        self.message.emit(f"Copied {len(ids)} node{'s' if len(ids) != 1 else ''}")
        return True

    def cut(self) -> None:
        if self.copy():
            ids = self.selected_ids()
            self.undo_stack.beginMacro("Cut")
            self._push(C.RemoveNodes(self.doc, ids))
            self.undo_stack.endMacro()

    def paste(self, data: dict | None = None, text: str = "Paste",
              at: QPointF | None = None) -> list[str]:
        """Paste the clipboard's layers with their top-left corner at ``at`` (a scene
        point: the mouse cursor when it is over the canvas), else beside the copied ones."""
        data = data if data is not None else clipboard_data()
        if not data or not data.get("nodes"):
            self.message.emit("The clipboard holds no Netbuilder layers")
            return []
        self._paste_count += 1
        offset = PASTE_OFFSET * self._paste_count
        if at is None and text == "Paste":
            at = self._cursor_scene_pos()
        if at is not None:
            xs = [float(n.get("position", (0, 0))[0]) for n in data["nodes"]]
            ys = [float(n.get("position", (0, 0))[1]) for n in data["nodes"]]
            dx, dy = at.x() - min(xs), at.y() - min(ys)
        else:
            dx, dy = self._paste_offset(data, offset)
        cmd = C.Paste(self.doc, data, (dx, dy), text)
        if not self._push(cmd):
            return []
        self.scene.select_nodes(cmd.new_ids)
        items = [self.scene.node_items[n] for n in cmd.new_ids if n in self.scene.node_items]
        if items:
            rect = items[0].sceneBoundingRect()
            for item in items[1:]:
                rect = rect.united(item.sceneBoundingRect())
            self.view.ensureVisible(rect, 40, 40)
        return cmd.new_ids

    def _cursor_scene_pos(self) -> QPointF | None:
        """The mouse cursor on the canvas (None when it is elsewhere)."""
        from PySide6.QtGui import QCursor

        local = self.view.viewport().mapFromGlobal(QCursor.pos())
        if not self.view.viewport().rect().contains(local) or not self.view.underMouse():
            return None
        return self.view.mapToScene(local)

    def _paste_offset(self, data: dict, offset: float) -> tuple[float, float]:
        """Beside the copied nodes when they are in view (copy and paste in one window);
        otherwise (another window, or scrolled away) centred in the view."""
        xs = [float(n.get("position", (0, 0))[0]) for n in data["nodes"]]
        ys = [float(n.get("position", (0, 0))[1]) for n in data["nodes"]]
        visible = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        box = QRectF(min(xs) + offset, min(ys) + offset, max(xs) - min(xs) + 1,
                     max(ys) - min(ys) + 1)
        if visible.isEmpty() or visible.intersects(box):
            return offset, offset
        c = visible.center()
        return c.x() - (min(xs) + max(xs)) / 2, c.y() - (min(ys) + max(ys)) / 2

    def duplicate(self) -> list[str]:
        ids = self.selected_ids()
        if not ids:
            return []
        self._paste_count = 0
        return self.paste(selection_to_dict(self.doc, ids), "Duplicate")

    def auto_layout(self, selection_only: bool = False) -> None:
        """Lay out the graph (or the selection) in one undo step, then fit it in view."""
        ids = self.selected_ids() if selection_only else None
        if selection_only and len(ids) < 2:
            ids = None
        positions = layered_positions(self.doc, ids, direction=self.scene.direction,
                                      aspect=self._view_aspect())
        moved = {k: v for k, v in positions.items() if tuple(self.doc.node(k).position) != v}
        if moved:
            self.undo_stack.push(C.Layout(self.doc, moved))
        self.fit_nodes(ids)

    def set_layout_direction(self, direction: str) -> None:
        """Top to bottom (TB) or left to right (LR): kept in the document's metadata and
        applied with a fresh layout, in one undo step."""
        from .layout import DIRECTION_KEY

        if direction == self.scene.direction and self.doc.metadata.get(DIRECTION_KEY) == direction:
            return
        meta = dict(self.doc.metadata)
        meta[DIRECTION_KEY] = direction
        self.undo_stack.beginMacro("Layout direction " + ("top to bottom" if direction == "TB"
                                                          else "left to right"))
        self.undo_stack.push(C.SetMetadata(self.doc, meta, "Layout direction"))
        positions = layered_positions(self.doc, direction=direction, aspect=self._view_aspect())
        moved = {k: v for k, v in positions.items() if tuple(self.doc.node(k).position) != v}
        if moved:
            self.undo_stack.push(C.Layout(self.doc, moved))
        self.undo_stack.endMacro()
        self.fit_nodes(None)

    def wrap_if_unreadable(self) -> bool:
        """A graph that fits the canvas only as title blocks (below BLOCK_LOD), but that
        a layout wrapped into columns would show in full detail, is laid out that way (an
        imported chain is one long column). Not an undo step: it is how the file opens.
        True when the nodes moved."""
        if self.scene is None or len(self.doc) < 2:
            return False
        vp = self.view.viewport().rect()
        if vp.width() < 200 or vp.height() < 200:
            return False

        def fit_zoom(positions) -> float:
            rect = QRectF()
            for nid, (x, y) in positions.items():
                w, h = node_size(self.doc.node(nid), self.scene.direction)
                rect = rect.united(QRectF(x, y, w, h))
            return self.view.fit_zoom(rect.adjusted(-12, -30, 12, 12))

        now = {n: tuple(self.doc.node(n).position) for n in self.doc.nodes}
        if fit_zoom(now) >= BLOCK_LOD:
            return False
        positions = layered_positions(self.doc, direction=self.scene.direction,
                                      aspect=self._view_aspect())
        if fit_zoom(positions) < BLOCK_LOD:
            return False
        for nid, p in positions.items():
            if now[nid] != p:
                self.doc.move_node(nid, p)
        return True

    def _view_aspect(self) -> float:
        """Width / height of the canvas: a wrapped layout fills it."""
        from .layout import ASPECT

        vp = self.view.viewport().rect()
        if vp.width() < 200 or vp.height() < 200:
            return ASPECT
        return max(0.5, min(3.0, vp.width() / vp.height()))

    def fit_nodes(self, ids=None) -> None:
        """Fit the view to these nodes (all by default), never zoomed in past 100%."""
        if self.scene is None:
            return
        items = [self.scene.node_items[n] for n in (ids or self.scene.node_items)
                 if n in self.scene.node_items]
        rect = QRectF()
        for item in items:
            rect = rect.united(item.sceneBoundingRect())
        self.view.fit(rect if items else None)

    def group_selection(self, title: str | None = None) -> str | None:
        ids = self.selected_ids()
        if len(ids) < 1:
            self.message.emit("Select the nodes to group first")
            return None
        cmd = C.Group(self.doc, ids, title)
        self.undo_stack.push(cmd)
        return cmd.group_id

    def ungroup_selection(self) -> None:
        from .groups import groups_of

        ids = set(self.selected_ids())
        if not any(ids & set(g["nodes"]) for g in groups_of(self.doc.metadata)):
            self.message.emit("The selection is not in a group")
            return
        self.undo_stack.push(C.Ungroup(self.doc, ids))

    # ---- blocks (runtime/blocks.py): group into one node, ungroup, edit in place ------
    def group_block(self, label: str = "") -> str | None:
        """Replace the selection by one Block node (one undo step); returns its id."""
        ids = self.selected_ids()
        if not ids:
            self.message.emit("Select the nodes to group into a block first")
            return None
        try:
            cmd = C.GroupBlock(self.doc, ids, label)
        except (GraphError, KeyError, ValueError) as exc:
            self.message.emit(f"Cannot group: {exc}")
            return None
        if not self._push(cmd):
            return None
        self.scene.select_nodes([cmd.block_id])
        return cmd.block_id

    def _selected_block(self) -> str | None:
        ids = [n for n in self.selected_ids() if self.doc.node(n).type == "Block"]
        return ids[0] if len(ids) == 1 else None

    def ungroup_block(self, block_id: str | None = None) -> list[str]:
        """Put a Block's inner nodes back in its place (one undo step)."""
        block_id = block_id or self._selected_block()
        if block_id is None:
            self.message.emit("Select one block to ungroup")
            return []
        try:
            cmd = C.UngroupBlock(self.doc, block_id)
        except (GraphError, KeyError, ValueError) as exc:
            self.message.emit(f"Cannot ungroup {block_id}: {exc}")
            return []
        if not self._push(cmd):
            return []
        self.scene.select_nodes(cmd.new_ids)
        return cmd.new_ids

    def open_block(self, block_id: str | None = None) -> bool:
        """Show a Block's inner graph on the canvas for editing; close_block goes back.

        Edits inside are undoable one by one while the block is open; closing replaces
        them by one step in the parent: the Block's ``graph`` parameter set to the edited
        inner graph.
        """
        from runtime import blocks

        block_id = block_id or self._selected_block()
        if block_id is None or block_id not in self.doc or self.doc.node(block_id).type != "Block":
            self.message.emit("Select one block to open")
            return False
        try:
            inner = blocks.inner_document(self.doc.node(block_id))
        except (GraphError, KeyError, TypeError, ValueError) as exc:
            self.message.emit(f"Cannot open {block_id}: {exc}")
            return False
        self.block_path.append((self.doc, block_id, self.undo_stack.index()))
        self._attach(inner)
        self.message.emit(f"Editing block {block_id}: Edit > Close Block to go back")
        return True

    def close_block(self) -> bool:
        """Write the inner graph back to its Block (undoable) and show the parent graph."""
        from runtime import blocks

        if not self.block_path:
            return False
        parent, block_id, start = self.block_path[-1]
        new = blocks.graph_param(self.doc)
        self.undo_stack.setIndex(start)  # unwind the inner steps (on the inner copy)
        self.block_path.pop()
        self._attach(parent)
        if new != parent.node(block_id).params.get("graph"):
            self.undo_stack.push(C.SetParam(parent, block_id, "graph", new))
        else:
            self.undo_stack.push(C.DropRedo())  # forget the inner steps' redo entries
        self.scene.select_nodes([block_id])
        return True

    def open_documents(self) -> list[GraphDocument]:
        """The inner graphs of the open blocks, outermost first (empty when none is open)."""
        if not self.block_path:
            return []
        return [parent for parent, _, _ in self.block_path[1:]] + [self.doc]

    def composed_document(self) -> GraphDocument:
        """The root document with the current edits of every open block written into
        its Block node: what closing all blocks would give, without closing them (for
        autosave). The root itself when no block is open; a new document otherwise."""
        from runtime import blocks
        from runtime.serialization import graph_from_dict, graph_to_dict

        if not self.block_path:
            return self.doc
        graph = blocks.graph_param(self.doc)
        for parent, block_id, _ in reversed(self.block_path):
            data = graph_to_dict(parent)
            for node in data["nodes"]:
                if node["id"] == block_id:
                    node["params"]["graph"] = graph
            graph = {"nodes": data["nodes"], "edges": data["edges"]}
        return graph_from_dict(data)

    def close_all_blocks(self) -> None:
        while self.block_path:
            self.close_block()

    def breadcrumb(self) -> str:
        """'graph > block1 > block2' while blocks are open."""
        if not self.block_path:
            return ""
        root = self.block_path[0][0].metadata.get("name", "graph")
        return " > ".join([root] + [b for _, b, _ in self.block_path])

    def _keep_undo_inside_block(self, index: int) -> None:
        """While a block is open, undo stops at the opening: earlier steps belong to the
        parent graph, which is not on the canvas."""
        if self.block_path and index < self.block_path[-1][2]:
            if not shiboken6.isValid(self.undo_stack):  # the stack clears as it is destroyed
                return
            self.undo_stack.setIndex(self.block_path[-1][2])
            self.message.emit("Close the block (Edit > Close Block) to undo further")
