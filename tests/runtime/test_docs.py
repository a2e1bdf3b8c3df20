"""The documents stay true: the format page's example loads, every schema field is
documented, and docs/catalog.md matches the catalog (rerun scripts/make_catalog_doc.py)."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

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
    problems = []
    for page in DOC_PAGES:
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
