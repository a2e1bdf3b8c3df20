"""Canvas interaction details found by driving the window: palette search order, fit
margins in a short canvas."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def test_palette_search_ranks_name_matches_before_description_matches(qtbot):
    from graph_editor.palette import PaletteWidget, QuickAddPopup

    palette = PaletteWidget()
    qtbot.addWidget(palette)
    popup = QuickAddPopup()
    qtbot.addWidget(popup)
    for text, first in [("cross entropy", "CrossEntropy"), ("crossentropy", "CrossEntropy"),
                        ("softmax", "Softmax"), ("relu", "ReLU"), ("conv", None)]:
        palette.search.setText(text)
        popup.edit.setText(text)
        types = palette.visible_types()
        listed = [popup.list.item(i).data(Qt.UserRole + 1) for i in range(popup.list.count())]
        assert types and listed[0] == types[0], text
        if first is not None:
            assert types[0] == first, (text, types)
            assert palette.tree.currentItem().data(0, Qt.UserRole + 1) == first
        else:
            assert "conv" in types[0].lower(), types
    palette.search.setText("cross entropy")
    with qtbot.waitSignal(palette.add_requested) as sig:
        palette.search.returnPressed.emit()
    assert sig.args == ["CrossEntropy"]
