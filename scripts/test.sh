#!/usr/bin/env bash
# The test suite in the two worlds ivif_ros runs in (this is the CI command, .ci/run):
#
#   1. pip-only: ./scripts/setup.sh's .venv, ROS 2 from its PyPI wheels only (no launch_ros,
#      ros2cli, message_filters or vision_msgs): the whole suite.
#   2. ROS extras, when ../shared/ros-extras exists (or ROS_EXTRAS=/path/to/ros-extras):
#      .venv-ros, .venv plus those packages as a ROS 2 install has them
#      (./scripts/setup_ros_extras.sh). Only the tests marked `ros_extras` run again:
#      those whose code path or outcome depends on the extras (launch files, `ros2 run`,
#      message_filters pairing, vision_msgs output, the node graph that pairs with it).
#
# Before them, ./scripts/lint.sh (ruff check + ruff format --check). The experiments' own tests
# (experiments/, not installed) run in the pip-only pass. The shared development data
# (../shared/data, or IVIF_DATA) is used where present; tests that need it skip without it.
#
# The second pass is verbose, so the log names each test that ran there.
#
# Both passes always run and print pytest's summary (failures, errors and skips with their
# reasons) and closing line; the exit code is non-zero when either failed. Extra arguments go
# to both pytest runs (e.g. -x, -k name).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXTRAS="${ROS_EXTRAS:-$ROOT/../shared/ros-extras}"
log() { printf '[test] %s\n' "$*"; }

./scripts/setup.sh || exit $?

if [[ -z "${IVIF_DATA:-}" && -d "$ROOT/../shared/data" ]]; then
  export IVIF_DATA="$ROOT/../shared/data"
fi

./scripts/lint.sh
lint=$?
log "lint: exit $lint"

log "world 1 of 2: pip-only (.venv)"
start=$SECONDS
.venv/bin/python -m pytest -q -rfEs test experiments "$@"
pip_only=$?
log "pip-only: exit $pip_only in $((SECONDS - start)) s"

if [[ ! -x "$EXTRAS/install.sh" ]]; then
  log "world 2 of 2 not run: no $EXTRAS/install.sh (set ROS_EXTRAS to the ros-extras folder)"
  (( lint == 0 && pip_only == 0 ))
  exit
fi

start=$SECONDS
if ! ./scripts/setup_ros_extras.sh "$EXTRAS"; then
  log "making .venv-ros (.venv + the ROS extras) failed"
  exit 1
fi
log "world 2 of 2: with the ROS extras (.venv-ros), tests marked ros_extras (setup $((SECONDS - start)) s)"
start=$SECONDS
# A clean environment for the copy: no library path or bootstrap flag inherited from .venv.
env -u LD_LIBRARY_PATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u AMENT_PREFIX_PATH \
  .venv-ros/bin/python -m pytest -v -rfEs -m ros_extras test "$@"
extras=$?
log "ros-extras: exit $extras in $((SECONDS - start)) s"
log "summary: lint exit $lint, pip-only exit $pip_only, ros-extras exit $extras"
(( lint == 0 && pip_only == 0 && extras == 0 ))
