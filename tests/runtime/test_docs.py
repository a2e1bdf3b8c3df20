"""The documents stay true: the format page's example loads, every schema field is
documented, and docs/catalog.md matches the catalog (rerun scripts/make_catalog_doc.py)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import build_module, dumps, loads, validate
from runtime.serialization import SCHEMA_PATH

ROOT = Path(__file__).resolve().parents[2]
FORMAT_DOC = ROOT / "docs" / "graph-format.md"


def _make_catalog_doc():
    spec = importlib.util.spec_from_file_location("make_catalog_doc",
                                                  ROOT / "scripts" / "make_catalog_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalog_doc_is_up_to_date():
    expected = _make_catalog_doc().render()
    current = (ROOT / "docs" / "catalog.md").read_text(encoding="utf-8")
    assert current == expected, "docs/catalog.md is stale: run python scripts/make_catalog_doc.py"


def test_catalog_doc_lists_every_type_and_parameter():
    from runtime.catalog import CATALOG

    text = _make_catalog_doc().render()
    for spec in CATALOG.values():
        assert f"### {spec.type}: {spec.title}" in text
        for p in spec.params:
            assert f"| `{p.name}` | {p.type} |" in text


def test_format_example_loads_validates_and_compiles():
    block = re.search(r"```json\n(.*?)```", FORMAT_DOC.read_text(encoding="utf-8"), re.S)
    doc = loads(block.group(1), "example")
    assert [d for d in validate(doc) if d.is_error] == []
    assert json.loads(dumps(doc)) == json.loads(block.group(1))  # exactly what save writes
    assert "def forward(self, x, label)" in build_module(doc).code


def test_every_schema_field_is_documented():
    schema = json.loads(SCHEMA_PATH.read_text())
    text = FORMAT_DOC.read_text(encoding="utf-8")
    fields = set(schema["properties"])
    fields |= set(schema["properties"]["nodes"]["items"]["properties"])
    fields |= set(schema["properties"]["edges"]["items"]["properties"])
    for name in fields:
        assert f"| `{name}` |" in text, f"field {name!r} is not in the tables of {FORMAT_DOC.name}"


# ---- the docs are self-contained and their links resolve ---------------------------------

DOC_PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md",
             *sorted((ROOT / "docs").glob("*.md"))]
# Files outside the repository, and the bookkeeping of how the project was made, have no
# place in its docs: a reader has neither.
FORBIDDEN = [
    (r"DESIGN\.md|CONCEPTS\.md|PLATFORM[-_ ]NOTES", "a file outside the repository"),
    (r"\.\./shared|/work/", "a path outside the repository"),
    (r"\bissue\s*#?\d+|\(issue\b|\bthe [\w-]+ issue\b|\bthis issue\b", "an issue"),
    (r"\b(this|that|the [\w-]+(-runtime)?) task\b(?<!copy task)(?<!adding task)", "a task"),
]


def _prose(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_docs_are_self_contained():
    _check_self_contained(DOC_PAGES)


def test_code_comments_and_examples_are_self_contained():
    """Docstrings, comments and the gallery's descriptions follow the same rule."""
    files = [f for d in ("runtime", "graph_editor", "app", "scripts", "benchmarks", "tests")
             for f in sorted((ROOT / d).rglob("*.py")) if f != Path(__file__).resolve()]
    _check_self_contained(files + sorted((ROOT / "resources" / "examples").glob("*.json")))


