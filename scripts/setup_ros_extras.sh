#!/usr/bin/env bash
# Make ./.venv-ros: ./.venv (from ./scripts/setup.sh) plus the ROS 2 packages that PyPI lacks
# (launch_ros, ros2cli, message_filters, vision_msgs, ...), installed by ros-extras' install.sh,
# as a ROS 2 install has them. .venv stays pip-only, so both worlds can be tested.
#
#   ./scripts/setup_ros_extras.sh [ROS_EXTRAS_DIR]     # default ../shared/ros-extras
#
# .venv-ros is a hard-linked copy of .venv (~2 s), remade whenever setup.sh changed .venv
# (its step stamps differ). Everything installed into it afterwards is new files, and the
# files naming .venv's path (script shebangs, the ament parent prefix) are rewritten, which
# replaces them rather than writing through the links. install.sh skips its steps while its
# sources are unchanged (~1 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-$ROOT/../shared/ros-extras}"
cd "$ROOT"
log() { printf '[ros-extras venv] %s\n' "$*"; }

[[ -x "$EXTRAS/install.sh" ]] || { log "error: no $EXTRAS/install.sh"; exit 1; }
[[ -x .venv/bin/python ]] || { log "error: no .venv; run ./scripts/setup.sh first"; exit 1; }
base_stamp="$(cat .venv/.ivif-*.sha256 | sha256sum | cut -d' ' -f1)"
if [[ "$(cat .venv-ros/.ivif-base.sha256 2>/dev/null)" != "$base_stamp" ]]; then
  log "making .venv-ros from .venv"
  # install.sh's CMake build trees survive (same paths, so its rebuild is incremental);
  # its stamps do not, so that it installs everything into the new copy.
  rm -rf .venv-ros.build && { mv .venv-ros/.ros_extras/build .venv-ros.build 2>/dev/null || true; }
  rm -rf .venv-ros
  cp -al .venv .venv-ros
  if [[ -d .venv-ros.build ]]; then mkdir -p .venv-ros/.ros_extras && mv .venv-ros.build .venv-ros/.ros_extras/build; fi
  grep -rlIZ --exclude-dir=__pycache__ "$ROOT/.venv" .venv-ros \
    | xargs -0 -r perl -pi -e 's#\Q'"$ROOT"'/.venv\E(?![\w-])#'"$ROOT"'/.venv-ros#g'
  printf '%s\n' "$base_stamp" > .venv-ros/.ivif-base.sha256
fi
"$EXTRAS/install.sh" .venv-ros
