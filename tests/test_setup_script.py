"""scripts/setup.sh works where the system Python refuses `pip install` (PEP 668, as on
Debian 12 / Ubuntu 24.04): it makes a virtual environment .venv and installs into it only.

The check builds a real "system" interpreter whose standard library holds an
EXTERNALLY-MANAGED marker (the binary copied into a fresh prefix whose lib/pythonX.Y links
to this interpreter's standard library) and runs the unchanged script with it first on
PATH. To stay cheap and offline it runs in a copy of the script beside a minimal project
(same layout, an in-tree build backend) with a stand-in torch 2.13.0 wheel that pip's
configuration (PIP_FIND_LINKS, as the README's machine configuration does) provides. The
real installation is checked by running the README's commands in a fresh clone (see
docs/tutorial.md, "Install").
"""
from __future__ import annotations

import base64
import hashlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup.sh"
VERSION = f"python{sys.version_info[0]}.{sys.version_info[1]}"

pytestmark = pytest.mark.skipif(os.name != "posix" or shutil.which("bash") is None,
                                reason="setup.sh is a bash script for Linux/macOS")


def test_setup_installs_only_into_the_venv():
    """Every pip call of setup.sh goes through the venv's Python, never the system's."""
    text = SETUP.read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    pip_calls = re.findall(r"^.*\bpip\b.*$", code, re.M)
    assert pip_calls, "setup.sh installs nothing?"
    for line in pip_calls:
        if "pip_install" in line and "-m pip" not in line:
            continue  # a call of the helper below
        assert '"$VPY" -m pip' in line or "PIP_" in line, f"pip outside the venv: {line}"
    assert '-m venv "$VENV"' in code


# ---- a real externally managed interpreter ----------------------------------------------

def _managed_python(prefix: Path, without=()) -> Path:
    """A copy of this interpreter living in PREFIX, whose standard library directory holds
    an EXTERNALLY-MANAGED marker and whose site-packages is empty (no pip); WITHOUT names
    standard modules left out (Debian ships ensurepip in python3-venv)."""
    base = Path(sys.base_prefix)
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(base), "base": str(base)})
                  ["stdlib"])
    lib = prefix / "lib" / VERSION
    lib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in ("site-packages", "dist-packages", "EXTERNALLY-MANAGED", *without):
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    (lib / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=This Python is managed by the system (test).\n")
    (prefix / "bin").mkdir()
    exe = prefix / "bin" / "python3"
    shutil.copy2(os.path.realpath(sys._base_executable), exe)
    probe = subprocess.run([exe, "-c", "import sys, sysconfig, venv;"
                            "print(sys.prefix); print(sysconfig.get_path('stdlib'))"],
                           capture_output=True, text=True, env=_clean_env(prefix))
    if probe.returncode != 0 or probe.stdout.split() != [str(prefix), str(lib)]:
        pytest.skip(f"cannot relocate this interpreter: {probe.stdout} {probe.stderr}")
    return exe


def _clean_env(prefix: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "CONDA"))}
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    env.update(extra)
    return env


# ---- a minimal project with the same layout, and a stand-in torch wheel -----------------

BACKEND = '''"""In-tree PEP 660 backend: an editable wheel holding a .pth file and the entry point."""
from __future__ import annotations
import base64, hashlib, os, zipfile

NAME, VERSION = "netbuilder", "0.1.0"


def get_requires_for_build_editable(config_settings=None):
    return []


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    files = {
        "netbuilder_src.pth": os.path.abspath("src") + "\\n",
        f"{NAME}-{VERSION}.dist-info/METADATA":
            f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
            "Provides-Extra: export\\nProvides-Extra: test\\n",
        f"{NAME}-{VERSION}.dist-info/WHEEL":
            "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        f"{NAME}-{VERSION}.dist-info/entry_points.txt":
            "[console_scripts]\\nnetbuilder = nbmain:main\\n",
    }
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    _wheel(os.path.join(wheel_directory, name), files, f"{NAME}-{VERSION}.dist-info")
    return name


'''

PYPROJECT = """[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "netbuilder"
version = "0.1.0"

[project.optional-dependencies]
export = []
test = []
"""


