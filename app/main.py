"""Entry point of the ``netbuilder`` command.

With a subcommand (validate, summary, compile, train, export) it is the headless CLI and
never imports Qt. With no arguments, or with a file path, it starts the editor.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or _is_graph_path(argv[0]):
        return start_gui(argv)  # without importing the CLI (and torch): a fast first window
    from runtime.cli import main as cli_main

    return cli_main(argv)


def _is_graph_path(arg: str) -> bool:
    """A file to open rather than a subcommand: 'x.json', a path, or an existing file."""
    from pathlib import Path

    if arg.startswith("-"):
        return False
    return arg.lower().endswith(".json") or "/" in arg or "\\" in arg or Path(arg).is_file()


def start_gui(argv: list[str]) -> int:
    try:
        from app.window import run  # noqa: WPS433 (lazy: Qt only for the GUI)
    except ModuleNotFoundError as exc:
        if exc.name in ("app.window", "PySide6"):
            print(f"netbuilder: the editor is not available ({exc.name} is missing); "
                  "use a subcommand, see 'netbuilder --help'", file=sys.stderr)
            return 2
        raise
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
