"""The versioned JSON file format: load (reporting every problem with its place), save
(atomically), migrate older versions. See docs/graph-format.md and
resources/graph.schema.json."""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .catalog import CATALOG, HIDDEN, type_hint
from .graph import Edge, GraphDocument, GraphError, _pos

FORMAT = "netbuilder.graph"
VERSION = 1
# A graph file larger than this is refused before it is read (a 10,000-node graph is a
# few MB); so are devices, pipes and other files that are not regular files.
MAX_FILE_BYTES = 64 * 2**20
# Objects and lists nested deeper than this are refused: a Block nested in a Block adds
# 4 levels, so this allows about 30 levels of Blocks, and keeps every recursive walk
# (json, jsonschema, deepcopy, block expansion) far from Python's recursion limit.
MAX_DEPTH = 128
RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SCHEMA_PATH = RESOURCES / "graph.schema.json"

# version -> function upgrading a dict of that version to version + 1
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


@dataclass(frozen=True)
class LoadProblem:
    location: str  # a JSON path ($.nodes[2].type) or "line 3, column 7"
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class GraphFileError(Exception):
    """A graph file that cannot be loaded; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[LoadProblem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"cannot load {source}: {len(problems)} problem(s)\n{lines}")


# ---- dict <-> document ----------------------------------------------------------------

def graph_to_dict(doc: GraphDocument) -> dict[str, Any]:
    """The file format's dict of ``doc`` (a deep, JSON-clean copy)."""
    return {"format": FORMAT, "version": VERSION, **doc.as_dict()}


def graph_from_dict(data: Any, source: str = "<graph>") -> GraphDocument:
    """Build a document, or raise GraphFileError listing every problem with its place."""
    problems = _structure_problems(data)
    if problems:
        raise GraphFileError(source, problems)
    problems = _schema_problems(data)
    if problems:
        raise GraphFileError(source, problems)
    data = migrate(data, source)
    doc = GraphDocument()
    doc.metadata = dict(data.get("metadata") or {})
    doc.metadata.setdefault("name", Path(source).stem if source != "<graph>" else "untitled")
    doc.training = dict(data.get("training") or {})
    for i, nd in enumerate(data["nodes"]):
        where = f"$.nodes[{i}]"
        if nd["type"] not in CATALOG and nd["type"] not in HIDDEN:
            hint = type_hint(nd["type"])
            problems.append(LoadProblem(f"{where}.type", f"unknown node type {nd['type']!r}{hint}"))
            continue
        spec = CATALOG.get(nd["type"]) or HIDDEN[nd["type"]]
        params = nd.get("params") or {}
        known = {p.name for p in spec.params}
        for name in params:
            if name not in known:
                problems.append(LoadProblem(f"{where}.params.{name}",
                                            f"{nd['type']} has no parameter {name!r}"))
        try:
            position = _pos(nd.get("position", (0, 0)))
        except GraphError as exc:
            problems.append(LoadProblem(f"{where}.position", _msg(exc)))
            continue
        try:
            doc.add_node(nd["type"], params, node_id=nd["id"], label=nd.get("label", ""),
                         position=position)
        except (GraphError, KeyError) as exc:
            problems.append(LoadProblem(f"{where}.id", _msg(exc)))
    for i, ed in enumerate(data["edges"]):
        where = f"$.edges[{i}]"
        missing = [k for k in ("source", "target") if ed[k] not in doc]
        if missing:
            if not any(_failed_node(problems, data, ed[k]) for k in missing):
                for k in missing:
                    problems.append(LoadProblem(f"{where}.{k}", f"no node with id {ed[k]!r}"))
            continue
        try:
            doc.add_edge(Edge(ed["source"], ed["source_port"], ed["target"], ed["target_port"]),
                         keep_stale=True)  # a port of other parameter values: validation says
        except GraphError as exc:
            problems.append(LoadProblem(where, _msg(exc)))
    if problems:
        raise GraphFileError(source, problems)
    doc.revision = 0
    return doc


def _failed_node(problems, data, node_id) -> bool:
    """Whether a node with this id was already reported (no second report per edge)."""
    for i, nd in enumerate(data["nodes"]):
        if nd.get("id") == node_id:
            return any(p.location.startswith(f"$.nodes[{i}]") for p in problems)
    return False


def _msg(exc: Exception) -> str:
    return exc.args[0] if exc.args else str(exc)


