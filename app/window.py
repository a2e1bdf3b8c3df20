"""The main window: canvas, palette, inspector and diagnostics docks, menus, files.

The window composes graph_editor's pieces around one GraphDocument and owns the file
side: open, save (atomic), recent files, autosave and recovery. Other parts of the app
(training, export) plug in through ``add_dock`` and ``menu`` from their ``install``.
"""
from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QApplication, QDockWidget, QLabel, QMainWindow, QMenu,
                               QStackedWidget, QWidget)

from graph_editor.diagnostics_panel import DiagnosticsPanel
from graph_editor.editor import GraphEditor
from graph_editor.inspector import InspectorWidget
from graph_editor.palette import PaletteWidget, QuickAddPopup
from graph_editor.scene import GRID, GraphScene
from graph_editor.view import GraphView
from runtime.graph import GraphDocument
from runtime.serialization import GraphFileError, atomic_write_text, dumps, load_graph, save_graph

from . import recovery
from .menus import build_menus, context_menu
from .prompts import Prompts
from .start_page import StartPage, example_title
from .theme import apply_theme

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "resources" / "examples"
AUTOSAVE_MS = 30_000
MAX_RECENT = 10
PLUGINS = ("app.training", "app.export_ui", "app.experiments")


class MainWindow(QMainWindow):
    document_replaced = Signal(object)  # the new GraphDocument (New / Open / Recover)
    selection_changed = Signal(list)  # selected node ids
    theme_changed = Signal(str)  # "light" or "dark": the canvas theme now shown

    def __init__(self, document: GraphDocument | None = None, *, show_start: bool = False,
                 settings: QSettings | None = None, recovery_dir: Path | None = None,
                 prompts: Prompts | None = None, plugins: bool = True):
        super().__init__()
        self.setObjectName("MainWindow")
        self.settings = settings or QSettings("Netbuilder", "Netbuilder")
        self.recovery_dir = Path(recovery_dir) if recovery_dir else recovery.default_recovery_dir()
        self.prompts = prompts or Prompts(self)
        self.session = recovery.new_session_id()
        recovery.claim(self.session)
        self.file_path: Path | None = None
        self._document: GraphDocument | None = None
        self._forced_modified = False  # recovered work counts as unsaved
        self._closing = False
        self._autosaved_key: tuple | None = None  # what the last autosave wrote
        self.undo_stack = QUndoStack(self)
        self.view = GraphView()
        self.editor = GraphEditor(self.view, self.undo_stack, parent=self)
        self.examples_dir = EXAMPLES_DIR
        self.start_page = StartPage(EXAMPLES_DIR)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.view)
        self.unrolled_view = GraphView()  # read-only view of the unrolled recurrent graph
        self.unrolled_scene = None
        self.unroll_steps: int | None = None  # None: graph_editor.unrolled's default
        self.stack.addWidget(self.unrolled_view)
        self.setCentralWidget(self.stack)
        self.palette = PaletteWidget()
        self.inspector = InspectorWidget()
        self.diagnostics = DiagnosticsPanel()
        self.quick_add = QuickAddPopup(self)
        self.palette_dock = self.add_dock("Layers", self.palette, Qt.LeftDockWidgetArea,
                                          "PaletteDock")
        self.inspector_dock = self.add_dock("Inspector", self.inspector, Qt.RightDockWidgetArea,
                                            "InspectorDock")
        self.diagnostics_dock = self.add_dock("Diagnostics", self.diagnostics,
                                              Qt.RightDockWidgetArea, "DiagnosticsDock")
        self.totals_label = QLabel()
        self.file_label = QLabel()
        self.statusBar().addPermanentWidget(self.totals_label)
        self.statusBar().addPermanentWidget(self.file_label)
        self._wire()
        self._build_menus()
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self._autosave_timer.start()
        self.resize(1500, 920)
        self.set_document(document or GraphDocument("untitled"), None)
        self.stack.setCurrentWidget(self.start_page if show_start else self.view)
        self._refresh_recent()
        self.set_theme(str(self.settings.value("theme", "system")))
        from graph_editor.minimap import MiniMap

        self.view.minimap = MiniMap(self.view)
        self.minimap_action.setChecked(str(self.settings.value("minimap", "false")) == "true")
        from .wheel_guard import install as install_wheel_guard

        install_wheel_guard()
        hints = QApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):  # follow the system while on "system"
            hints.colorSchemeChanged.connect(self._system_scheme_changed)
        if plugins:
            self._install_plugins()
        QTimer.singleShot(0, self._arrange_docks)

    # ---- agreed interface -------------------------------------------------------------
    @property
    def document(self) -> GraphDocument:
        return self._document

    def add_dock(self, title: str, widget: QWidget, area=Qt.RightDockWidgetArea,
                 object_name: str | None = None) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name or f"{title.replace(' ', '')}Dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        if hasattr(self, "_view_menu_docks"):
            self._view_menu_docks.addAction(dock.toggleViewAction())
        return dock

    def menu(self, title: str) -> QMenu:
        bare = title.replace("&", "")
        for action in self.menuBar().actions():
            m = action.menu()
            if m is not None and m.title().replace("&", "") == bare:
                return m
        return self.menuBar().addMenu(title)

    def show_message(self, text: str, timeout_ms: int = 5000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def select_node(self, node_id: str) -> None:
        item = self.editor.scene.node_items.get(node_id) if self.editor.scene else None
        if item is None:
            return
        self.show_canvas()
        self.editor.scene.select_nodes([node_id])
        self.view.ensureVisible(item, 60, 60)  # scrolls only when it is off screen

    # ---- wiring of the parts -----------------------------------------------------------
    def _wire(self) -> None:
        ed = self.editor
        self.palette.add_requested.connect(self._add_from_palette)
        self.view.quick_add_requested.connect(self._quick_add_at)
        self.view.context_requested.connect(self._context_menu)
        self.quick_add.chosen.connect(lambda t: self._add_from_palette(t, self._quick_pos))
        self._quick_pos = None
        self.inspector.param_edit_requested.connect(ed.set_param)
        self.inspector.label_edit_requested.connect(ed.set_label)
        self.diagnostics.node_activated.connect(self.select_node)
        ed.selection_changed.connect(self._on_selection)
        ed.analysis_updated.connect(self._on_analysis)
        ed.message.connect(self.show_message)
        ed.document_shown.connect(self._on_document_shown)  # a block opened or closed
        self.undo_stack.cleanChanged.connect(self._update_title)
        self.undo_stack.indexChanged.connect(self._update_title)
        self.start_page.new_requested.connect(self.new_document)
        self.start_page.open_requested.connect(self.open_dialog)
        self.start_page.example_requested.connect(self.open_example)
        self.start_page.recent_requested.connect(self.open_path)

    def _add_from_palette(self, type_id: str, pos=None) -> None:
        """Palette activation / quick-add: add the layer, wired after the selected one."""
        self.show_canvas()
        new_id = self.editor.add_node_after(type_id, pos)
        item = self.editor.scene.node_items.get(new_id) if new_id else None
        if item is not None:
            self.view.ensureVisible(item, 80, 80)
        self.view.setFocus()

    def _quick_add_at(self, scene_pos) -> None:
        self._quick_pos = scene_pos
        self.quick_add.popup_at(self.view.mapToGlobal(self.view.mapFromScene(scene_pos)))

    def _on_selection(self, ids: list) -> None:
        self.inspector.set_node(ids[0] if len(ids) == 1 else None)
        self._show_inspector_analysis()
        self.selection_changed.emit(list(ids))

    def _show_inspector_analysis(self) -> None:
        nid = self.inspector.node_id
        if nid is None:
            return
        a = self.editor.analysis
        info = a.nodes.get(nid) if a is not None else None
        msgs = [d.message for d in self.editor.diagnostics if d.node_id == nid]
        self.inspector.set_analysis(info, msgs)

    def _on_analysis(self, analysis, diagnostics) -> None:
        self.diagnostics.set_diagnostics(diagnostics)
        errors = sum(1 for d in diagnostics if d.is_error)
        warnings = len(diagnostics) - errors
        shown = self.editor.doc  # the graph on the canvas: an open block's inner graph
        if analysis is not None:
            text = (f"{len(shown)} nodes · {analysis.total_params:,} parameters · "
                    f"{analysis.total_macs:,} MACs")
        else:
            text = f"{len(shown)} nodes"
        if self.editor.block_path:
            text = f"{self.editor.breadcrumb()}: {text}"
        if errors or warnings:
            text += f" · {errors} error{'s' if errors != 1 else ''}, {warnings} warning" \
                    f"{'s' if warnings != 1 else ''}"
        self.totals_label.setText(text)
        self._show_inspector_analysis()

    # ---- document and title -----------------------------------------------------------
    def set_document(self, doc: GraphDocument, path: Path | None, *, modified: bool = False) -> None:
        old_recovery = self.recovery_path() if self._document is not None else None
        self._document = doc
        self.file_path = Path(path) if path else None
        if old_recovery is not None and old_recovery != self.recovery_path():
            recovery.remove(old_recovery)
        self._forced_modified = modified
        self._autosaved_key = None
        self.inspector.set_document(doc)
        self.editor.set_document(doc)
        if getattr(self, "unrolled_action", None) is not None and self.unrolled_action.isChecked():
            self.show_canvas()
        self._wrap_if_unreadable(doc)
        QTimer.singleShot(0, lambda: self._wrap_if_unreadable(doc))  # once the canvas settled
        self.view.request_fit()
        self._update_title()
        self.document_replaced.emit(doc)

    def _wrap_if_unreadable(self, doc: GraphDocument) -> None:
        """An opened chain that the canvas shows only as title blocks is wrapped into
        columns (see GraphEditor.wrap_if_unreadable), while nothing was edited yet."""
        if doc is self._document and self.undo_stack.count() == 0 and not self.editor.block_path:
            self.editor.wrap_if_unreadable()

    def current_view(self) -> GraphView:
        """The canvas on screen: the editor's, or the unrolled graph's."""
        if self.stack.currentWidget() is self.unrolled_view:
            return self.unrolled_view
        return self.view

    def show_canvas(self) -> None:
        if getattr(self, "unrolled_action", None) is not None and self.unrolled_action.isChecked():
            self.unrolled_action.setChecked(False)
        self.stack.setCurrentWidget(self.view)

    def is_modified(self) -> bool:
        return self._forced_modified or not self.undo_stack.isClean()

    def display_name(self) -> str:
        if self.file_path is not None:
            return self.file_path.name
        return str(self.document.metadata.get("name") or "untitled")

    def _update_title(self, *_) -> None:
        if self._closing:
            return
        modified = self.is_modified()
        self.setWindowTitle(f"{self.display_name()}[*] — Netbuilder")
        self.setWindowModified(modified)
        if self.file_path is None:
            state = "Untitled, not saved" if len(self.document) or modified else "Untitled"
        else:
            state = "Modified" if modified else "Saved"
        self.file_label.setText(state)

    # ---- files ----------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True when the current document may be replaced (saved, discarded or clean)."""
        if not self.is_modified():
            return True
        answer = self.prompts.unsaved(self.display_name())
        if answer == "save":
            return self.save()
        if answer == "discard":
            recovery.remove(self.recovery_path())
            recovery.forget_document(self.recovery_dir, self.session)
            return True
        return False

    def new_document(self) -> None:
        if self.maybe_save():
            self.set_document(GraphDocument("untitled"), None)
            self.show_canvas()

    def open_dialog(self) -> None:
        start = str(self.file_path.parent) if self.file_path else ""
        path = self.prompts.open_path(start)
        if path is not None:
            self.open_path(path)

    def open_path(self, path, *, ask_save: bool = True) -> bool:
        """Open a graph file; on failure report what and where, keep the current document."""
        path = Path(path)
        try:
            doc = load_graph(path)
        except GraphFileError as exc:
            details = "\n".join(f"• {p.location}: {p.message}" for p in exc.problems[:20])
            more = len(exc.problems) - 20
            if more > 0:
                details += f"\n… and {more} more"
            self.prompts.error("Cannot open graph",
                               f"{path.name} cannot be opened: {len(exc.problems)} problem(s).",
                               details)
            self.show_message(f"Could not open {path.name}")
            return False
        if ask_save and not self.maybe_save():
            return False
        modified = False
        rec = recovery.pending_recovery(path)
        if rec is not None:
            if self.prompts.recover(path.name, recovery.describe_time(rec)):
                try:
                    doc = load_graph(rec)
                    modified = True
                except GraphFileError as exc:
                    self.prompts.error("Cannot recover", f"The recovery file is damaged: {exc}")
            recovery.remove(rec) if not modified else None
        self.set_document(doc, path.resolve(), modified=modified)
        self.show_canvas()
        self._add_recent(path.resolve())
        self.show_message(f"Opened {path.name}" + (" (recovered unsaved changes)" if modified else ""))
        return True

    def open_example(self, path: Path) -> bool:
        """Open an example as a new untitled document (the gallery file stays pristine)."""
        try:
            doc = load_graph(path)
        except GraphFileError as exc:
            self.prompts.error("Cannot open example", str(exc))
            return False
        if not self.maybe_save():
            return False
        self.set_document(doc, None)
        self.show_canvas()
        self.show_message(f"Example {example_title(path)} opened; Save As to keep a copy")
        return True

    def save(self) -> bool:
        if self.file_path is None:
            return self.save_as()
        return self.save_to(self.file_path)

    def save_as(self) -> bool:
        suggestion = str(self.file_path or Path.home() / f"{self.display_name()}.json")
        path = self.prompts.save_path(suggestion)
        if path is None:
            return False
        self._name_after_file(Path(path))
        return self.save_to(path)

    def _name_after_file(self, path: Path) -> None:
        """An untitled document takes the file's name (metadata.name names the exported
        model class, the window title and the runs)."""
        name = str(self.document.metadata.get("name") or "").strip()
        if name.lower() in ("", "untitled"):
            meta = dict(self.document.metadata)
            meta["name"] = path.stem
            self.document.set_metadata(meta)

    def _on_document_shown(self, doc) -> None:
        self.inspector.set_document(doc)
        crumb = self.editor.breadcrumb()
        if crumb:
            self.show_message(f"Editing {crumb}: Edit > Close Block (Ctrl+Shift+B) to go back",
                              0)

    def save_to(self, path) -> bool:
        self.editor.close_all_blocks()  # the open blocks' edits belong in the saved file
        path = Path(path)
        old_recovery = self.recovery_path()
        try:
            save_graph(self.document, path)
        except OSError as exc:
            self.prompts.error("Cannot save", f"{path} could not be written: {exc.strerror or exc}")
            return False
        recovery.remove(old_recovery)
        self.file_path = path.resolve()
        recovery.remove(self.recovery_path())
        recovery.forget_document(self.recovery_dir, self.session)  # nothing left to recover
        self._forced_modified = False
        self.undo_stack.setClean()
        self._update_title()
        self._add_recent(self.file_path)
        self.show_message(f"Saved {path.name}")
        return True

    # ---- autosave and recovery --------------------------------------------------------
    def recovery_path(self) -> Path:
        if self.file_path is not None:
            return recovery.recovery_path_for(self.file_path)
        return recovery.untitled_recovery_path(self.recovery_dir, self.session)

    def _autosave_key(self) -> tuple:
        """Changes whenever the document or any open block's inner graph changes."""
        return (self.document.revision,) + tuple(d.revision for d in self.editor.open_documents())

    def autosave_now(self) -> Path | None:
        """Write the recovery file when there are unsaved changes since the last autosave.

        The file holds the whole document with the edits inside open blocks written in,
        so work inside a block survives a crash too."""
        key = self._autosave_key()
        if not self.is_modified() or key == self._autosaved_key:
            return None
        path = self.recovery_path()
        try:
            atomic_write_text(path, dumps(self.editor.composed_document()))
            if self.file_path is not None:
                recovery.note_document(self.recovery_dir, self.session, self.file_path)
        except OSError as exc:
            self.show_message(f"Autosave failed: {exc}")
            return None
        self._autosaved_key = key
        return path

    def offer_recovery(self) -> bool:
        """At a plain start: offer the newest work that a crashed session left unsaved
        (an untitled graph, or a document with a newer autosave beside it). Work of
        sessions still running is left alone."""
        found = recovery.orphans(self.recovery_dir)
        if not found:
            return False
        orphan = found[0]
        recovered = False
        if self.prompts.recover(orphan.name, recovery.describe_time(orphan.recovery)):
            try:
                doc = load_graph(orphan.recovery)
            except GraphFileError as exc:
                self.prompts.error("Cannot recover", f"The recovery file is damaged: {exc}")
            else:
                path = orphan.document.resolve() if orphan.document is not None else None
                self.set_document(doc, path, modified=True)
                self.show_canvas()
                if path is not None:
                    self._add_recent(path)
                recovered = True
        if orphan.document is None or not recovered:
            recovery.remove(orphan.recovery)
        recovery.remove(orphan.ref)
        if recovered:
            self.autosave_now()  # the recovered work is this session's to protect now
            self.show_message(f"Recovered unsaved changes of {orphan.name}")
        return recovered

    def closeEvent(self, event) -> None:
        if self.maybe_save():
            recovery.remove(self.recovery_path())
            recovery.forget_document(self.recovery_dir, self.session)
            recovery.release(self.session)
            self._autosave_timer.stop()
            self._closing = True
            event.accept()
        else:
            event.ignore()

    # ---- recent files ---------------------------------------------------------------
    def recent_files(self) -> list[Path]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [Path(p) for p in (value or []) if p]

    def _add_recent(self, path: Path) -> None:
        paths = [p for p in self.recent_files() if p != path]
        paths.insert(0, path)
        self.settings.setValue("recent", [str(p) for p in paths[:MAX_RECENT]])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        paths = [p for p in self.recent_files() if p.exists()]
        self.start_page.set_recent(paths)
        if hasattr(self, "recent_menu"):
            self.recent_menu.clear()
            for p in paths:
                self.recent_menu.addAction(p.name, lambda p=p: self.open_path(p)).setToolTip(str(p))
            self.recent_menu.setEnabled(bool(paths))

    # ---- menus ----------------------------------------------------------------------
    def _build_menus(self) -> None:
        build_menus(self)

    def show_unrolled(self, on: bool) -> None:
        """Toggle a read-only canvas with the recurrent graph unrolled over time."""
        if not on:
            if self.stack.currentWidget() is self.unrolled_view:
                self.show_canvas()
            return
        try:
            from graph_editor.unrolled import unrolled_document
            from runtime.pipeline import analyze

            unrolled = unrolled_document(self.document, self.unroll_steps)
            analysis = analyze(unrolled)
        except Exception as exc:  # a clear message, never a traceback
            self.show_message(f"Cannot show the unrolled graph: {exc}", 8000)
            self.unrolled_action.blockSignals(True)
            self.unrolled_action.setChecked(False)
            self.unrolled_action.blockSignals(False)
            return
        from graph_editor.unrolled import decorate

        if self.unrolled_scene is not None:
            self.unrolled_scene.detach()
        self.unrolled_scene = GraphScene(unrolled, self.editor.theme, parent=self, read_only=True)
        self.unrolled_scene.apply_analysis(analysis, analysis.diagnostics)
        decorate(self.unrolled_scene, unrolled)
        self.unrolled_view.setScene(self.unrolled_scene)
        self.stack.setCurrentWidget(self.unrolled_view)
        self.unrolled_view.request_fit()
        shown = unrolled.metadata.get("unrolled_steps", 1)
        total = unrolled.metadata.get("unrolled_total", shown)
        self.show_message(f"Unrolled view ({shown} of {total} time steps; View > Unrolled "
                          "Time Steps shows more), read-only; Ctrl+U returns to the editor", 8000)

    def set_unroll_steps(self, steps: int | None) -> None:
        """How many time steps the unrolled view draws (None: the default, up to 3)."""
        self.unroll_steps = steps
        if self.stack.currentWidget() is self.unrolled_view:
            self.show_unrolled(True)

    def set_minimap(self, on: bool) -> None:
        """View > Minimap: the overview in the canvas's corner."""
        minimap = getattr(self.view, "minimap", None)
        if minimap is not None:
            minimap.setVisible(on)
        self.settings.setValue("minimap", "true" if on else "false")

    def export_diagram(self, path=None) -> Path | None:
        """File > Export Diagram: the graph on screen (or the unrolled view) as a PNG or
        SVG picture, the same one `netbuilder render` draws."""
        from .render import build_scene, write_image

        if path is None:
            from PySide6.QtWidgets import QFileDialog

            start = str((self.file_path.with_suffix(".png")) if self.file_path else
                        Path.home() / f"{self.display_name()}.png")
            path, _ = QFileDialog.getSaveFileName(self, "Export Diagram", start,
                                                  "PNG image (*.png);;SVG drawing (*.svg)")
            if not path:
                return None
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg"):
            path = path.with_suffix(".png")
        try:
            if self.current_view() is self.unrolled_view and self.unrolled_scene is not None:
                scene = self.unrolled_scene
                scene.show_grid = False
                try:
                    write_image(scene, path)
                finally:
                    scene.show_grid = True
            else:
                write_image(build_scene(self.editor.composed_document().copy(),
                                        self.editor.theme), path)
        except OSError as exc:
            self.prompts.error("Cannot export the diagram",
                               f"{path} could not be written: {exc.strerror or exc}")
            return None
        self.show_message(f"Exported the diagram to {path}")
        return path

    def set_grid_snap(self, on: bool) -> None:
        if self.editor.scene is not None:
            self.editor.scene.snap_grid = GRID if on else 0.0
        self.settings.setValue("snap", "true" if on else "false")

    def _system_scheme_changed(self, *_) -> None:
        if str(self.settings.value("theme", "system")) == "system" and not self._closing:
            self.set_theme("system")

    def set_theme(self, key: str) -> None:
        theme = apply_theme(key)
        self.editor.set_theme(theme)
        if self.unrolled_scene is not None:
            self.unrolled_scene.set_theme(theme)
        self.theme_changed.emit(theme.name)
        self.settings.setValue("theme", key)
        for a in self._theme_actions.actions():
            a.setChecked(a.data() == key)

    def _context_menu(self, item, global_pos) -> None:
        context_menu(self, item, global_pos)

    def _arrange_docks(self) -> None:
        """Give the canvas most of the room; docks added by plug-ins stay modest."""
        docks = [d for d in self.findChildren(QDockWidget) if not d.isFloating()]
        bottom = [d for d in docks if self.dockWidgetArea(d) == Qt.BottomDockWidgetArea]
        if bottom:
            self.resizeDocks(bottom, [int(self.height() * 0.26)] * len(bottom), Qt.Vertical)
        for area, share in ((Qt.LeftDockWidgetArea, 0.14), (Qt.RightDockWidgetArea, 0.24)):
            side = [d for d in docks if self.dockWidgetArea(d) == area]
            if side:
                self.resizeDocks(side, [int(self.width() * share)] * len(side), Qt.Horizontal)
        if self.dockWidgetArea(self.inspector_dock) == Qt.RightDockWidgetArea:
            self.resizeDocks([self.inspector_dock], [int(self.height() * 0.42)], Qt.Vertical)

    # ---- plugins --------------------------------------------------------------------
    def _install_plugins(self) -> None:
        for name in PLUGINS:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue
                self._plugin_failed(name)
                continue
            except Exception:
                self._plugin_failed(name)
                continue
            try:
                module.install(self)
            except Exception:
                self._plugin_failed(name)

    def _plugin_failed(self, name: str) -> None:
        traceback.print_exc(file=sys.stderr)
        self.show_message(f"{name} could not be loaded; the editor works without it", 10000)


def run(argv: list[str]) -> int:
    """Entry point: ``netbuilder`` (start page) or ``netbuilder FILE``."""
    app = QApplication.instance() or QApplication(["netbuilder"])
    app.setApplicationName("Netbuilder")
    app.setOrganizationName("Netbuilder")
    files = [a for a in argv if not a.startswith("-")]
    window = MainWindow(show_start=not files)
    _report_unexpected_errors(window)
    window.show()
    if files:
        if not window.open_path(files[0], ask_save=False):
            window.stack.setCurrentWidget(window.start_page)
    else:
        QTimer.singleShot(0, window.offer_recovery)
    if app.platformName() == "offscreen":
        # Qt's offscreen platform crashes at exit if the clipboard holds data set from
        # Python (PySide6 6.11; xcb, Wayland and the others do not): empty it first.
        app.aboutToQuit.connect(lambda: app.clipboard().clear())
    return app.exec()


def _report_unexpected_errors(window: MainWindow) -> None:
    """A bug in a slot must not kill the app or show a traceback dialog: log it to the
    console and say so in one line in the status bar (unsaved work stays autosaved)."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        try:
            window.show_message(f"Internal error: {exc_type.__name__}: {exc} (details in the "
                                "console; your work is autosaved)", 15000)
        except RuntimeError:  # the window is gone
            previous(exc_type, exc, tb)

    sys.excepthook = hook
