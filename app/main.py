"""Entry point of the ``netbuilder`` command.

With a subcommand (validate, summary, compile, train, export) it is the headless CLI and
never imports Qt. With no arguments, or with a file path, it starts the editor.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from runtime.cli import SUBCOMMANDS, build_parser, main as cli_main

    build_parser()  # registers plugin subcommands
    if argv and (argv[0] in SUBCOMMANDS or argv[0] in ("-h", "--help")):
        return cli_main(argv)
    return start_gui(argv)


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
