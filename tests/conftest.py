"""Test set-up: Qt offscreen (before any Qt import), deterministic torch threads."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")
