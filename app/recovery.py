"""Autosave and recovery files: written beside the document, never over it.

A document ``net.json`` autosaves to ``.net.json.autosave`` in the same folder; an
untitled document to ``untitled-<session>.json.autosave`` in the user data folder.
A recovery file newer than its document means the app stopped before saving.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

SUFFIX = ".autosave"


def default_recovery_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("netbuilder", "Netbuilder")) / "recovery"


def recovery_path_for(document: Path) -> Path:
    return document.with_name(f".{document.name}{SUFFIX}")


def untitled_recovery_path(directory: Path, session: str) -> Path:
    return directory / f"untitled-{session}.json{SUFFIX}"


def new_session_id() -> str:
    return f"{os.getpid()}-{int(time.time() * 1000)}"


def pending_recovery(document: Path) -> Path | None:
    """The recovery file of ``document`` when it is newer than the document."""
    rec = recovery_path_for(document)
    try:
        rec_m = rec.stat().st_mtime
    except OSError:
        return None
    try:
        doc_m = document.stat().st_mtime
    except OSError:
        doc_m = 0.0
    return rec if rec_m > doc_m else None


def untitled_recoveries(directory: Path) -> list[Path]:
    """Recovery files of untitled documents, newest first."""
    if not directory.is_dir():
        return []
    files = list(directory.glob(f"untitled-*.json{SUFFIX}"))
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def remove(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except OSError:
        pass


def describe_time(path: Path) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(path.stat().st_mtime))
    except OSError:
        return "an earlier session"
