"""The Qt node editor: scene, items, view, palette, inspector, undo commands."""
