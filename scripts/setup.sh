#!/usr/bin/env bash
# One command, no ROS install needed: make ./.venv with real ROS 2 (rclpy from the ROS
# pip wheels), CPU PyTorch and the pinned dependencies, then build the messages and
# install ivif_ros (pip install . -> setup.py -> CMakeLists.txt).
#
#   ./scripts/setup.sh            # first run ~2 min (downloads), then ~1 s when nothing changed
#   PYTHON=python3.11 ./scripts/setup.sh
#
# Each step is skipped when its inputs are unchanged: the dependency step is keyed by a
# hash of requirements*.txt and constraints.txt, the project step by a hash of the build
# files, msg/ and the sources (they are copied into the venv). Delete .venv to start over.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
PIP_VERSION="26.3"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# sha256 over the named files and every file below the named directories (paths included,
# so renames count), ignoring bytecode.
inputs_hash() {
  local existing=() path
  for path in "$@"; do [[ -e "$path" ]] && existing+=("$path"); done
  find "${existing[@]}" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

step_needed() {  # step_needed NAME HASH: true unless the stamp of NAME holds HASH
  [[ "$(cat "$VENV/.ivif-$1.sha256" 2>/dev/null)" != "$2" ]]
}

stamp() { printf '%s\n' "$2" > "$VENV/.ivif-$1.sha256"; }

# --- 1. the virtual environment ------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 (Debian 12: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); the pinned ROS 2 wheels are built for Python 3.11. Set PYTHON=/path/to/python3.11"
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV" || die "python -m venv failed; on Debian install python3-venv"
fi
PIP=("$VENV/bin/python" -m pip --no-input --disable-pip-version-check)

# --- 2. pinned dependencies (ROS wheels, torch CPU, build tools) -------------------------
deps_hash="$(inputs_hash requirements.txt requirements-build.txt constraints.txt)"
if step_needed deps "$deps_hash"; then
  log "installing pinned dependencies into .venv (first time: 1-2 min)"
  "${PIP[@]}" install --quiet "pip==$PIP_VERSION"
  "${PIP[@]}" install --quiet -r requirements-build.txt -r requirements.txt -c constraints.txt
  stamp deps "$deps_hash"
  rm -f "$VENV/.ivif-project.sha256"  # new build tools: rebuild the project too
else
  log "dependencies up to date"
fi

# --- 3. messages + ivif_ros + the `ivif` command -----------------------------------------
project_hash="$(inputs_hash pyproject.toml setup.py CMakeLists.txt package.xml msg resource ivif_ros launch config)"
if step_needed project "$project_hash"; then
  # rosidl compiles C typesupport libraries and a Python extension: say what is missing
  # before CMake fails on it.
  command -v cc >/dev/null && command -v c++ >/dev/null \
    || die "no C/C++ compiler found; on Debian: apt-get install build-essential"
  "$VENV/bin/python" -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || die "Python.h not found for $("$VENV/bin/python" -V); on Debian: apt-get install python3-dev"
  log "building messages and installing ivif_ros (pip install . -> setup.py -> CMakeLists.txt)"
  # No build isolation: the build tools are the pinned ones from step 2, and build/pip
  # stays warm between runs. setuptools' build/lib* copy is not: it keeps files the checkout
  # has since deleted, and the wheel would ship them.
  rm -rf build/lib*
  "${PIP[@]}" install --quiet --no-deps --no-build-isolation --force-reinstall .
  stamp project "$project_hash"
else
  log "ivif_ros up to date"
fi

# Checked from / so that the installed package, not the checkout, is imported.
(cd / && "$VENV/bin/python" -c 'import rclpy, ivif_ros.msg, ivif_ros.cli') \
  || die "the installed ivif_ros does not import; delete .venv and build/ and run again"
log "ready: $VENV/bin/ivif --help, or: . .venv/bin/activate"
