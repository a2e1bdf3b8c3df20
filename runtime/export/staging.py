"""Writing an export so that its output appears whole or not at all.

Every format writes into a hidden folder beside the target (``.NAME.partial-PID-XXXX``); the
export is verified there and only then moved into place. A failure (a full disk, a check
that does not pass, a crash of the exporter) removes the folder: no half-written bundle,
no model.py without its train.py, no unverified file under the target's name.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from glob import escape as glob_escape
from pathlib import Path
from typing import Iterable, Iterator

from .result import ExportError

# the files a directory-shaped export writes (stale ones are removed when it replaces one)
DIRECTORY_FILES = ("manifest.json", "graph.json", "weights.safetensors", "model.py",
                   "train.py", "data.npz")


def write_bytes(path: Path, data: bytes) -> None:
    """Write one file of an export (into the staging folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def check_target(out: Path, *, overwrite: bool, protect: Iterable[Path] = (),
                 verb: str = "exported") -> None:
    """Refuse to write over a file the export reads (its own graph or bundle), and over
    an existing output unless ``overwrite`` is set."""
    out = Path(out).resolve()
    for p in protect:
        p = Path(p).resolve()
        if out == p or (p.is_dir() and p in out.parents):
            raise ExportError(f"{out} is the file being {verb}: choose another output path "
                              "(writing there would replace it)")
    if out.exists() and not overwrite:
        what = "a directory" if out.is_dir() else "a file"
        raise ExportError(f"{out} exists ({what}): choose another path, or pass --force to "
                          "replace it")


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yield where to write ``out`` (inside a hidden folder beside it); after the block,
    move what was written into place. An exception in the block removes everything."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))
    try:
        yield tmp / out.name
        commit(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(out: Path) -> None:
    """Staging folders of earlier exports to ``out`` whose process is gone (killed with
    SIGKILL, or the machine went down): removed before a new export to the same target."""
    for p in out.parent.glob(f".{glob_escape(out.name)}.partial-*"):
        pid = p.name[len(f".{out.name}.partial-"):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except OSError:  # alive under another user, or no permission to ask: keep it
            pass


def commit(staged_path: Path, out: Path) -> None:
    """Move a finished export into place. A file replaces the old one in one step. A
    directory becomes ``out``; where ``out`` is an existing directory, the new files
    replace their namesakes one by one (each complete) and older export files the new
    export did not write (say, a train.py) are removed; other files there stay."""
    if not staged_path.exists():
        raise ExportError(f"the exporter wrote nothing to {out}")
    if staged_path.is_dir() and out.is_dir():
        written = {p.name for p in staged_path.iterdir()}
        for p in staged_path.iterdir():
            os.replace(p, out / p.name)
        for name in DIRECTORY_FILES:
            if name not in written and (out / name).is_file():
                (out / name).unlink()
    elif staged_path.is_dir() and out.exists():
        raise ExportError(f"{out} exists and is not a directory")
    elif out.is_dir():
        raise ExportError(f"{out} is a directory: choose a file name")
    else:
        os.replace(staged_path, out)
    _sync_dir(out.parent)


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
