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


def display_problem(env=None, platform: str | None = None) -> str | None:
    """Why the editor cannot open a window here, or None when it can (as far as we can tell
    without starting Qt). On Linux and the BSDs Qt needs an X11 or Wayland display; without
    one it aborts with a hint about xcb plugins that misleads. QT_QPA_PLATFORM set by the
    user (offscreen, vnc, ...) is taken as knowing better."""
    import os

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    if env.get("QT_QPA_PLATFORM") or env.get("WAYLAND_DISPLAY"):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    if not _x_server_answers(display):
        return f"no display (DISPLAY={display} is set, but no X server answers there)"
    return None


def _x_server_answers(display: str) -> bool:
    """Whether an X server accepts connections at DISPLAY: a local display (':N',
    'unix:N') on its Unix socket, a remote one ('host:N', e.g. ssh forwarding) on TCP port
    6000+N. A form this does not know is assumed to answer."""
    import re
    import socket

    m = re.fullmatch(r"([^:/]*)(?:/unix)?:(\d+)(?:\.\d+)?", display)
    if not m:
        return True
    host, number = m.group(1), int(m.group(2))
    if host and host != "unix":
        try:
            socket.create_connection((host, 6000 + number), timeout=2.0).close()
            return True
        except OSError:
            return False
    path = f"/tmp/.X11-unix/X{number}"
    for address in ("\0" + path, path):  # Linux abstract socket first, then the file
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(1.0)
            s.connect(address)
            return True
        except OSError:
            continue
        finally:
            s.close()
    return False


def no_display_message(reason: str) -> str:
    return (f"netbuilder: {reason}: the editor needs a graphical desktop.\n"
            "  Run it on a desktop, or under a virtual X server:\n"
            "      xvfb-run -a netbuilder resources/examples/lenet5.json\n"
            "  Every subcommand works headless (validate, summary, compile, train, export,\n"
            "  import, ...): see 'netbuilder --help'.")


def start_gui(argv: list[str]) -> int:
    reason = display_problem()
    if reason:
        print(no_display_message(reason), file=sys.stderr)
        return 2
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
