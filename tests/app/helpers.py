"""Shared helpers for the application tests: scripted answers to the window's questions,
and closing a window at the end of a test without a prompt."""
from __future__ import annotations

from pathlib import Path


class ScriptedPrompts:
    """Answers the window's questions without modal dialogs, and records them."""

    def __init__(self):
        self.errors: list[tuple[str, str, str]] = []
        self.unsaved_answer = "discard"
        self.recover_answer = True
        self.asked: list[str] = []
        self.save_as: Path | None = None

    def error(self, title, text, details=""):
        self.errors.append((title, text, details))

    def unsaved(self, name):
        self.asked.append("unsaved")
        return self.unsaved_answer

    def recover(self, name, when):
        self.asked.append("recover")
        return self.recover_answer

    def open_path(self, directory=""):
        return None

    def save_path(self, suggestion=""):
        return self.save_as


def close_window(window) -> None:
    """Close ``window`` discarding unsaved work (the answer a user gives at the prompt)."""
    window.prompts.unsaved_answer = "discard"
    window.close()
