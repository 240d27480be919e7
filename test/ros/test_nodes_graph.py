"""The fusion and overlay nodes in this process, over real DDS (Fast DDS intra-process path).

A CameraRig publishes 320x240 IR and visible images at 30 Hz with stamp jitter; a probe
subscribes to every output. The graph runs a randomly initialised student on the torch
backend (see fusion_graph_harness), so only the graph's behaviour is checked.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter

from ivif_ros.nodes.fusion_node import resolve_implementation
from fusion_graph_harness import (  # noqa: F401  (fixtures)
    HEIGHT,
    VIS_FRAME,
    WIDTH,
    CameraRig,
    Probe,
    SpunNodes,
    assert_every_message_accounted,
    engine_cache,
    fusion_diagnostics,
    fusion_diagnostics_since,
    graph_params,
    output_topics,
    settle,
    student_weights,
)

pytestmark = [pytest.mark.usefixtures("engine_cache"), pytest.mark.ros_extras]  # pairing: message_filters if installed


@pytest.fixture
def graph(rclpy_context, student_weights):
    """Start fusion + overlay + probe nodes in one executor; yields a function to build them with overrides."""
    import rclpy
    import torch

    from ivif_ros.nodes.fusion_node import FusionNode

    torch.set_num_threads(1)  # the torch backend runs in this process: one core, as in the child processes
    from ivif_ros.nodes.overlay_node import OverlayNode

    started = {}

    def start(**overrides):
        params = {**graph_params(student_weights), "diagnostics.period_s": 0.2, **overrides}
        fusion = FusionNode(
            context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
        overlay = OverlayNode(context=rclpy_context)
        probe_node = rclpy.create_node("probe", context=rclpy_context)
        probe = Probe(probe_node, output_topics())
        rig = CameraRig(probe_node)
        started["spun"] = SpunNodes(rclpy_context, fusion, overlay, probe_node)
        time.sleep(0.5)  # discovery
        return fusion, probe, rig, probe_node

    yield start
    if started:
        started["spun"].close()


ENCODINGS = (("mono16", "rgb8"), ("32FC1", "bgr8"), ("mono8", "rgba8"), ("bgr8", "bgra8"), ("rgba8", "mono8"))


def test_every_output_published_and_every_pair_accounted(graph):
    fusion, probe, rig, _ = graph()
    rig.run(2.5, encodings=ENCODINGS)
    settle(probe)
    time.sleep(0.5)  # one more /diagnostics after the last frame
    for topic in output_topics():
        assert probe.count(topic) > 0, f"nothing received on {topic}"

    statuses = probe.get("fusion/status")
    fused = probe.get("fused/image")
    assert len(statuses) == len(fused) >= 5  # 30 Hz in; a busy 2-core machine still fuses a few Hz
    assert [s.frame_index for s in statuses] == list(range(len(statuses)))
    vis_stamps = set(rig.sent["vis"])
    for image, status in zip(fused, statuses):
        assert (image.encoding, image.width, image.height) == ("rgb8", WIDTH, HEIGHT)
        assert image.header.frame_id == VIS_FRAME
        assert image.header.stamp.sec * 10**9 + image.header.stamp.nanosec in vis_stamps
        assert status.mode == "fused" and status.ir_present and status.visible_present
        assert status.pair_skew_ms <= 20.0 and status.backend == "torch"
        assert status.total_ms > status.infer_ms > 0 and not math.isnan(status.visible_age_ms)
    mask = probe.get("semantic/mask")[-1]
    assert (mask.encoding, mask.width, mask.height) == ("mono8", WIDTH, HEIGHT)
    assert probe.get("semantic/color")[-1].encoding == "rgb8"

    d = fusion_diagnostics(probe)
    assert d["mode"] == "waiting" and d["_level"] == b"\x02"  # the cameras stopped: ERROR, no input
    assert d["pairing"] == resolve_implementation("auto")  # message_filters where it is installed
    assert "rejected ir: invalid image" not in d and "rejected visible: invalid image" not in d, d
    assert int(d["frames fused"]) == len(statuses)
    assert_every_message_accounted(d, rig.sent)


@pytest.mark.parametrize("survivor, mode", [("ir", "ir_only"), ("vis", "visible_only")])
def test_camera_dropout_falls_back_and_recovers(graph, survivor, mode):
    fusion, probe, rig, _ = graph(**{"dropout.timeout_s": 0.3})
    rig.run(1.0)
    mark = probe.count("/diagnostics")
    rig.run(1.5, cameras=(survivor,))
    during_loss = fusion_diagnostics_since(probe, mark)
    mark = probe.count("/diagnostics")
    rig.run(1.5)
    after_return = fusion_diagnostics_since(probe, mark)
    settle(probe)
    time.sleep(0.5)
    modes = [s.mode for s in probe.get("fusion/status")]
    first_single = modes.index(mode)
    assert "fused" in modes[:first_single], modes
    assert "fused" in modes[first_single:], f"fusion did not resume: {modes}"
    single = [s for s in probe.get("fusion/status") if s.mode == mode]
    assert all(
        s.ir_present == (survivor == "ir") and s.visible_present == (survivor == "vis") and math.isnan(s.pair_skew_ms)
        for s in single
    )
    # single-camera frames keep the surviving camera's stamps and the visible frame's geometry and frame_id
    stamps = {s.header.stamp.sec * 10**9 + s.header.stamp.nanosec for s in single}
    assert stamps <= set(rig.sent[survivor])
    assert all(s.header.frame_id == VIS_FRAME for s in single)
    assert any(d["mode"] == mode and d["_level"] == b"\x01" and "camera lost" in d["_message"] for d in during_loss), (
        during_loss
    )
    assert any(d["mode"] == "fused" and d["_level"] == b"\x00" for d in after_return), after_return
    assert_every_message_accounted(fusion_diagnostics(probe), rig.sent)


def _set(probe_node, name, value, type_):
    client = probe_node.create_client(SetParameters, "/ivif_fusion/set_parameters")
    assert client.wait_for_service(timeout_sec=5.0)
    field = {
        ParameterType.PARAMETER_DOUBLE: "double_value",
        ParameterType.PARAMETER_STRING: "string_value",
        ParameterType.PARAMETER_STRING_ARRAY: "string_array_value",
    }[type_]
    request = SetParameters.Request(
        parameters=[ParameterMsg(name=name, value=ParameterValue(type=type_, **{field: value}))]
    )
    future = client.call_async(request)
    deadline = time.monotonic() + 5.0
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    return future.result().results[0]


def test_parameters_validated_at_set_time(graph):
    fusion, probe, rig, probe_node = graph()
    bad = _set(probe_node, "sync.slop_s", -0.5, ParameterType.PARAMETER_DOUBLE)
    assert not bad.successful and "sync.slop_s" in bad.reason
    crossed = _set(probe_node, "ir_normalize.low_percentile", 99.5, ParameterType.PARAMETER_DOUBLE)
    assert not crossed.successful and "high_percentile" in crossed.reason  # a rule across two fields
    fixed = _set(probe_node, "engine.backend", "openvino", ParameterType.PARAMETER_STRING)
    assert not fixed.successful and "read-only" in fixed.reason.lower()
    good = _set(probe_node, "sync.slop_s", 0.045, ParameterType.PARAMETER_DOUBLE)
    assert good.successful
    assert fusion.policy.slop_ns == 45_000_000 and fusion.params.config.sync.slop_s == 0.045


def test_message_filters_pairing_refuses_what_it_cannot_apply_and_applies_the_rest(graph):
    pytest.importorskip(
        "message_filters",
        reason="message_filters is not installed (not on PyPI; CI's second pass installs it from ../shared/ros-extras)",
    )
    fusion, probe, rig, probe_node = graph(**{"sync.implementation": "message_filters"})
    for name in ("sync.age_penalty", "sync.min_period_s"):
        refused = _set(probe_node, name, 0.5, ParameterType.PARAMETER_DOUBLE)
        assert not refused.successful and name in refused.reason and "message_filters" in refused.reason, refused
    assert _set(probe_node, "sync.slop_s", 0.03, ParameterType.PARAMETER_DOUBLE).successful
    rig.run(1.0)
    settle(probe)
    time.sleep(0.5)
    assert fusion.policy.mf_synchronizer.slop.nanoseconds == 30_000_000  # message_filters pairs with the new slop
    d = fusion_diagnostics(probe)
    assert d["pairing"] == "message_filters" and int(d["pairs matched"]) > 0
    assert_every_message_accounted(d, rig.sent)


def test_unusable_images_are_rejected_counted_and_named(graph):
    from sensor_msgs.msg import Image

    fusion, probe, rig, probe_node = graph()
    rig.run(0.5)
    bad = Image(height=HEIGHT, width=WIDTH, encoding="mono16", step=WIDTH * 2, data=bytes(WIDTH * HEIGHT * 2))
    bad.header.frame_id = VIS_FRAME
    truncated = Image(height=HEIGHT, width=WIDTH, encoding="mono8", step=WIDTH, data=bytes(100))
    for _ in range(3):
        rig.pub["vis"].publish(bad)  # a 16-bit visible image: not a colour camera the model knows
        rig.pub["ir"].publish(truncated)
        time.sleep(0.05)
    settle(probe)
    time.sleep(0.5)
    d = fusion_diagnostics(probe)
    assert d["rejected visible: invalid image"] == "3" and d["rejected ir: invalid image"] == "3"
    rig.sent["vis"] += [0] * 3
    rig.sent["ir"] += [0] * 3
    assert_every_message_accounted(d, rig.sent)


def test_camera_info_intrinsics_register_a_smaller_ir_camera(graph):
    """registration.mode camera_info: a 160x120 IR camera is warped with K_vis @ inv(K_ir)."""
    from sensor_msgs.msg import CameraInfo

    from ivif_ros.nodes import messages

    fusion, probe, rig, probe_node = graph(**{"registration.mode": "camera_info"})
    infos = {name: probe_node.create_publisher(CameraInfo, f"{name}/camera_info", 10) for name in ("ir", "visible")}
    for name, (w, h, f) in {"ir": (160, 120, 100.0), "visible": (WIDTH, HEIGHT, 200.0)}.items():
        info = CameraInfo(width=w, height=h, k=[f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0])
        info.header.frame_id = f"{name}_optical"
        infos[name].publish(info)
    time.sleep(0.3)
    small_ir = messages.image_msg(np.zeros((120, 160), np.uint16) + 30000, "mono16", messages.Header())
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for k in range(10):
        stamp = messages.time_msg(probe_node.get_clock().now().nanoseconds)
        small_ir.header.stamp = stamp
        vis = messages.image_msg(rgb, "rgb8", messages.Header(stamp=stamp, frame_id=VIS_FRAME))
        rig.pub["ir"].publish(small_ir)
        rig.pub["vis"].publish(vis)
        time.sleep(0.05)
    settle(probe)
    fused = probe.get("fused/image")
    assert fused and all((m.width, m.height) == (WIDTH, HEIGHT) for m in fused)
    d = fusion_diagnostics(probe)
    assert "failed fused: invalid input" not in d, d


def test_use_sim_time_ages_follow_the_clock_topic(graph):
    """With use_sim_time the node's clock is /clock: input ages are small in simulated time."""
    from rosgraph_msgs.msg import Clock

    from ivif_ros.nodes import messages

    offset_ns = -(10**15)  # simulated time runs ~11.6 days behind the wall clock
    fusion, probe, rig, probe_node = graph(use_sim_time=True)
    clock_pub = probe_node.create_publisher(Clock, "/clock", 10)
    ticking = threading.Event()

    def tick():
        while not ticking.is_set():
            clock_pub.publish(Clock(clock=messages.time_msg(time.time_ns() + offset_ns)))
            time.sleep(0.01)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        time.sleep(0.3)
        rig.stamp_offset_ns = offset_ns
        rig.run(1.5)
        settle(probe)
    finally:
        ticking.set()
        ticker.join(2)
    statuses = probe.get("fusion/status")
    assert statuses
    assert all(-50.0 < s.visible_age_ms < 2000.0 for s in statuses), [s.visible_age_ms for s in statuses]


