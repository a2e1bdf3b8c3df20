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
