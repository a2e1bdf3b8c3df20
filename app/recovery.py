"""Autosave and recovery files: written beside the document, never over it.

A document ``net.json`` autosaves to ``.net.json.autosave`` in the same folder; an
untitled document to ``untitled-<session>.json.autosave`` in the user data folder.
A recovery file newer than its document means the app stopped before saving.

Every window is a session (``<pid>-<ms>``). While a session autosaves a document that has
a file, it leaves a small reference ``session-<session>.ref`` (JSON: the document's path)
in the recovery folder, so that after a crash a plain start (no file named) finds that
work too, not only untitled work. Work of a session that is still running (another
window of this process, or another Netbuilder process) is never offered or removed.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".autosave"
REF_SUFFIX = ".ref"
_LIVE_SESSIONS: set[str] = set()  # sessions of this process whose window is open


@dataclass(frozen=True)
class Orphan:
    """Unsaved work left by a session that ended without saving (a crash)."""

    recovery: Path  # the autosave file
    document: Path | None  # the document it belongs to; None for an untitled graph
    session: str
    ref: Path | None = None  # the session's reference file, for a titled document

    @property
    def name(self) -> str:
        return self.document.name if self.document is not None else "an untitled graph"


def default_recovery_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("netbuilder", "Netbuilder")) / "recovery"


def recovery_path_for(document: Path) -> Path:
    return document.with_name(f".{document.name}{SUFFIX}")


def untitled_recovery_path(directory: Path, session: str) -> Path:
    return directory / f"untitled-{session}.json{SUFFIX}"


def new_session_id() -> str:
    return f"{os.getpid()}-{time.time_ns() // 1000}"


def claim(session: str) -> None:
    """Mark a session of this process as running (its window is open)."""
    _LIVE_SESSIONS.add(session)


def release(session: str) -> None:
    """The session's window closed normally."""
    _LIVE_SESSIONS.discard(session)


def session_alive(session: str) -> bool:
    """Whether the window that owns ``session`` may still be running."""
    try:
        pid = int(session.split("-", 1)[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return session in _LIVE_SESSIONS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


def ref_path(directory: Path, session: str) -> Path:
    return directory / f"session-{session}{REF_SUFFIX}"


def note_document(directory: Path, session: str, document: Path) -> None:
    """Remember that ``session`` autosaves ``document`` (for recovery at a plain start)."""
    from runtime.serialization import atomic_write_text

    ref = ref_path(directory, session)
    text = json.dumps({"document": str(document)})
    try:
        if ref.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    atomic_write_text(ref, text)


def forget_document(directory: Path, session: str) -> None:
    remove(ref_path(directory, session))


def _session_of(path: Path, prefix: str, suffix: str) -> str:
    return path.name[len(prefix):len(path.name) - len(suffix)]


def orphans(directory: Path) -> list[Orphan]:
    """Work that ended sessions left unsaved, newest first. References whose document
    has no newer autosave any more (saved since, or discarded) are tidied away."""
    if not directory.is_dir():
        return []
    found: list[Orphan] = []
    for path in directory.glob(f"untitled-*.json{SUFFIX}"):
        session = _session_of(path, "untitled-", f".json{SUFFIX}")
        if not session_alive(session):
            found.append(Orphan(path, None, session))
    for ref in directory.glob(f"session-*{REF_SUFFIX}"):
        session = _session_of(ref, "session-", REF_SUFFIX)
        if session_alive(session):
            continue
        try:
            document = Path(json.loads(ref.read_text(encoding="utf-8"))["document"])
        except (OSError, ValueError, KeyError, TypeError):
            remove(ref)
            continue
        rec = pending_recovery(document)
        if rec is None:
            remove(ref)
            continue
        found.append(Orphan(rec, document, session, ref))

    def mtime(o: Orphan) -> float:
        try:
            return o.recovery.stat().st_mtime
        except OSError:
            return 0.0
    return sorted(found, key=mtime, reverse=True)


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