def _check_self_contained(pages) -> None:
    problems = []
    for page in pages:
        for n, line in enumerate(_prose(page).splitlines(), 1):
            for pattern, what in FORBIDDEN:
                m = re.search(pattern, line, re.I)
                if m:
                    problems.append(f"{page.relative_to(ROOT)}:{n}: {what}: {m.group(0)!r}")
    assert problems == [], "\n".join(problems)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"```.*?```", "", _prose(page), flags=re.S)
    for heading in re.findall(r"^#+\s+(.*?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_doc_links_resolve_inside_the_repository():
    problems = []
    for page in DOC_PAGES:
        text = re.sub(r"```.*?```", "", _prose(page), flags=re.S)
        links = [(page.parent, t) for t in re.findall(r"\]\(([^)\s]+)\)", text)]
        # plain mentions of files, e.g. `docs/export.md`, resources/examples/lenet5.json;
        # skipped: placeholders (resources/examples/FILE.json) and patterns (*.png)
        mentions = [(ROOT, t) for t in re.findall(
            r"(?<![\w/.-])((?:docs|resources|scripts|benchmarks|tests)/[\w./*-]*\w)", text)
            if "*" not in t and not re.search(r"(^|/)[A-Z_]{3,}(\.|/|$)", t)]
        for base, target in links + mentions:
            if re.match(r"[a-z]+:", target):  # http(s), mailto: the public web
                continue
            path, _, anchor = target.partition("#")
            dest = (base / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if ROOT not in dest.parents and dest != ROOT:
                problems.append(f"{where}: outside the repository")
            elif not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                problems.append(f"{where}: no heading with anchor #{anchor}")
    assert problems == [], "\n".join(problems)


# ---- docs as tests: every shell command of the README and the tutorials runs -------------

COMMAND_PAGES = ["README.md", "docs/tutorial.md", "docs/pytorch.md"]
# What a test cannot run as written, and what it runs instead (same program, same file):
EQUIVALENTS = [
    # set-up is checked on its own (tests/test_setup_script.py, slow); here what follows it
    (r"^bash scripts/setup\.sh( && )?", ""),
    # the sandbox has .venv/bin on PATH already (what activating the venv does)
    (r"^source \.venv/bin/activate$", ""),
    # the test suite from inside the test suite: collect it (imports every test module)
    (r"^(\.venv/bin/)?python3? -m pytest -q(.*)$", r"\g<0> --collect-only -p no:cacheprovider"),
    # training runs are cut short (the digits CNN to a third of its run: the tutorial's
    # ONNX check needs a model that works); the command line is otherwise the page's
    (r"^((\.venv/bin/)?netbuilder train \S*digits_cnn\S* (?!.*--max-steps).*)$",
     r"\1 --max-steps 150"),
    (r"^((\.venv/bin/)?netbuilder train (?!.*--max-steps).*)$", r"\1 --max-steps 20"),
    # a sweep: two trials of one epoch
    (r"^((\.venv/bin/)?netbuilder sweep .*?)--trials \d+(.*)$", r"\1--trials 2 --epochs 1\3"),
]
GUI = re.compile(r"^(xvfb-run( -a)? )?(\.venv/bin/)?netbuilder( \S+\.json)?$")


def page_blocks(page: str) -> list[tuple[str, str]]:
    """The page's ```bash commands (one per line, continuations joined) and ```python
    blocks, in the page's order, as ("bash", command) and ("python", code)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    out = []
    for lang, block in re.findall(r"```(bash|python)\n(.*?)```", text, re.S):
        if lang == "python":
            out.append(("python", block))
            continue
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(("bash", line.strip()))
    return out


def page_commands(page: str) -> list[str]:
    return [code for lang, code in page_blocks(page) if lang == "bash"]


def _shim(path: Path, argv: str) -> None:
    path.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
    path.chmod(0o755)


def _sandbox(tmp: Path) -> dict:
    """A folder that looks like a set-up checkout to the commands: resources/ and scripts/
    of this repository, .venv/bin/{netbuilder,python} running this interpreter and this
    worktree's code, and the same on PATH (as after `source .venv/bin/activate`)."""
    bin_dir = tmp / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    _shim(bin_dir / "netbuilder", f"{sys.executable} -m app.main")
    for name in ("python", "python3"):
        _shim(bin_dir / name, sys.executable)
    # a copy of resources/ (small): runs and sweeps beside a graph stay in the sandbox
    shutil.copytree(ROOT / "resources", tmp / "resources")
    (tmp / "scripts").symlink_to(ROOT / "scripts")
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen",
               NETBUILDER_RUNS_DIR=str(tmp / "app-runs"), PYTHONDONTWRITEBYTECODE="1")
    return env


def _equivalent(command: str) -> str:
    command = re.sub(r"\s+#.*$", "", command)  # a trailing comment
    for pattern, replacement in EQUIVALENTS:
        command = re.sub(pattern, replacement, command)
    return command.strip()


def _run_gui(command: str, cwd: Path, env: dict) -> str | None:
    """Start the editor as the page says; it must still be up, without errors, after a few
    seconds (then it is closed)."""
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=12)
        return f"the editor exited ({proc.returncode}): {err[-2000:]}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        if "Traceback" in err:
            return err[-2000:]
    return None


@pytest.mark.slow
@pytest.mark.parametrize("page", COMMAND_PAGES)
def test_page_commands_run(page, tmp_path):
    assert (ROOT / page).exists(), f"{page} is missing: the README links to it"
    env = _sandbox(tmp_path)
    failures = []
    for n, (lang, command) in enumerate(page_blocks(page)):
        if lang == "python":
            r = subprocess.run(["python", "-c", command], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                failures.append(f"python block {n + 1}:\n{r.stderr[-3000:]}")
            continue
        cmd = _equivalent(command)
        if not cmd:
            continue
        if GUI.match(cmd):
            problem = _run_gui(cmd, tmp_path, env)
            if problem:
                failures.append(f"{command}\n  -> {problem}")
            continue
        cwd = tmp_path
        if "pytest" in cmd:  # the suite is in the repository; the venv in the sandbox
            cwd, cmd = ROOT, re.sub(r"^\.venv/", f"{tmp_path}/.venv/", cmd)
        r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=900)
        if r.returncode != 0 or "Traceback" in r.stderr:
            failures.append(f"{command}\n  ran: {cmd}\n  exit {r.returncode}\n"
                            f"{r.stdout[-1500:]}\n{r.stderr[-3000:]}")
    assert failures == [], "\n\n".join(failures)


def test_page_commands_are_known():
    """Every command of the pages is one the docs test runs as written or by a stated
    equivalent (no command silently left out)."""
    for page in COMMAND_PAGES:
        if (ROOT / page).exists():
            for command in page_commands(page):
                assert command.startswith(("bash scripts/setup.sh", ".venv/bin/", "netbuilder",
                                           "python", "xvfb-run", "source .venv/bin/activate",
                                           "ls", "cat ", "head ")), \
                    f"{page}: {command!r}: teach tests/runtime/test_docs.py how to run it"