def _wheel(path: Path, files: dict[str, str], dist_info: str) -> None:
    rows = []
    with zipfile.ZipFile(path, "w") as z:
        for arc, text in files.items():
            data = text.encode()
            z.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append(f"{arc},sha256={digest.decode()},{len(data)}")
        rows.append(f"{dist_info}/RECORD,,")
        z.writestr(f"{dist_info}/RECORD", "\n".join(rows) + "\n")


def _project(tmp: Path) -> tuple[Path, Path]:
    proj = tmp / "project"
    (proj / "scripts").mkdir(parents=True)
    shutil.copy2(SETUP, proj / "scripts" / "setup.sh")
    (proj / "pyproject.toml").write_text(PYPROJECT)
    (proj / "backend.py").write_text(BACKEND + "\n\n" + inspect.getsource(_wheel))
    (proj / "src").mkdir()
    (proj / "src" / "nbmain.py").write_text(
        "import sys, torch\n"
        "def main():\n"
        "    print('netbuilder from', sys.prefix, 'torch', torch.__version__)\n")
    wheels = tmp / "wheels"
    wheels.mkdir()
    _wheel(wheels / "torch-2.13.0-py3-none-any.whl",
           {"torch/__init__.py": "__version__ = '2.13.0'\n",
            "torch-2.13.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: torch\n"
                                               "Version: 2.13.0\n",
            "torch-2.13.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
                                            "Root-Is-Purelib: true\nTag: py3-none-any\n"},
           "torch-2.13.0.dist-info")
    return proj, wheels


@pytest.mark.slow
def test_setup_works_where_the_system_python_is_externally_managed(tmp_path):
    prefix = tmp_path / "system"
    python = _managed_python(prefix)
    # the marker is in force: this interpreter refuses to have pip installed into it
    refused = subprocess.run([python, "-m", "ensurepip"], capture_output=True, text=True,
                             env=_clean_env(prefix))
    assert refused.returncode != 0
    assert "externally-managed-environment" in refused.stdout + refused.stderr

    proj, wheels = _project(tmp_path)
    env = _clean_env(prefix, PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1",
                     PIP_FIND_LINKS=str(wheels), NETBUILDER_SKIP_APT="1")
    first = subprocess.run(["bash", "scripts/setup.sh"], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=600)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    assert f"at {python}" in out  # the externally managed python3 on PATH was the one used
    for step in ("creating the virtual environment .venv", "installing torch 2.13.0",
                 "installing Netbuilder (editable) with its extras (export,test)", "done."):
        assert step in out, out

    venv_python = proj / ".venv" / "bin" / "python"
    prefixes = subprocess.run([venv_python, "-c", "import sys, torch; print(sys.prefix);"
                               "print(sys.base_prefix); print(torch.__version__)"],
                              capture_output=True, text=True, env=env).stdout.split()
    assert prefixes == [str(proj / ".venv"), str(prefix), "2.13.0"]
    ran = subprocess.run([proj / ".venv" / "bin" / "netbuilder"], capture_output=True,
                         text=True, env=env)
    assert ran.returncode == 0 and f"netbuilder from {proj / '.venv'}" in ran.stdout, ran
    assert list((prefix / "lib" / VERSION / "site-packages").iterdir()) == []  # untouched

    again = subprocess.run(["bash", "scripts/setup.sh"], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=600)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "reusing the virtual environment .venv" in out
    assert "torch 2.13.0 already installed" in out
    assert "Netbuilder and its extras (export,test) already installed" in out
    assert "installing" not in out.replace("already installed", ""), out


def test_setup_without_the_venv_module_says_what_to_install(tmp_path):
    """Debian without python3-venv: `python3 -m venv` cannot bootstrap pip. With apt
    skipped, setup stops at once and names the package."""
    prefix = tmp_path / "system"
    _managed_python(prefix, without=("ensurepip",))
    proj, _wheels = _project(tmp_path)
    r = subprocess.run(["bash", "scripts/setup.sh"], cwd=proj, timeout=120,
                       env=_clean_env(prefix, NETBUILDER_SKIP_APT="1"),
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "python3-venv" in r.stderr and "apt-get install" in r.stderr, r.stderr
    assert not (proj / ".venv").exists()
