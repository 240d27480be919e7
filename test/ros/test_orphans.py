"""Nodes die with the process that started them: ``kill -9`` of ``ivif launch`` leaves no
fusion or overlay node running (they would keep publishing, and a restart would run two)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fusion_graph_harness import engine_cache, student_weights  # noqa: F401  (fixtures)
from reliability_graph import fusion_graph  # noqa: F401  (fixture)
from ros_harness import REPO_ROOT, ivif_launch_command
from process_table import graph_processes, processes_with


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.usefixtures("engine_cache")
@pytest.mark.parametrize("mode", ["multi_process", "single_process"])
def test_kill_9_of_ivif_launch_leaves_no_node_after_5_s(mode, ros_env, student_weights, tmp_path):
    ns = f"/orphans_{mode}_{os.getpid()}"
    cmd = ivif_launch_command(ns, mode, student_weights)
    log = tmp_path / "launch.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=ros_env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    expected = 2 if mode == "multi_process" else 1
    try:
        assert _wait_for(lambda: len(graph_processes(ns)) >= expected, 30), log.read_text()
        time.sleep(3.0)  # let the nodes get past start-up (imports, model, rclpy's signal handlers)
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(5.0)
        left = graph_processes(ns)
        assert left == [], (
            f"{len(left)} node process(es) outlived ivif launch by 5 s:\n"
            + subprocess.run(
                ["ps", "-o", "pid,ppid,stat,etime,cmd", "-p", ",".join(map(str, left))], capture_output=True, text=True
            ).stdout
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in graph_processes(ns):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_of_live_replay_leaves_no_graph_after_5_s(ros_env, tmp_path):
    from replay_support import make_config, make_sample

    bag = make_sample(tmp_path / "sample", frames=150)
    out = tmp_path / "live_out"
    cmd = [
        sys.executable,
        "-m",
        "ivif_ros.cli",
        "replay",
        str(bag),
        "--live",
        "--out",
        str(out),
        "--config",
        str(make_config(tmp_path / "cfg")),
    ]
    log = tmp_path / "replay.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, env=ros_env, cwd=REPO_ROOT, stdout=f, stderr=subprocess.STDOUT)
    marker = str(out / "graph_params.yaml")
    try:
        # ivif launch and the fusion node both name the replay's params file
        assert _wait_for(lambda: len(processes_with(marker)) >= 2, 60), log.read_text()[-3000:]
        time.sleep(3.0)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(5.0)
        left = processes_with(marker)
        assert left == [], f"{len(left)} graph process(es) outlived ivif replay --live by 5 s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.usefixtures("engine_cache")
def test_a_second_node_on_the_same_name_is_detected(fusion_graph, rclpy_context, student_weights):
    """A second graph under the same names (e.g. an orphan) is found on the ROS graph and reported."""
    from rclpy.parameter import Parameter

    from fusion_graph_harness import graph_params
    from ivif_ros.nodes.fusion_node import FusionNode

    fusion, _probe, _probe_node, _thread = fusion_graph()
    assert fusion.duplicates.check() == 1
    second = FusionNode(
        context=rclpy_context,
        parameter_overrides=[Parameter(k, value=v) for k, v in graph_params(student_weights).items()],
    )
    try:
        assert _wait_for(lambda: fusion.duplicates.check() == 2, 10), "the second /ivif_fusion was not noticed"
        assert fusion.duplicates._reported
    finally:
        second.destroy_node()
    assert _wait_for(lambda: fusion.duplicates.check() == 1, 10)
