"""Helpers for tests that talk real DDS between processes (no mocks of ROS).

Every test run gets its own ROS domain and log directory, and DDS uses shared memory
only, so concurrent test runs on one machine do not see each other and no network
socket is opened. The fixtures in ``test/conftest.py`` wrap these helpers; node tests
use them as::

    def test_my_node(ros_env, rclpy_context):
        with ros_process(["-m", "ivif_ros.nodes.fusion", "--ros-args", ...], ros_env):
            node = rclpy.create_node("probe", context=rclpy_context)
            ...
            wait_for(lambda: received, executor, timeout_s=20, what="fused image")
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
#: This folder: the shared test helpers, and the scripts tests run as separate processes.
SUPPORT_DIR = Path(__file__).resolve().parent

# Fast DDS over shared memory only: no sockets (nothing leaves the machine, nothing to
# firewall in CI) and no packet loss for 640x512 rgb8 images at 30 Hz (measured, see
# README). Sizes are per message and per port queue.
SHM_ONLY_TRANSPORT = "SHM?max_msg_size=2MB&sockets_size=32MB"


def make_ros_env(log_dir: Path, domain_id: int | None = None) -> dict[str, str]:
    """Environment for ROS processes of one test run, based on ``os.environ``.

    - ROS_DOMAIN_ID: random in 1..200 unless given, so parallel runs stay apart.
    - AMENT_PREFIX_PATH starts with this interpreter's prefix (the venv), where the ROS
      wheels and ``pip install .`` put their ament index; ament_index_python needs it.
    - PYTHONPATH starts with the checkout, so child processes run the code under test.
    """
    env = dict(os.environ)
    ament = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    python_path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        ROS_DOMAIN_ID=str(domain_id if domain_id is not None else random.randint(1, 200)),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        FASTDDS_BUILTIN_TRANSPORTS=SHM_ONLY_TRANSPORT,
        ROS_LOG_DIR=str(log_dir),
        ROS_HOME=str(log_dir),
        AMENT_PREFIX_PATH=os.pathsep.join(dict.fromkeys([sys.prefix, *ament])),
        PYTHONPATH=os.pathsep.join(dict.fromkeys([str(REPO_ROOT), *python_path])),
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
    )
    return env


@contextlib.contextmanager
def ros_process(
    args: list[str], env: dict[str, str], log_path: Path | None = None, stop_timeout_s: float = 10.0
) -> Iterator[subprocess.Popen]:
    """Run ``python <args>`` for the duration of the ``with`` block, then stop it.

    Stops with SIGINT first (rclpy shuts down cleanly), then SIGKILL. Output goes to
    ``log_path`` (default: ``<ROS_LOG_DIR>/process-<pid>.log``); :func:`process_output`
    reads it back for assertion messages.
    """
    log_path = log_path or Path(env["ROS_LOG_DIR"]) / f"process-{time.monotonic_ns()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def process_output(proc: subprocess.Popen) -> str:
    """Everything the process printed so far (stdout and stderr)."""
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def wait_for(
    condition: Callable[[], bool], executor, timeout_s: float, what: str, proc: subprocess.Popen | None = None
) -> None:
    """Spin ``executor`` until ``condition()`` holds; fail naming ``what`` on timeout.

    If ``proc`` is given and exits early, fail at once with its output.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"process exited with code {proc.returncode} while waiting for "
                f"{what}; its output:\n{process_output(proc)}"
            )
        if time.monotonic() > deadline:
            detail = f"; process output:\n{process_output(proc)}" if proc is not None else ""
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")
        executor.spin_once(timeout_sec=0.05)


def ivif_launch_command(ns: str, mode: str, weights: Path, *extra: str) -> list[str]:
    """``ivif launch`` of the shipped graph config in namespace ``ns`` and ``mode`` with ``weights``
    on the torch backend, one thread and 320x240 engines (small and quick for a test), plus ``extra``."""
    return [
        sys.executable, "-m", "ivif_ros.cli", "launch",
        "--config", str(REPO_ROOT / "config" / "fusion.yaml"),
        "--ns", ns, "--mode", mode, "--model", str(weights), "--backend", "torch",
        "--param", "engine.width=320", "--param", "engine.height=240", "--param", "engine.threads=1",
        *extra,
    ]  # fmt: skip
