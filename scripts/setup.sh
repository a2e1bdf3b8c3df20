#!/usr/bin/env bash
# Sets up Netbuilder on a fresh Debian/Ubuntu machine (or any machine with Python 3.10+):
# Qt's system libraries (when apt is there and we may use it), torch 2.13.0 (CPU) first,
# then the project with its export, data, test, tensorboard and sweep extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

QT_LIBS="libgl1 libegl1 libfontconfig1 libglib2.0-0 libxkbcommon0 libdbus-1-3 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0 libxcb-xfixes0 libx11-xcb1 xvfb"
if command -v apt-get >/dev/null 2>&1; then
  missing=$(dpkg-query -W -f='${Package} ${Status}\n' $QT_LIBS 2>/dev/null | grep -v "install ok installed" | cut -d' ' -f1 || true)
  missing="$missing $(for p in $QT_LIBS; do dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)"
  missing=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
  if [ -n "${missing// /}" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing system libraries for Qt: $missing"
    $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi

# torch first: an unpinned torch would pull a multi-GB CUDA build.
if ! $PY -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  $PY -m pip install -q torch==2.13.0
fi
$PY -m pip install -q -e ".[export,data,test,tensorboard,sweep]"
echo "setup: done. Start the editor with: netbuilder resources/examples/lenet5.json"