def _structure_problems(data: Any) -> list[LoadProblem]:
    """What no later step can take: nesting deeper than MAX_DEPTH, and text that is not
    Unicode (a lone surrogate such as "\\ud800", which JSON's escapes can spell but
    nothing can print or encode). Walks the data without recursion."""
    problems: list[LoadProblem] = []
    stack: list[tuple[Any, tuple, int]] = [(data, (), 0)]
    while stack and len(problems) < 20:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                problems.append(LoadProblem(_json_path(where), "text holds an invalid "
                                            f"character (a lone surrogate): {ascii(value)[:60]}"))
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth >= MAX_DEPTH:
            return [LoadProblem(_json_path(where), f"nested more than {MAX_DEPTH} levels deep "
                                "(objects and lists within each other); a graph never is")]
        if isinstance(value, dict):
            for k, v in value.items():
                if not _is_unicode(k):
                    problems.append(LoadProblem(_json_path(where), "a key holds an invalid "
                                                f"character (a lone surrogate): {ascii(k)[:60]}"))
                stack.append((v, where + (k,), depth + 1))
        else:
            stack.extend((v, where + (i,), depth + 1) for i, v in enumerate(value))
    return problems


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_validator = None


def _schema_problems(data: Any) -> list[LoadProblem]:
    global _validator
    if _validator is None:
        import jsonschema

        schema = json.loads(SCHEMA_PATH.read_text())
        _validator = jsonschema.Draft202012Validator(schema)
    if not isinstance(data, dict):
        return [LoadProblem("$", f"expected a JSON object, found {type(data).__name__}")]
    problems = []
    if data.get("format") != FORMAT:
        problems.append(LoadProblem("$.format", f"not a Netbuilder graph (format is "
                                                f"{data.get('format')!r}, expected {FORMAT!r})"))
        return problems
    version = data.get("version")
    if isinstance(version, (int, float)) and not isinstance(version, bool) and version > VERSION:
        return [LoadProblem("$.version", f"written by a newer Netbuilder (format version "
                                         f"{data['version']}; this one reads up to {VERSION})")]
    for err in sorted(_validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        problems.append(LoadProblem(_json_path(err.absolute_path), err.message))
    return problems


def _json_path(parts) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def migrate(data: dict, source: str = "<graph>") -> dict:
    """Upgrade a graph dict to the current version, one version at a time."""
    version = data["version"]
    if isinstance(version, float) and version.is_integer():  # 1.0 is 1 (as the schema says)
        version = data["version"] = int(version)
    while version < VERSION:
        if version not in MIGRATIONS:
            raise GraphFileError(source, [LoadProblem("$.version",
                                                      f"no migration from version {version}")])
        data = MIGRATIONS[version](data)
        version = data["version"]
    return data


# ---- files ------------------------------------------------------------------------------

def load_graph(path: str | os.PathLike) -> GraphDocument:
    """Load a graph file; GraphFileError (never another exception) when it cannot be read."""
    path = Path(path)

    def refuse(message: str):
        return GraphFileError(str(path), [LoadProblem(str(path), message)])
    try:
        info = path.stat()  # before opening: opening a pipe without a writer would block
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a " \
                "device, pipe or socket)"
            raise refuse(f"cannot read: {kind}")
        if info.st_size > MAX_FILE_BYTES:
            raise refuse(f"cannot read: the file has {info.st_size:,} bytes; a graph file "
                         f"has at most {MAX_FILE_BYTES:,}")
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:  # (it grew since the stat)
            raise refuse(f"cannot read: the file has more than {MAX_FILE_BYTES:,} bytes")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise refuse("no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(f"cannot read: {exc}") from None
    return loads(text, str(path))


def loads(text: str, source: str = "<graph>") -> GraphDocument:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphFileError(source, [LoadProblem(f"line {exc.lineno}, column {exc.colno}",
                                                  f"malformed JSON: {exc.msg}")]) from None
    except RecursionError:
        raise GraphFileError(source, [LoadProblem("$", f"nested more than {MAX_DEPTH} levels "
                                                  "deep (objects and lists within each "
                                                  "other); a graph never is")]) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise GraphFileError(source, [LoadProblem("$", f"malformed JSON: {exc}")]) from None
    return graph_from_dict(data, source)


def dumps(doc: GraphDocument) -> str:
    return json.dumps(graph_to_dict(doc), indent=2) + "\n"


def save_graph(doc: GraphDocument, path: str | os.PathLike) -> None:
    """Write atomically: a temporary file beside the target, fsync, rename."""
    atomic_write_text(Path(path), dumps(doc))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _new_file_mode(path: Path) -> int:
    """The permissions the written file gets: those of the file it replaces, else what a
    plain ``open(path, "w")`` would give (0o666 less the umask). mkstemp's own 0o600
    would silently make a shared graph private after one save."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    remove_stale_temporaries(path)


STALE_SECONDS = 3600  # a temporary without a live writer's pid is stale after this long


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the hidden temporaries ``.NAME.*.tmp`` beside ``path`` that a save killed
    mid-way left behind: those whose writing process (its id is in the name) is gone, and
    any older than STALE_SECONDS. A save in progress in a live process keeps its file.
    Returns what was removed."""
    removed = []
    # .NAME.<pid>.<random>.tmp (older versions: .NAME.<random>.tmp)
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp")
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        pid = match.group(1) or ""
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        alive = pid.isdigit() and _process_alive(int(pid))
        if alive and age < STALE_SECONDS or not pid.isdigit() and age < 60:
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or an odd number): leave its file
    return True
