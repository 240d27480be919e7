"""launch/fusion.launch.py and `ivif launch` (the same graph without launch_ros)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from fusion_graph_harness import CameraRig, Probe, SpunNodes, engine_cache, output_topics, student_weights  # noqa: F401
from ivif_ros.cli import main as ivif_main
from ivif_ros.errors import ConfigError
from ivif_ros.nodes.launcher import LaunchRequest, plan
from process_table import graph_processes
from ros_harness import REPO_ROOT, ivif_launch_command

# The launch file's description needs launch_ros, and the graph's pairing is message_filters where installed.
pytestmark = pytest.mark.ros_extras

LAUNCH_FILE = REPO_ROOT / "launch" / "fusion.launch.py"
CONFIG = REPO_ROOT / "config" / "fusion.yaml"


def load_launch_module():
    spec = importlib.util.spec_from_file_location("fusion_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_imports_without_launch_ros_and_declares_the_arguments():
    module = load_launch_module()
    assert callable(module.generate_launch_description)
    assert {"namespace", "ir_topic", "visible_topic", "use_sim_time", "backend", "model", "config"} <= set(
        module.ARGUMENTS
    )


def test_launch_file_builds_its_description():
    pytest.importorskip(
        "launch_ros",
        reason="launch_ros is not installed (not available from pip); "
        "the description can only be built in a full ROS install",
    )
    from launch import LaunchDescription

    description = load_launch_module().generate_launch_description()
    assert isinstance(description, LaunchDescription)
    names = {a.name for a in description.entities if hasattr(a, "default_value")}
    assert {"namespace", "ir_topic", "config"} <= names


def test_plan_passes_config_overrides_namespace_and_remaps():
    req = LaunchRequest(
        config=CONFIG,
        namespace="car1",
        remaps=["ir/image_raw:=/thermal/raw"],
        params=["sync.slop_s=0.03", "registration.crop_xywh=[1, 2, 3, 4]"],
        use_sim_time=True,
        backend="torch",
    )
    p = plan(req)
    assert [label for label, _ in p.commands] == ["fusion", "overlay"]
    argv = p.commands[0][1]
    assert argv[:3] == [sys.executable, "-m", "ivif_ros.nodes.fusion_node"]
    ros = " ".join(argv[argv.index("--ros-args") :])
    for expected in (
        f"--params-file {CONFIG}",
        "-p sync.slop_s:=0.03",
        "-p registration.crop_xywh:=[1, 2, 3, 4]",
        "-p engine.backend:=torch",
        "-p use_sim_time:=true",
        "-r __ns:=/car1",
        "-r ir/image_raw:=/thermal/raw",
    ):
        assert expected in ros
    assert p.config.sync.slop_s == 0.03
    for name in ("FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_DEFAULT_PROFILES_FILE"):  # an exported choice wins
        assert p.env.get(name) == os.environ.get(name, p.env.get(name))


def test_plan_gives_the_nodes_the_shipped_fastdds_profile_unless_the_user_chose_transports():
    from ivif_ros.nodes.launcher import transport_env

    shipped = str(REPO_ROOT / "config" / "fastdds_profile.xml")
    assert transport_env("fastdds_profile.xml", {})["FASTDDS_DEFAULT_PROFILES_FILE"] == shipped
    assert "FASTDDS_BUILTIN_TRANSPORTS" not in transport_env("fastdds_profile.xml", {})  # it isolated the graph
    chosen = {"FASTDDS_BUILTIN_TRANSPORTS": "SHM"}
    assert transport_env("fastdds_profile.xml", chosen) == chosen
    assert transport_env("", {}) == {}
    with pytest.raises(ConfigError, match="graph.fastdds_profile"):
        transport_env("/nonexistent/profile.xml", {})


def test_a_node_started_by_hand_loads_the_profile_unless_transports_were_chosen():
    from ivif_ros.nodes.launcher import apply_default_profile

    plain: dict[str, str] = {}
    apply_default_profile(plain)  # what spin_nodes does before rclpy.init
    assert plain == {"FASTDDS_DEFAULT_PROFILES_FILE": str(REPO_ROOT / "config" / "fastdds_profile.xml")}
    for chosen in ({"FASTDDS_BUILTIN_TRANSPORTS": "SHM"}, {"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}):
        env = dict(chosen)
        apply_default_profile(env)
        assert env == chosen


def test_plan_passes_ros_own_parameters_without_the_schema():
    argv = plan(LaunchRequest(config=CONFIG, params=["use_sim_time=true"])).commands[0][1]
    assert "use_sim_time:=true" in argv


def test_plan_single_process_mode():
    p = plan(LaunchRequest(config=CONFIG, params=["graph.mode=single_process", "graph.overlay=false"]))
    assert [label for label, _ in p.commands] == ["graph"]
    argv = p.commands[0][1]
    assert argv[2:4] == ["ivif_ros.nodes.graph", "--no-overlay"]
    assert "graph.mode" not in " ".join(argv)  # launcher settings are not node parameters


@pytest.mark.parametrize(
    "request_kwargs, message",
    [
        ({"params": ["sync.slop_s=-1"]}, "sync.slop_s"),
        ({"remaps": ["ir/image_raw=/x"]}, "FROM:=TO"),
        ({"backend": "cuda"}, "engine.backend"),
    ],
)
def test_plan_rejects_bad_settings_before_starting_anything(request_kwargs, message):
    with pytest.raises(ConfigError, match=message):
        plan(LaunchRequest(config=CONFIG, **request_kwargs))


def test_cli_reports_bad_settings_without_traceback(capsys):
    assert ivif_main(["launch", "--param", "sync.queue_size=0", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "sync.queue_size" in err and "Traceback" not in err


@pytest.mark.usefixtures("engine_cache")
@pytest.mark.parametrize("mode, stop_signal", [("multi_process", signal.SIGINT), ("single_process", signal.SIGTERM)])
def test_ivif_launch_runs_the_graph_and_stops_on_signal(
    mode, stop_signal, ros_env, rclpy_context, student_weights, tmp_path
):
    import rclpy

    ns = f"/launch_{mode}_{os.getpid()}"  # unique: other test runs may be launching on this machine
    cmd = ivif_launch_command(ns, mode, student_weights, "--remap", "visible/image_raw:=/rig/visible")
    log = tmp_path / "launch.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=ros_env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    node = rclpy.create_node("probe", context=rclpy_context)
    spun = SpunNodes(rclpy_context, node)
    try:
        probe = Probe(node, output_topics(f"{ns}/"))
        rig = CameraRig(node, ir_topic=f"{ns}/ir/image_raw", vis_topic="/rig/visible")
        deadline = time.monotonic() + 30
        while not (
            rig.pub["ir"].get_subscription_count()
            and rig.pub["vis"].get_subscription_count()
            and node.count_publishers(f"{ns}/semantic/color")
        ):
            assert proc.poll() is None, f"ivif launch exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"graph did not come up:\n{log.read_text()}"
            time.sleep(0.1)
        time.sleep(0.5)
        rig.run(1.5)
        deadline = time.monotonic() + 10
        while probe.count(f"{ns}/semantic/color") == 0:
            assert time.monotonic() < deadline, f"no overlay output:\n{log.read_text()}"
            time.sleep(0.1)
        assert probe.count(f"{ns}/fused/image") > 0 and probe.count(f"{ns}/fusion/status") > 0
        assert graph_processes(ns), "graph processes not found"
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=25) == 0, log.read_text()
        left = graph_processes(ns)
        assert left == [], (
            "nodes left running after ivif launch exited:\n"
            + subprocess.run(
                ["ps", "-o", "pid,ppid,stat,etime,cmd", "-p", ",".join(map(str, left))], capture_output=True, text=True
            ).stdout
            + log.read_text()[-3000:]
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        spun.close()


def test_supervise_stops_the_graph_when_one_process_fails():
    from ivif_ros.nodes.launcher import Plan, supervise

    survivor = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGINT, lambda *a: exit(0)); time.sleep(60)",
    ]
    failing = [sys.executable, "-c", "import time; time.sleep(0.5); exit(3)"]
    lines = []
    started = time.monotonic()
    code = supervise(
        Plan(config=None, commands=[("survivor", survivor), ("failing", failing)], env=dict(os.environ)),
        log=lines.append,
    )
    assert code == 3
    assert time.monotonic() - started < 10  # the survivor was stopped, not waited for
    assert any("failing exited with code 3" in line for line in lines)
