"""`netbuilder` without a display says so plainly and exits non-zero, instead of Qt's abort
(exit 134) with a misleading hint about xcb plugins; subcommands keep working headless."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.main import display_problem

ROOT = Path(__file__).resolve().parents[2]
LENET = str(ROOT / "resources" / "examples" / "lenet5.json")


def _headless_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(extra)
    return env


def _netbuilder(args, env):
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def _free_display_number():
    for n in range(900, 999):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(f"\0/tmp/.X11-unix/X{n}")
            except OSError:
                return n
            finally:
                s.close()
    pytest.skip("no free X display number")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland only on Linux")
@pytest.mark.parametrize("display", [None, "dead"])
def test_editor_without_display_explains_and_exits_nonzero(display):
    extra = {} if display is None else {"DISPLAY": f":{_free_display_number()}"}
    r = _netbuilder([LENET], _headless_env(**extra))
    assert r.returncode not in (0, 134, -6), r
    err = r.stderr
    assert "no display" in err and "xvfb-run" in err and "desktop" in err, err
    assert "headless" in err and "netbuilder --help" in err, err
    assert "Traceback" not in err and "xcb" not in err.replace("xvfb", ""), err
    if display == "dead":
        assert "no X server answers" in err, err


@pytest.mark.slow  # imports torch in a child process
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland only on Linux")
def test_subcommands_work_without_display():
    r = _netbuilder(["validate", LENET], _headless_env())
    assert r.returncode == 0, r.stderr
    r = _netbuilder(["--help"], _headless_env())
    assert r.returncode == 0 and "summary" in r.stdout, r


def test_display_problem_rules():
    assert display_problem({}, "linux") is not None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None
    # an unreachable remote display (TCP port 6000+N refused) is no display either
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    srv.close()
    if port > 6000:
        assert "no X server" in display_problem({"DISPLAY": f"127.0.0.1:{port - 6000}"}, "linux")
