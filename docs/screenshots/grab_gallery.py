"""Pictures of the canvas: every gallery example as it opens (fitted) in a 1600x1000
window, light and dark; the unrolled char_lstm_cell; a 200-node graph zoomed out.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/grab_gallery.py

Writes docs/screenshots/gallery/<example>-light.png and -dark.png (the canvas as the
window shows it), unrolled-char_lstm_cell.png (netbuilder render --unrolled 3) and
graph200-zoomed-out.png. README's diagram pictures are made with `netbuilder render`.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = ROOT / "docs" / "screenshots" / "gallery"


def main() -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["grab"])
    import runtime.analysis  # noqa: F401  (torch first: no warm-up thread racing the grabs)
    from benchmarks.bench_editor import new_window
    from runtime.cli import main as cli

    OUT.mkdir(parents=True, exist_ok=True)
    w = new_window(Path(tempfile.mkdtemp()))  # 1600x1000, shown, no plug-ins
    app.processEvents()
    examples = sorted((ROOT / "resources" / "examples").glob("*.json"))
    for theme in ("light", "dark"):
        w.set_theme(theme)
        for path in examples:
            w.open_example(path)
            w.editor.run_analysis()
            for _ in range(3):
                app.processEvents()
            w.view.fit()
            app.processEvents()
            w.view.viewport().grab().save(str(OUT / f"{path.stem}-{theme}.png"))
            print(path.stem, theme, f"zoom {w.view.zoom():.2f}")
    # a 200-node graph, zoomed out (fit): blocks with large names
    import runtime
    from benchmarks.graphgen import make_graph
    from graph_editor.layout import layered_positions

    doc = make_graph(runtime, 200)
    for nid, pos in layered_positions(doc).items():
        doc.move_node(nid, pos)
    w.set_theme("light")
    w.set_document(doc, None)
    w.editor.run_analysis()
    for _ in range(3):
        app.processEvents()
    w.view.fit()
    app.processEvents()
    w.view.viewport().grab().save(str(OUT / "graph200-zoomed-out.png"))
    w.undo_stack.setClean()
    w.close()
    cli(["render", str(ROOT / "resources" / "examples" / "char_lstm_cell.json"),
         "--unrolled", "3", "--out", str(OUT / "unrolled-char_lstm_cell.png"), "--scale", "0.8"])
    for stem in ("inception_small", "lenet5"):
        cli(["render", str(ROOT / "resources" / "examples" / f"{stem}.json"),
             "--out", str(ROOT / "docs" / "screenshots" / f"render-{stem}.png")])
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
