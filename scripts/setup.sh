#!/usr/bin/env bash
# Sets up Netbuilder in a virtual environment .venv inside the repository, so it works
# where the system Python refuses `pip install` (Debian 12, Ubuntu 24.04: PEP 668
# "externally-managed-environment"). Steps:
#   1. Qt's system libraries (apt, when apt is there), and python3-venv when the venv
#      module is missing (Debian ships it separately);
#   2. .venv: created with `python3 -m venv`, or reused when it is already there;
#   3. torch 2.13.0 first (pip's configuration decides where the CPU wheel comes from);
#   4. Netbuilder itself (editable) with every extra pyproject.toml defines.
# Nothing is installed into the system interpreter. Safe to run again: a second run checks
# what is there and returns in a few seconds.
# Environment: PYTHON=/path/to/python3 picks the interpreter the venv is made from;
# NETBUILDER_SKIP_APT=1 skips step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
TORCH_VERSION=2.13.0
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "'$PY' not found: install Python 3.10 or newer (or set PYTHON=/path/to/python3)"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$("$PY" -V 2>&1) is too old: Netbuilder needs Python 3.10 or newer (set PYTHON=/path/to/python3)"
say "using $("$PY" -V 2>&1) at $(command -v "$PY")"

# --- 1. system packages (apt) -------------------------------------------------------
QT_LIBS="libgl1 libegl1 libfontconfig1 libglib2.0-0 libxkbcommon0 libdbus-1-3 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0 libxcb-xfixes0 libx11-xcb1 xvfb"
need_venv_pkg=""
if [ ! -x "$VPY" ] && ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  # Debian/Ubuntu split the venv module's pip bootstrap into python3-venv / python3.X-venv.
  need_venv_pkg="python3-venv python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
fi
if [ -z "${NETBUILDER_SKIP_APT:-}" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  say "checking system libraries for Qt (apt)"
  missing=""
  for p in $QT_LIBS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$need_venv_pkg" ]; then
    say "the venv module of $PY is missing: installing python3-venv with apt"
    for p in $need_venv_pkg; do
      apt-cache show "$p" >/dev/null 2>&1 && missing="$missing $p"
    done
  fi
  if [ -n "${missing// /}" ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    fi
    say "installing with apt:$missing"
    if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; }; then
      echo "setup: warning: apt could not install$missing; the editor may not start until they are installed" >&2
    fi
  else
    say "system libraries already installed"
  fi
fi

# --- 2. the virtual environment -----------------------------------------------------
if [ -x "$VPY" ] && "$VPY" -c 'import sys' >/dev/null 2>&1; then
  say "reusing the virtual environment .venv ($("$VPY" -V 2>&1))"
else
  if [ -e "$VENV" ]; then
    say "the virtual environment .venv is broken (its Python does not run): making it again"
    rm -rf "$VENV"
  fi
  "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 \
    || die "$PY has no working venv module: install python3-venv (Debian/Ubuntu: sudo apt-get install python3-venv) and run this again"
  say "creating the virtual environment .venv ($PY -m venv .venv)"
  "$PY" -m venv "$VENV" || die "python -m venv failed (on Debian/Ubuntu: sudo apt-get install python3-venv)"
fi

# pip's own progress is long; show one line per package being fetched and the summary.
pip_install() {
  "$VPY" -m pip install --progress-bar off "$@" | while IFS= read -r line; do
    case "$line" in Collecting*|Successfully\ installed*) echo "  $line" ;; esac
  done
}

# --- 3. torch first -------------------------------------------------------------------
# An unpinned torch would pull a multi-GB CUDA build as a dependency of the project.
have_torch=$("$VPY" -c 'import importlib.metadata as m
try: print(m.version("torch"))
except Exception: print("")')
if [[ "$have_torch" == "$TORCH_VERSION"* ]]; then
  say "torch $have_torch already installed"
else
  say "installing torch $TORCH_VERSION into .venv (a large download: a minute or more)"
  pip_install "torch==$TORCH_VERSION"
fi

# --- 4. Netbuilder with its extras ------------------------------------------------------
extras=$("$VPY" - <<'EOF'
import re
text = open("pyproject.toml", encoding="utf-8").read()
try:
    import tomllib
    names = list(tomllib.loads(text)["project"].get("optional-dependencies", {}))
except ModuleNotFoundError:  # Python 3.10: read the section by hand
    m = re.search(r"^\[project\.optional-dependencies\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    names = re.findall(r"^([A-Za-z0-9_.-]+)\s*=", m.group(1), re.M) if m else []
print(",".join(names))
EOF
)
stamp="$VENV/.netbuilder-setup"
want="$( (cat pyproject.toml; echo "$ROOT"; echo "$extras") | "$VPY" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/netbuilder" ] \
   && "$VPY" -c 'import importlib.metadata as m; m.version("netbuilder")' >/dev/null 2>&1; then
  say "Netbuilder and its extras ($extras) already installed"
else
  say "installing Netbuilder (editable) with its extras ($extras) into .venv"
  pip_install -e ".[${extras}]"
  echo "$want" > "$stamp"
fi

say "done. Start the editor:  .venv/bin/netbuilder resources/examples/lenet5.json"
say "      run the tests:     .venv/bin/python -m pytest -q"
