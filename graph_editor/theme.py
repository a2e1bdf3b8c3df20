"""Colours of the canvas for the light and dark themes, and per palette category."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor

CATEGORY_COLOURS = {
    "Inputs & outputs": "#4e79a7",
    "Dense": "#f28e2b",
    "Convolution": "#e15759",
    "Pooling": "#76b7b2",
    "Activation": "#59a14f",
    "Normalization": "#edc948",
    "Wiring": "#b07aa1",
    "Loss": "#9c755f",
    "Recurrent": "#ff9da7",
}
_FALLBACK = ["#8cd17d", "#86bcb6", "#d4a6c8", "#f1ce63", "#a0cbe8"]


def category_colour(category: str) -> QColor:
    hexa = CATEGORY_COLOURS.get(category)
    if hexa is None:
        hexa = _FALLBACK[sum(map(ord, category)) % len(_FALLBACK)]
    return QColor(hexa)


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    grid: str
    node_body: str
    node_border: str
    text: str
    subtext: str
    edge: str
    edge_label: str
    selection: str
    error: str = "#d62728"
    warning: str = "#ff9f1c"
    compatible: str = "#2ca02c"
    recurrent: str = "#c2185b"  # wires through a Delay (back edges across time)

    def c(self, attr: str) -> QColor:
        return QColor(getattr(self, attr))


LIGHT = Theme("light", background="#f4f5f7", grid="#e2e4e8", node_body="#ffffff",
              node_border="#9aa0a6", text="#1f2328", subtext="#57606a", edge="#6e7781",
              edge_label="#24292f", selection="#0969da")
DARK = Theme("dark", background="#1e1f22", grid="#2b2d31", node_body="#2f3136",
             node_border="#55585f", text="#e6e6e6", subtext="#a9adb4", edge="#8b9099",
             edge_label="#e0e0e0", selection="#58a6ff", recurrent="#f06292")
THEMES = {"light": LIGHT, "dark": DARK}
