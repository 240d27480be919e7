"""The package through ROS 2's own tools: ``ros2 launch``, ``ros2 run``, vision_msgs output.

launch_ros, ros2cli and vision_msgs are not on PyPI: in the pip-only world these tests are
skipped with that reason. CI's second pass (scripts/test.sh) installs them from
../shared/ros-extras, as a ROS 2 install has them, and runs them there. The graph runs
the installed executables (lib/ivif_ros/*, made by ``pip install .``), whose Python code is
the checkout's (PYTHONPATH of ``ros_env``); the launch file is the installed copy, checked
to be the checkout's.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from fusion_graph_harness import (  # noqa: F401  (fixtures)
    HEIGHT,
    WIDTH,
    CameraRig,
    Probe,
    SpunNodes,
    engine_cache,
    output_topics,
    settle,
    student_weights,
)
from process_table import command_line
from ros_harness import REPO_ROOT

pytestmark = [pytest.mark.ros_extras, pytest.mark.usefixtures("engine_cache")]

ROS2 = shutil.which("ros2", path=str(Path(sys.executable).parent))
needs_ros2 = pytest.mark.skipif(
    ROS2 is None,
    reason="the ros2 command (ros2cli, launch_ros: not on PyPI) is not "
    "installed; a ROS 2 install has it, CI's second pass installs "
    "it from ../shared/ros-extras",
)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


needs_vision_msgs = pytest.mark.skipif(
    not _has("vision_msgs.msg"), reason="vision_msgs is not installed (not on PyPI; CI's second pass installs it)"
)
OFFSET_NS = -(10**15)  # simulated time runs ~11.6 days behind the wall clock


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def _test_config(tmp_path: Path) -> Path:
    """config/fusion.yaml at the test image size, one engine thread, a low score threshold (random
    weights still give boxes, so detections are compared on real content)."""
    data = yaml.safe_load((REPO_ROOT / "config" / "fusion.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    params["engine"].update(width=WIDTH, height=HEIGHT, threads=1)
    params["pipeline"]["score_threshold"] = 0.05
    path = tmp_path / "fusion_test.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class _Graph:
    """A probe node with its own executor thread, the camera rig and a /clock publisher."""

    def __init__(self, context, prefix: str, vis_topic: str):
        import rclpy

        self.node = rclpy.create_node("probe", context=context)
        topics = output_topics(prefix)
        if _has("vision_msgs.msg"):
            from vision_msgs.msg import Detection2DArray

            topics[f"{prefix}detections_2d"] = Detection2DArray
        self.topics = topics
        self.probe = Probe(self.node, topics)
        self.rig = CameraRig(
            self.node, ir_topic=f"{prefix}ir/image_raw", vis_topic=vis_topic, stamp_offset_ns=OFFSET_NS
        )
        self.spun = SpunNodes(context, self.node)
        self._ticking = threading.Event()

    def tick_clock(self) -> None:
        """Publish /clock (wall time + OFFSET_NS) every 10 ms until close()."""
        from rosgraph_msgs.msg import Clock

        from ivif_ros.nodes import messages

        pub = self.node.create_publisher(Clock, "/clock", 10)

        def tick():
            while not self._ticking.is_set():
                pub.publish(Clock(clock=messages.time_msg(time.time_ns() + OFFSET_NS)))
                time.sleep(0.01)

        threading.Thread(target=tick, daemon=True).start()

    def wait_for_subscribers(self, proc, log: Path, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(p.get_subscription_count() for p in self.rig.pub.values()):
            assert proc.poll() is None, f"exited early with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the graph did not subscribe to the cameras:\n{log.read_text()}"
            time.sleep(0.1)
        time.sleep(0.5)

    def close(self) -> None:
        self._ticking.set()
        self.spun.close()


@contextlib.contextmanager
def _running(cmd: list[str], env: dict[str, str], tmp_path: Path, log_name: str):
    """``cmd`` started in its own session, its output in ``tmp_path/log_name``; killed on the way out
    if a test left it running. Yields ``(process, log path)``."""
    log = tmp_path / log_name
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stop(proc: subprocess.Popen, log: Path, children: list[int]) -> None:
    """SIGINT to the process group, as Ctrl-C in a terminal: the process and every child it
    started must exit cleanly (started with start_new_session=True: its own group)."""
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 0, f"exit code {proc.returncode} after SIGINT:\n{log.read_text()[-4000:]}"
    deadline = time.monotonic() + 5
    while [p for p in children if Path(f"/proc/{p}").exists() and command_line(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [(p, command_line(p)) for p in children if Path(f"/proc/{p}").exists() and command_line(p)]
    assert not left, f"left running after SIGINT: {left}\n{log.read_text()[-3000:]}"


@needs_ros2
def test_ros2_launch_runs_the_installed_graph_with_launch_arguments(ros_env, rclpy_context, student_weights, tmp_path):
    from ament_index_python.packages import get_package_share_directory

    installed = Path(get_package_share_directory("ivif_ros")) / "launch" / "fusion.launch.py"
    assert installed.read_text() == (REPO_ROOT / "launch" / "fusion.launch.py").read_text(), (
        "the installed launch file is not the checkout's: run ./scripts/setup.sh"
    )
    ns = "car1"
    cmd = [
        ROS2,
        "launch",
        "ivif_ros",
        "fusion.launch.py",
        f"namespace:={ns}",
        f"config:={_test_config(tmp_path)}",
        "backend:=torch",
        f"model:={student_weights}",
        "use_sim_time:=true",
        "visible_topic:=/rig/visible",
    ]
    with _running(cmd, ros_env, tmp_path, "ros2_launch.log") as (proc, log):
        graph = _Graph(rclpy_context, f"/{ns}/", "/rig/visible")
        try:
            graph.tick_clock()
            graph.wait_for_subscribers(proc, log)
            children = _children(proc.pid)
            commands = [command_line(p) for p in children]
            for executable in ("fusion_node", "overlay_node"):
                assert any(f"lib/ivif_ros/{executable}" in c for c in commands), (executable, commands)
            graph.rig.run(2.0)
            settle(graph.probe, f"/{ns}/fusion/status")
            time.sleep(0.5)
            for topic in graph.topics:
                assert graph.probe.count(topic) > 0, f"nothing on {topic}:\n{log.read_text()[-3000:]}"
            statuses = graph.probe.get(f"/{ns}/fusion/status")
            # use_sim_time reached the node: ages are measured on /clock, which runs ~11.6 days behind
            assert all(-50.0 < s.visible_age_ms < 5000.0 for s in statuses), [s.visible_age_ms for s in statuses]
            assert all(s.backend == "torch" and s.mode == "fused" for s in statuses)
            _stop(proc, log, children)
        finally:
            graph.close()
    text = log.read_text()
    for label in (
        "ivif_fusion",
        "ivif_overlay",
    ):  # launch's process labels, e.g. "[INFO] [ivif_fusion-1]: process started"
        assert re.search(rf"\[{label}-\d+\]: process started", text), text
    assert not re.search(r"\[python[\d.]*-\d+\]", text), "processes labelled python-N:\n" + text
    assert f"[{ns}.ivif_fusion]" in text  # the node's logger: namespace car1, name ivif_fusion


@needs_ros2
def test_launch_file_falls_back_to_python_m_and_imports_no_project_code(tmp_path):
    """What the launch file's actions are, computed in a fresh process that stands for ``ros2 launch``."""
    probe = f"""
import importlib.util, json, sys
from launch import LaunchContext
from launch.utilities import perform_substitutions
spec = importlib.util.spec_from_file_location("fusion_launch", {str(REPO_ROOT / "launch" / "fusion.launch.py")!r})
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
out = {{}}
for case, installed in (("installed", module._installed_executables()), ("missing", set())):
    module._installed_executables = lambda installed=installed: installed
    ctx = LaunchContext()
    module.generate_launch_description()  # declares the arguments
    ctx.launch_configurations.update(namespace="car1", config={str(REPO_ROOT / "config" / "fusion.yaml")!r})
    nodes = [a for a in module._graph(ctx) if type(a).__name__ == "Node"]
    text = lambda v: v if v is None or isinstance(v, str) else perform_substitutions(ctx, v)
    out[case] = [[text(n.node_package), text(n.node_executable), text(n.name)] for n in nodes]
out["project_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("ivif_ros", "torch"))
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import json

    found = json.loads(result.stdout.strip().splitlines()[-1])
    # Only the Fast DDS profile helper (ivif_ros.nodes.launcher and the config schema it names
    # errors with); no pipeline, engine, node or torch code.
    allowed = {
        "ivif_ros",
        "ivif_ros.errors",
        "ivif_ros.core",
        "ivif_ros.core.config",
        "ivif_ros.nodes",
        "ivif_ros.nodes.launcher",
    }
    assert set(found["project_modules"]) <= allowed, set(found["project_modules"]) - allowed
    assert [n[:2] for n in found["installed"]] == [["ivif_ros", "fusion_node"], ["ivif_ros", "overlay_node"]]
    assert [n[1] for n in found["missing"]] == [sys.executable] * 2
    for case in ("installed", "missing"):
        assert [n[2] for n in found[case]] == ["ivif_fusion", "ivif_overlay"], found[case]  # process labels


@needs_ros2
def test_ros2_run_fusion_node_from_the_pip_install(ros_env, rclpy_context, student_weights, tmp_path):
    ns = f"/run_{os.getpid()}"
    cmd = [
        ROS2,
        "run",
        "ivif_ros",
        "fusion_node",
        "--ros-args",
        "-r",
        f"__ns:={ns}",
        "--params-file",
        str(_test_config(tmp_path)),
        "-p",
        f"pipeline.model:={student_weights}",
        "-p",
        "engine.backend:=torch",
    ]
    with _running(cmd, ros_env, tmp_path, "ros2_run.log") as (proc, log):
        graph = _Graph(rclpy_context, f"{ns}/", f"{ns}/visible/image_raw")
        try:
            graph.rig.stamp_offset_ns = 0
            graph.wait_for_subscribers(proc, log)
            children = _children(proc.pid)
            assert any(f"{sys.prefix}/lib/ivif_ros/fusion_node" in command_line(p) for p in [proc.pid, *children]), [
                command_line(p) for p in [proc.pid, *children]
            ]
            graph.rig.run(1.5)
            settle(graph.probe, f"{ns}/fusion/status")
            assert graph.probe.count(f"{ns}/fused/image") > 0, log.read_text()[-3000:]
            _stop(proc, log, children)
        finally:
            graph.close()


@needs_vision_msgs
def test_detections_2d_carries_the_boxes_of_detections(rclpy_context, student_weights):
    """Same boxes, same order: class id (as vision_msgs' string id) and score in results[0].hypothesis,
    bbox centre and size in pixels of the fused image."""
    import rclpy
    from rclpy.parameter import Parameter
    from vision_msgs.msg import Detection2DArray

    from fusion_graph_harness import graph_params
    from ivif_ros.msg import DetectionArray
    from ivif_ros.nodes.fusion_node import FusionNode

    params = {**graph_params(student_weights), "pipeline.score_threshold": 0.05}
    fusion = FusionNode(context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    node = rclpy.create_node("probe", context=rclpy_context)
    probe = Probe(
        node,
        {
            "detections": DetectionArray,
            "detections_2d": Detection2DArray,
            "fusion/status": output_topics()["fusion/status"],
        },
    )
    rig = CameraRig(node)
    spun = SpunNodes(rclpy_context, fusion, node)
    try:
        time.sleep(0.5)
        rig.run(1.5)
        settle(probe)
    finally:
        spun.close()
    stamp = lambda m: (m.header.stamp.sec, m.header.stamp.nanosec)  # noqa: E731
    ours = {stamp(m): m for m in probe.get("detections")}
    theirs = {stamp(m): m for m in probe.get("detections_2d")}
    assert ours and ours.keys() == theirs.keys()
    boxes = 0
    for key, array in ours.items():
        other = theirs[key]
        assert other.header.frame_id == array.header.frame_id
        assert len(other.detections) == len(array.detections)
        for d, v in zip(array.detections, other.detections):
            (hyp,) = v.results
            assert hyp.hypothesis.class_id == str(d.class_id)
            assert math.isclose(hyp.hypothesis.score, d.score, rel_tol=1e-6)
            assert math.isclose(v.bbox.center.position.x, (d.x_min + d.x_max) / 2, abs_tol=1e-3)
            assert math.isclose(v.bbox.center.position.y, (d.y_min + d.y_max) / 2, abs_tol=1e-3)
            assert math.isclose(v.bbox.size_x, d.x_max - d.x_min, abs_tol=1e-3)
            assert math.isclose(v.bbox.size_y, d.y_max - d.y_min, abs_tol=1e-3)
            assert 0 <= d.x_min <= d.x_max <= WIDTH and 0 <= d.y_min <= d.y_max <= HEIGHT  # pixels of the output
            boxes += 1
    assert boxes > 0, "no boxes at score_threshold 0.05: nothing was compared"
