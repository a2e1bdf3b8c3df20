"""The architecture contracts in pyproject.toml ([tool.importlinter]) hold: app is built
on graph_editor, graph_editor on runtime; runtime never imports Qt, plotting or GUI code;
runtime's own modules keep their layers (imports inside functions count)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports() -> list[str] | None:
    exe = shutil.which("lint-imports")
    if exe is not None:
        return [exe]
    try:
        import importlinter  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
            " sys.exit(lint_imports_command())"]


def test_import_contracts_are_kept():
    cmd = lint_imports()
    if cmd is None:
        pytest.fail("import-linter is not installed: it is in the test extra "
                    "(scripts/setup.sh installs it); the layer contracts must be checked")
    r = subprocess.run(cmd + ["--no-cache"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout
