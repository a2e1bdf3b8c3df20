"""``netbuilder render FILE --out graph.png|graph.svg``: the diagram as an image, headless.

The picture is what the canvas shows: the same scene items (nodes with their parameter
counts and output shapes, wires with their shape labels), drawn by Qt's offscreen
platform, so no display is needed. ``--unrolled N`` draws the recurrent graph unrolled
over N time steps; ``--theme`` picks the light or dark colours. File > Export Diagram in
the editor writes the same picture of the open graph.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MARGIN = 40.0
MAX_SIDE = 8000  # pixels: a huge graph is drawn smaller, never as a gigapixel image


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="graph file (.json)")
    p.add_argument("--out", required=True, help="output image: .png or .svg")
    p.add_argument("--unrolled", type=int, metavar="N", default=None,
                   help="draw the recurrent graph unrolled over N time steps")
    p.add_argument("--theme", choices=("light", "dark"), default="light")
    p.add_argument("--scale", type=float, default=1.0,
                   help="zoom of the picture (1 = the canvas at 100%%; default 1)")
    p.add_argument("--layout", action="store_true",
                   help="lay the graph out first (as Edit > Auto-layout does)")


def run(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg"):
        print(f"{out}: the output must end in .png or .svg", file=sys.stderr)
        return 1
    if args.scale <= 0 or args.scale > 8:
        print(f"--scale {args.scale}: give a zoom between 0 and 8", file=sys.stderr)
        return 1
    if args.unrolled is not None and args.unrolled < 1:
        print(f"--unrolled {args.unrolled}: give at least 1 time step", file=sys.stderr)
        return 1
    from runtime.clitools import load_or_report

    doc = load_or_report(args.file)
    if doc is None:
        return 1
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["netbuilder-render"])  # noqa: F841
    from graph_editor.theme import THEMES

    theme = THEMES[args.theme]
    try:
        scene = build_scene(doc, theme, unrolled=args.unrolled, layout=args.layout)
    except ValueError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        size = write_image(scene, out, scale=args.scale)
    except OSError as exc:
        print(f"{out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return 0


def build_scene(doc, theme, *, unrolled: int | None = None, layout: bool = False):
    """A read-only scene of ``doc`` (or of its unrolled graph) with the analysis shown."""
    from graph_editor.layout import layered_positions
    from graph_editor.scene import GraphScene
    from runtime.pipeline import check

    if unrolled is not None:
        from graph_editor.unrolled import unrolled_document

        doc = unrolled_document(doc, unrolled)
    elif layout:
        for nid, pos in layered_positions(doc).items():
            doc.move_node(nid, pos)
    scene = GraphScene(doc, theme, read_only=True)
    scene.show_grid = False
    try:  # what the editor shows: shapes also where a part is broken, ids out of range
        analysis, diags = check(doc, shapes="always")
    except Exception as exc:  # drawn without shapes, with the reason on stderr
        print(f"note: shapes not shown: {exc}", file=sys.stderr)
        analysis, diags = None, []
    scene.apply_analysis(analysis, diags)
    if unrolled is not None:
        from graph_editor.unrolled import decorate

        decorate(scene, doc)
    return scene


def content_rect(scene):
    from graph_editor.view import scene_content_rect

    return scene_content_rect(scene).adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)


def write_image(scene, out: Path, scale: float = 1.0) -> tuple[int, int]:
    """Draw the scene's content into ``out`` (.png or .svg); returns the pixel size."""
    from PySide6.QtCore import QRectF, QSize, Qt
    from PySide6.QtGui import QImage, QPainter

    from runtime.serialization import atomic_write_bytes

    rect = content_rect(scene)
    scale = min(scale, MAX_SIDE / max(rect.width(), rect.height(), 1.0))
    w, h = max(1, int(rect.width() * scale)), max(1, int(rect.height() * scale))
    target = QRectF(0, 0, w, h)
    scene.clearSelection()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".svg":
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice
        from PySide6.QtSvg import QSvgGenerator

        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.WriteOnly)
        gen = QSvgGenerator()
        gen.setOutputDevice(buf)
        gen.setSize(QSize(w, h))
        gen.setViewBox(target)
        gen.setTitle(str(scene.doc.metadata.get("name") or "graph"))
        gen.setDescription("Drawn by Netbuilder")
        painter = QPainter(gen)
        _draw(scene, painter, target, rect)
        painter.end()
        buf.close()
        atomic_write_bytes(out, bytes(data))
    else:
        image = QImage(w, h, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        _draw(scene, painter, target, rect)
        painter.end()
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice

        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.WriteOnly)
        if not image.save(buf, "PNG"):
            raise OSError("PNG encoding failed")
        buf.close()
        atomic_write_bytes(out, bytes(data))
    return w, h


def _draw(scene, painter, target, source) -> None:
    from PySide6.QtGui import QPainter

    painter.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
    painter.fillRect(target, scene.theme.c("background"))
    scene.render(painter, target, source)
