"""The nodes as separate processes over real DDS: namespace, remapped input, params file + -p."""

from __future__ import annotations

import time

import pytest
from rcl_interfaces.srv import GetParameters

from fusion_graph_harness import (  # noqa: F401  (fixtures)
    CameraRig,
    Probe,
    SpunNodes,
    assert_every_message_accounted,
    engine_cache,
    fusion_diagnostics,
    output_topics,
    student_weights,
)
from ros_harness import REPO_ROOT, process_output, ros_process

pytestmark = [pytest.mark.usefixtures("engine_cache"), pytest.mark.ros_extras]  # pairing: message_filters if installed


def wait_until(condition, timeout_s, what, procs=()):
    deadline = time.monotonic() + timeout_s
    while not condition():
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(
                    f"a node exited ({proc.returncode}) while waiting for {what}:\n{process_output(proc)}"
                )
        if time.monotonic() > deadline:
            logs = "\n".join(process_output(p)[-3000:] for p in procs)
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{logs}")
        time.sleep(0.05)


@pytest.fixture
def probe_node(rclpy_context):
    import rclpy

    node = rclpy.create_node("probe", context=rclpy_context)
    spun = SpunNodes(rclpy_context, node)
    yield node
    spun.close()


def get_parameters(node, service: str, names: list[str]) -> list:
    client = node.create_client(GetParameters, service)
    assert client.wait_for_service(timeout_sec=10.0), f"{service} not available"
    future = client.call_async(GetParameters.Request(names=names))
    wait_until(future.done, 10.0, service)
    return future.result().values


def test_namespace_remap_params_file_and_override(ros_env, probe_node, student_weights, tmp_path):
    overrides = tmp_path / "test_params.yaml"
    overrides.write_text(
        "/**:\n  ros__parameters:\n"
        f"    pipeline: {{model: '{student_weights}'}}\n"
        "    engine: {backend: torch, width: 320, height: 240, threads: 1}\n"
        "    sync: {slop_s: 0.025}\n"
        "    diagnostics: {period_s: 0.2}\n"
    )
    ros_args = [
        "--ros-args",
        "--params-file",
        str(REPO_ROOT / "config" / "fusion.yaml"),
        "--params-file",
        str(overrides),
        "-p",
        "dropout.timeout_s:=0.7",
        "-r",
        "__ns:=/car1",
        "-r",
        "ir/image_raw:=/thermal/raw",
    ]
    probe = Probe(probe_node, output_topics("/car1/"))
    rig = CameraRig(probe_node, ir_topic="/thermal/raw", vis_topic="/car1/visible/image_raw")
    with (
        ros_process(["-m", "ivif_ros.nodes.fusion_node", *ros_args], ros_env) as fusion,
        ros_process(["-m", "ivif_ros.nodes.overlay_node", *ros_args], ros_env) as overlay,
    ):
        procs = (fusion, overlay)
        wait_until(
            lambda: rig.pub["ir"].get_subscription_count() and rig.pub["vis"].get_subscription_count(),
            30.0,
            "the fusion node to subscribe to /thermal/raw and /car1/visible/image_raw",
            procs,
        )
        wait_until(lambda: probe_node.count_publishers("/car1/semantic/color"), 20.0, "the overlay node", procs)
        time.sleep(0.5)
        rig.run(2.0)
        wait_until(lambda: probe.count("/car1/semantic/color") > 0, 10.0, "/car1/semantic/color", procs)
        slop, timeout, queue = get_parameters(
            probe_node, "/car1/ivif_fusion/get_parameters", ["sync.slop_s", "dropout.timeout_s", "sync.queue_size"]
        )
        time.sleep(1.5)  # last frame through the pipeline, then a /diagnostics after it
        d = fusion_diagnostics(probe)

    assert slop.double_value == pytest.approx(0.025)  # from the second params file
    assert timeout.double_value == pytest.approx(0.7)  # from -p
    assert queue.integer_value == 10  # from config/fusion.yaml
    for topic in output_topics("/car1/"):
        assert probe.count(topic) > 0, f"nothing on {topic}"
    fused = probe.get("/car1/fused/image")
    assert all(m.encoding == "rgb8" and m.header.frame_id == "visible_optical" for m in fused)
    assert int(d["frames fused"]) == probe.count("/car1/fusion/status")
    assert_every_message_accounted(d, rig.sent)


def test_invalid_parameter_stops_the_node_at_start_with_the_reason(ros_env):
    with ros_process(
        ["-m", "ivif_ros.nodes.fusion_node", "--ros-args", "-p", "sync.slop_s:=-0.5", "-r", "__ns:=/bad_params"],
        ros_env,
    ) as proc:
        proc.wait(timeout=30)
    out = process_output(proc)
    assert proc.returncode == 2, out
    assert "sync.slop_s" in out and "-0.5" in out and "10.0" in out and "Traceback" not in out
