"""The overlay node fed malformed fused images, masks and detections over DDS.

Its inputs are plain topics that any process may publish on, so the fusion node's good
behaviour is no defence. A seeded stream of frames (fused image, mask, detections with one
stamp) mixes valid frames with broken images (encoding, size mismatch, truncated data) and
hostile detections (NaN/inf/huge/inverted boxes, unknown class ids, long names). The node
must keep running, draw every frame whose images are usable (skipping only the unusable
boxes), publish nothing for the others, and name the problem in its log.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from fusion_graph_harness import Probe, SpunNodes
from reliability_graph import stamp_of, wait_for_subscribers

pytestmark = pytest.mark.reliability
W, H = 64, 48
SEED = 7
N_FRAMES = 600


def frame(rng, k: int, t0_ns: int):
    """``(fused, mask, detections, usable)`` for frame ``k``: usable frames must produce both overlays."""
    from sensor_msgs.msg import Image

    from ivif_ros.msg import Detection, DetectionArray
    from ivif_ros.nodes import messages

    header = messages.Header(stamp=messages.time_msg(t0_ns + k * 33_333_333), frame_id="visible_optical")
    fused = messages.image_msg(rng.integers(0, 256, (H, W, 3), np.uint8), "rgb8", header)
    mask = messages.image_msg(rng.integers(0, 4, (H, W), np.uint8), "mono8", header)
    usable = True
    roll = rng.random()
    if roll < 0.1:
        fused = messages.image_msg(rng.integers(0, 256, (H, W), np.uint8), "mono8", header)
        usable = False
    elif roll < 0.2:
        mask = messages.image_msg(rng.integers(0, 4, (H // 2, W), np.uint8), "mono8", header)
        usable = False
    elif roll < 0.3:
        fused = Image(header=header, height=H, width=W, encoding="rgb8", step=3 * W, data=bytes(100))
        usable = False
    special = [math.nan, math.inf, -math.inf, 3e38, -3e38, 1e9]
    detections = []
    for _ in range(int(rng.integers(0, 12))):
        x0, y0 = rng.uniform(-20, W + 20), rng.uniform(-20, H + 20)
        box = [x0, y0, x0 + rng.uniform(-10, 40), y0 + rng.uniform(-10, 40)]
        if rng.random() < 0.3:
            box[int(rng.integers(4))] = special[int(rng.integers(len(special)))]
        detections.append(
            Detection(
                class_id=int(rng.choice([0, 1, 2, 3, 200, 65535])),
                class_name="x" * int(rng.choice([0, 5, 500])),
                score=float(rng.choice([0.5, math.nan, math.inf, -1.0])),
                x_min=box[0],
                y_min=box[1],
                x_max=box[2],
                y_max=box[3],
            )
        )
    return fused, mask, DetectionArray(header=header, detections=detections), usable


@pytest.fixture
def overlay_graph(rclpy_context, ros_env):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from ivif_ros.nodes.overlay_node import OverlayNode

    overlay = OverlayNode(context=rclpy_context, parameter_overrides=[Parameter("diagnostics.period_s", value=0.2)])
    probe_node = rclpy.create_node("overlay_probe", context=rclpy_context)
    probe = Probe(probe_node, {"semantic/color": Image, "detections/image": Image, "/diagnostics": DiagnosticArray})
    spun = SpunNodes(rclpy_context, overlay, probe_node)
    yield overlay, probe, probe_node, spun.thread
    spun.close()


def test_malformed_overlay_inputs(overlay_graph, capfd):
    from sensor_msgs.msg import Image

    from ivif_ros.msg import DetectionArray

    overlay, probe, probe_node, thread = overlay_graph
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    pubs = [
        probe_node.create_publisher(Image, "fused/image", qos),
        probe_node.create_publisher(Image, "semantic/mask", qos),
        probe_node.create_publisher(DetectionArray, "detections", qos),
    ]
    wait_for_subscribers(pubs)
    rng = np.random.default_rng(SEED)
    t0 = probe_node.get_clock().now().nanoseconds
    usable_stamps = set()
    for k in range(N_FRAMES):
        fused, mask, dets, usable = frame(rng, k, t0)
        for pub, msg in zip(pubs, (fused, mask, dets)):
            pub.publish(msg)
        # One frame at a time, as the fusion node publishes them: a burst would overflow the overlay's
        # exact-time queue (overlay.queue_size frames), which is not what is under test here.
        if usable:
            usable_stamps.add(stamp_of(fused))
            deadline = time.monotonic() + 10
            while probe.count("detections/image") < len(usable_stamps):
                assert thread.is_alive(), f"the overlay's executor died at frame {k} (seed {SEED})"
                assert time.monotonic() < deadline, f"no overlay for usable frame {k} (seed {SEED})"
                time.sleep(0.002)
        else:
            time.sleep(0.01)
    time.sleep(0.5)

    assert thread.is_alive(), f"the overlay's executor died (seed {SEED})"
    for topic in ("semantic/color", "detections/image"):
        out = probe.get(topic)
        assert len(out) == len(usable_stamps) and {stamp_of(m) for m in out} == usable_stamps, (
            f"{topic}: output for the wrong frames (seed {SEED})"
        )
        assert all((m.encoding, m.width, m.height, len(m.data)) == ("rgb8", W, H, 3 * W * H) for m in out)
    # /diagnostics accounts for every frame: drawn, or skipped with the reason named
    deadline = time.monotonic() + 5
    while True:
        status = probe.get("/diagnostics")[-1].status[0]
        values = {kv.key: kv.value for kv in status.values}
        if values.get("frames drawn") == str(len(usable_stamps)) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert values.get("frames drawn") == str(len(usable_stamps))
    assert values.get("frames skipped") == str(N_FRAMES - len(usable_stamps))
    assert int(values.get("boxes skipped (non-finite)", 0)) > 0
    warned = [m.status[0] for m in probe.get("/diagnostics") if m.status[0].level == b"\x01"]
    assert warned and "frames skipped since the last status" in warned[0].message
    log = capfd.readouterr().err
    # one line per throttle period and call site (rclpy): the first problem of the run is named
    assert "overlay skipped: " in log and ("semantic/mask" in log or "fused/image" in log)
    assert "topic /detections:" in log and "non-finite field" in log
