"""The main window's menus and context menus, built on its public parts."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from graph_editor.items import EdgeItem, NodeItem

from .start_page import example_files, example_title


def _action(w, menu: QMenu, text: str, slot, shortcut=None, canvas_only=False) -> QAction:
    action = QAction(text, w)
    if shortcut is not None:
        keys = shortcut if isinstance(shortcut, list) else [shortcut]
        action.setShortcuts([QKeySequence(k) for k in keys])
    action.triggered.connect(lambda checked=False: slot())
    if canvas_only:  # Ctrl+C in a text field copies text, on the canvas it copies nodes
        action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
        w.view.addAction(action)
    menu.addAction(action)
    return action


def unique_keys(*keys) -> list[QKeySequence]:
    """The key sequences of standard keys and strings, each once, in order."""
    out: list[QKeySequence] = []
    for k in keys:
        seqs = QKeySequence.keyBindings(k) if isinstance(k, QKeySequence.StandardKey) \
            else [QKeySequence(k)]
        for seq in seqs:
            if not seq.isEmpty() and all(seq != o for o in out):
                out.append(seq)
    return out


def build_menus(w) -> None:
    """File, Edit and View menus with the standard shortcuts."""
    ed = w.editor
    f = w.menu("&File")
    _action(w, f, "&New", w.new_document, QKeySequence.New)
    _action(w, f, "&Open…", w.open_dialog, QKeySequence.Open)
    examples = f.addMenu("Open &Example")
    for p in example_files(w.examples_dir):
        examples.addAction(example_title(p), lambda p=p: w.open_example(p))
    w.recent_menu = f.addMenu("Open &Recent")
    f.addSeparator()
    _action(w, f, "&Save", w.save, QKeySequence.Save)
    _action(w, f, "Save &As…", w.save_as, QKeySequence.SaveAs)
    _action(w, f, "Export &Diagram…", w.export_diagram)
    f.addSeparator()
    _action(w, f, "&Quit", w.close, QKeySequence.Quit)
    e = w.menu("&Edit")
    undo = w.undo_stack.createUndoAction(w, "&Undo")
    undo.setShortcuts(unique_keys(QKeySequence.Undo, "Ctrl+Z"))
    redo = w.undo_stack.createRedoAction(w, "&Redo")
    # Ctrl+Y and Ctrl+Shift+Z on every platform, each bound once: X11's standard Redo
    # already is Ctrl+Shift+Z, and binding it twice makes the shortcut ambiguous
    redo.setShortcuts(unique_keys(QKeySequence.Redo, "Ctrl+Y", "Ctrl+Shift+Z"))
    e.addAction(undo)
    e.addAction(redo)
    e.addSeparator()
    _action(w, e, "Cu&t", ed.cut, QKeySequence.Cut, canvas_only=True)
    _action(w, e, "&Copy", ed.copy, QKeySequence.Copy, canvas_only=True)
    _action(w, e, "&Paste", ed.paste, QKeySequence.Paste, canvas_only=True)
    _action(w, e, "&Duplicate", ed.duplicate, "Ctrl+D", canvas_only=True)
    _action(w, e, "De&lete", ed.delete_selection, [QKeySequence.Delete, "Backspace"],
                 canvas_only=True)
    _action(w, e, "Select &All", ed.select_all, QKeySequence.SelectAll, canvas_only=True)
    e.addSeparator()
    _action(w, e, "Auto-&layout", lambda: ed.auto_layout(False), "Ctrl+L")
    _action(w, e, "Auto-layout &Selection", lambda: ed.auto_layout(True), "Ctrl+Shift+L")
    e.addSeparator()
    _action(w, e, "&Group into Block", ed.group_block, "Ctrl+G", canvas_only=True)
    _action(w, e, "U&ngroup Block", ed.ungroup_block, "Ctrl+Shift+G", canvas_only=True)
    _action(w, e, "&Open Block", ed.open_block, "Ctrl+B", canvas_only=True)
    _action(w, e, "Close Bloc&k (Back to Parent)", ed.close_block, "Ctrl+Shift+B")
    _action(w, e, "&Frame Selection", ed.group_selection, "Ctrl+Alt+G", canvas_only=True)
    _action(w, e, "Remove F&rame", ed.ungroup_selection, "Ctrl+Alt+Shift+G", canvas_only=True)
    e.addSeparator()
    _action(w, e, "&Add Layer…", lambda: w._quick_add_at(
        w.view.mapToScene(w.view.viewport().rect().center())), "Ctrl+K")
    v = w.menu("&View")
    _action(w, v, "&Fit to View", lambda: w.current_view().fit(), "F")
    _action(w, v, "Zoom &In", lambda: w.view.zoom_by(1.25), QKeySequence.ZoomIn)
    _action(w, v, "Zoom &Out", lambda: w.view.zoom_by(0.8), QKeySequence.ZoomOut)
    w.unrolled_action = QAction("Show &Unrolled Graph (read-only)", w, checkable=True)
    w.unrolled_action.setShortcut(QKeySequence("Ctrl+U"))
    w.unrolled_action.toggled.connect(w.show_unrolled)
    v.addAction(w.unrolled_action)
    steps_menu = v.addMenu("Unrolled &Time Steps")
    w._steps_actions = QActionGroup(w)
    for n in (None, 2, 3, 4, 6, 8, 12):
        a = QAction("Default (up to 3)" if n is None else f"{n} steps", w, checkable=True)
        a.setChecked(n is None)
        a.triggered.connect(lambda checked=False, n=n: w.set_unroll_steps(n))
        w._steps_actions.addAction(a)
        steps_menu.addAction(a)
    w.minimap_action = QAction("&Minimap", w, checkable=True)
    w.minimap_action.setShortcut(QKeySequence("Ctrl+Shift+M"))
    w.minimap_action.toggled.connect(w.set_minimap)
    v.addAction(w.minimap_action)
    direction = v.addMenu("Layout &Direction")
    for key, label in (("TB", "&Top to Bottom"), ("LR", "&Left to Right")):
        direction.addAction(label, lambda k=key: ed.set_layout_direction(k))
    w.snap_action = QAction("&Snap to Grid", w, checkable=True)
    w.snap_action.toggled.connect(w.set_grid_snap)
    v.addAction(w.snap_action)
    theme_menu = v.addMenu("&Theme")
    w._theme_actions = QActionGroup(w)
    for key, label in (("system", "&System"), ("light", "&Light"), ("dark", "&Dark")):
        a = QAction(label, w, checkable=True)
        a.setData(key)
        a.triggered.connect(lambda checked=False, k=key: w.set_theme(k))
        w._theme_actions.addAction(a)
        theme_menu.addAction(a)
    v.addSeparator()
    w._view_menu_docks = v.addMenu("&Panels")
    for dock in (w.palette_dock, w.inspector_dock, w.diagnostics_dock):
        w._view_menu_docks.addAction(dock.toggleViewAction())
    w.snap_action.setChecked(str(w.settings.value("snap", "false")) == "true")


def context_menu(w, item, global_pos) -> None:
    """Right-click menus on a node, a wire or the empty canvas."""
    while item is not None and not isinstance(item, (NodeItem, EdgeItem)):
        item = item.parentItem()
    m = QMenu(w)
    ed = w.editor
    if isinstance(item, NodeItem):
        if not item.isSelected():
            ed.scene.select_nodes([item.node.id])
        m.addAction("Duplicate", ed.duplicate)
        m.addAction("Copy", ed.copy)
        m.addAction("Cut", ed.cut)
        m.addAction("Delete", ed.delete_selection)
        m.addSeparator()
        m.addAction("Group", ed.group_block)  # into one Block node
        if item.node.type == "Block":
            m.addAction("Open Block", lambda nid=item.node.id: ed.open_block(nid))
            m.addAction("Ungroup Block", lambda nid=item.node.id: ed.ungroup_block(nid))
        m.addAction("Frame Selection", ed.group_selection)
        m.addAction("Remove Frame", ed.ungroup_selection)
        m.addAction("Auto-layout selection", lambda: ed.auto_layout(True))
    elif isinstance(item, EdgeItem):
        m.addAction("Disconnect", lambda e=item.edge: ed.reconnect(e, None))
    else:
        pos = w.view.mapToScene(w.view.mapFromGlobal(global_pos.toPoint()))
        m.addAction("Add layer…", lambda: w._quick_add_at(pos))
        m.addAction("Paste", lambda: ed.paste(at=pos))
        m.addAction("Select all", ed.select_all)
        m.addSeparator()
        m.addAction("Auto-layout", lambda: ed.auto_layout(False))
        m.addAction("Fit to view", lambda: w.current_view().fit())
    m.popup(global_pos.toPoint())