def test_overlay_node_blends_classes_and_draws_boxes(rclpy_context):
    """The overlay node alone, fed a known fused image, mask and detections of one stamp."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ivif_ros.core import postprocess as post
    from ivif_ros.core.image_codec import image_to_array
    from ivif_ros.msg import Detection, DetectionArray
    from ivif_ros.nodes import messages
    from ivif_ros.nodes.overlay_node import OverlayNode

    overlay = OverlayNode(context=rclpy_context, parameter_overrides=[Parameter("pipeline.overlay_alpha", value=0.25)])
    node = rclpy.create_node("probe", context=rclpy_context)
    probe = Probe(node, {"semantic/color": Image, "detections/image": Image})
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {
        t: node.create_publisher(m, t, qos)
        for t, m in (("fused/image", Image), ("semantic/mask", Image), ("detections", DetectionArray))
    }
    spun = SpunNodes(rclpy_context, overlay, node)
    try:
        time.sleep(0.5)
        fused = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[50:100, 60:160] = 3  # car
        header = messages.Header(stamp=messages.time_msg(123_000_000_000), frame_id=VIS_FRAME)
        car = Detection(class_id=2, class_name="car", score=0.9, x_min=60.0, y_min=50.0, x_max=160.0, y_max=100.0)
        pubs["detections"].publish(DetectionArray(header=header, detections=[car]))
        pubs["semantic/mask"].publish(messages.image_msg(mask, "mono8", header))
        pubs["fused/image"].publish(messages.image_msg(fused, "rgb8", header))
        deadline = time.monotonic() + 10
        while not (probe.count("semantic/color") and probe.count("detections/image")):
            assert time.monotonic() < deadline, "overlay node published nothing"
            time.sleep(0.05)
    finally:
        spun.close()
    color, boxes = probe.get("semantic/color")[0], probe.get("detections/image")[0]
    assert color.header.stamp == header.stamp and color.header.frame_id == VIS_FRAME
    palette = post.palette_for(4)
    expected = post.overlay(fused, mask, post.colorize(mask, palette), 0.25)
    np.testing.assert_array_equal(image_to_array(color), expected)
    assert not np.array_equal(expected, fused)  # the car region is tinted
    drawn = image_to_array(boxes)
    np.testing.assert_array_equal(drawn[75, 60], palette[3])  # the box edge, in the car colour
    np.testing.assert_array_equal(drawn[75, 110], fused[75, 110])  # inside the box: untouched


def test_detections_carry_the_class_map_names_and_the_map_is_validated_at_set_time(graph):
    """The published boxes are the detector's, named by pipeline.class_map; a bad map is refused when set."""
    from ivif_ros.nodes import messages

    names = ("pedestrian", "vehicle")
    fusion, probe, rig, probe_node = graph(
        **{
            "pipeline.detector": "detector_coco",
            "pipeline.class_map": ["pedestrian=person", "vehicle=car,truck,bus"],
            "pipeline.score_threshold": 0.01,
        }
    )
    vision = (
        Probe(probe_node, {"detections_2d": messages.Detection2DArray})
        if messages.Detection2DArray is not None
        else None
    )  # vision_msgs installed (ros-extras)
    rig.run(1.5)
    settle(probe)
    assert fusion.pipeline.class_names == names
    boxes = [d for m in probe.get("detections") for d in m.detections]
    assert boxes, "the detector published no box at score 0.01 on the synthetic scene"
    assert all(d.class_name == names[d.class_id] for d in boxes)
    if vision is not None:
        hypotheses = [
            r.hypothesis.class_id for m in vision.get("detections_2d") for d in m.detections for r in d.results
        ]
        # vision_msgs' convention: the class index as a string; its name is in `detections`
        assert hypotheses and set(hypotheses) <= {str(i) for i in range(len(names))}
    bad = _set(probe_node, "pipeline.class_map", ["pedestrian=persn"], ParameterType.PARAMETER_STRING_ARRAY)
    assert not bad.successful and "pipeline.class_map" in bad.reason and "person" in bad.reason
    assert fusion.pipeline.class_names == names
    good = _set(probe_node, "pipeline.class_map", ["person", "car"], ParameterType.PARAMETER_STRING_ARRAY)
    assert good.successful and fusion.pipeline.class_names == ("person", "car")
