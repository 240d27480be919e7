"""Shared pieces of the node-graph tests: a model to run, synthetic camera streams, output probes.

No weights are shipped yet, so the tests save a randomly initialised student (seeded) into
a temp dir; the nodes load it like any other weights file. The outputs are therefore not
meaningful images, which is fine: these tests check the graph (pairing, accounting, topics,
QoS, parameters, dropout, process handling), not fusion quality.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

WIDTH, HEIGHT = 320, 240
PERIOD_S = 1 / 30
STAMP_JITTER_S = 0.003
VIS_FRAME = "visible_optical"


# Settings every test graph uses: the temp model, the quick torch backend at the test size, one thread.
def graph_params(model_stem: Path) -> dict:
    return {
        "pipeline.model": str(model_stem),
        "engine.backend": "torch",
        "engine.width": WIDTH,
        "engine.height": HEIGHT,
        "engine.threads": 1,
    }


@pytest.fixture(scope="session")
def student_weights(tmp_path_factory) -> Path:
    import torch

    from ivif_ros.models import build_student
    from ivif_ros.weights import save_model

    torch.manual_seed(0)
    stem = tmp_path_factory.mktemp("weights") / "student_random"
    save_model(
        build_student(),
        stem,
        {"detection_classes": ["person", "bicycle", "car"], "training": "none: random initialisation for graph tests"},
    )
    return stem


@pytest.fixture(scope="module")
def engine_cache(tmp_path_factory, ros_env):
    """Engines cache in a temp dir, for this process and the ROS child processes (restored afterwards)."""
    import os

    path = tmp_path_factory.mktemp("engine_cache")
    saved = os.environ.get("IVIF_ROS_CACHE_DIR")
    os.environ["IVIF_ROS_CACHE_DIR"] = ros_env["IVIF_ROS_CACHE_DIR"] = str(path)
    yield path
    for env in (os.environ, ros_env):
        if saved is None:
            env.pop("IVIF_ROS_CACHE_DIR", None)
        else:
            env["IVIF_ROS_CACHE_DIR"] = saved


def synthetic_pair(k: int, ir_encoding: str = "mono16", vis_encoding: str = "rgb8"):
    """A warm blob moving over a cool gradient (IR) and a textured scene (visible), frame ``k``."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    cx = 40 + (k * 4) % (WIDTH - 80)
    blob = np.exp(-((xx - cx) ** 2 + (yy - 120) ** 2) / 300.0)
    kelvin = 285.0 + 5.0 * yy / HEIGHT + 25.0 * blob
    rgb = np.stack([xx / WIDTH * 255, yy / HEIGHT * 255, 128 + 60 * np.sin(xx / 9.0)], -1).astype(np.uint8)
    ir = {
        "mono16": lambda: (kelvin * 100).astype(np.uint16),  # centi-Kelvin counts
        "32FC1": lambda: kelvin.astype(np.float32),
        "mono8": lambda: ((kelvin - 280) * 7).clip(0, 255).astype(np.uint8),
        "rgb8": lambda: np.repeat(((kelvin - 280) * 7).clip(0, 255).astype(np.uint8)[:, :, None], 3, 2),
        "bgr8": lambda: np.repeat(((kelvin - 280) * 7).clip(0, 255).astype(np.uint8)[:, :, None], 3, 2),
        "rgba8": lambda: np.dstack(
            [
                np.repeat(((kelvin - 280) * 7).clip(0, 255).astype(np.uint8)[:, :, None], 3, 2),
                np.full((HEIGHT, WIDTH), 255, np.uint8),
            ]
        ),
    }[ir_encoding]()
    vis = {
        "rgb8": lambda: rgb,
        "bgr8": lambda: np.ascontiguousarray(rgb[:, :, ::-1]),
        "rgba8": lambda: np.dstack([rgb, np.full((HEIGHT, WIDTH), 255, np.uint8)]),
        "bgra8": lambda: np.dstack([rgb[:, :, ::-1], np.full((HEIGHT, WIDTH), 255, np.uint8)]),
        "mono8": lambda: rgb[:, :, 1].copy(),
    }[vis_encoding]()
    return ir, vis


class SpunNodes:
    """Nodes spun by one executor in a daemon thread, until :meth:`close` (which destroys them)."""

    def __init__(self, context, *nodes):
        from rclpy.executors import SingleThreadedExecutor

        self.nodes = nodes
        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(5)
        for node in self.nodes:
            node.destroy_node()


class CameraRig:
    """Publishes IR and visible images at 30 Hz with stamp jitter, like two free-running drivers.

    ``ir_topic``/``vis_topic`` may be absolute or relative to the probe node.
    """

    def __init__(self, node, ir_topic="ir/image_raw", vis_topic="visible/image_raw", stamp_offset_ns: int = 0):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        self.pub = {
            "ir": node.create_publisher(Image, ir_topic, qos),
            "vis": node.create_publisher(Image, vis_topic, qos),
        }
        self.sent = defaultdict(list)  # camera -> stamps (ns) published
        self.rng = np.random.default_rng(0)
        self.stamp_offset_ns = stamp_offset_ns  # e.g. to stamp in simulated time
        self.k = 0

    def run(self, seconds: float, cameras=("ir", "vis"), encodings=(("mono16", "rgb8"),)) -> None:
        from ivif_ros.nodes import messages

        end = time.monotonic() + seconds
        next_t = time.monotonic()
        while time.monotonic() < end:
            ir_enc, vis_enc = encodings[self.k % len(encodings)]
            ir, vis = synthetic_pair(self.k, ir_enc, vis_enc)
            now = self.node.get_clock().now().nanoseconds + self.stamp_offset_ns
            for cam, arr, enc, frame in (("ir", ir, ir_enc, "ir_optical"), ("vis", vis, vis_enc, VIS_FRAME)):
                if cam not in cameras:
                    continue
                stamp = now + int(self.rng.uniform(-STAMP_JITTER_S, STAMP_JITTER_S) * 1e9)
                header = messages.Header(stamp=messages.time_msg(stamp), frame_id=frame)
                self.pub[cam].publish(messages.image_msg(arr, enc, header))
                self.sent[cam].append(stamp)
            self.k += 1
            next_t += PERIOD_S
            time.sleep(max(0.0, next_t - time.monotonic()))


def settle(probe: "Probe", topic: str = "fusion/status", quiet_s: float = 1.0, timeout_s: float = 15.0) -> None:
    """Wait until ``topic`` stopped growing for ``quiet_s`` (the pipeline finished its last frame)."""
    deadline, last, since = time.monotonic() + timeout_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        n = probe.count(topic)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return
        time.sleep(0.05)
    raise AssertionError(f"{topic} kept changing for {timeout_s} s")


class Probe:
    """Subscribes to output topics and keeps every message (thread-safe)."""

    def __init__(self, node, topics: dict):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.lock = threading.Lock()
        self.msgs = defaultdict(list)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic, msg_type in topics.items():
            node.create_subscription(msg_type, topic, lambda m, t=topic: self._keep(t, m), qos)

    def _keep(self, topic, msg):
        with self.lock:
            self.msgs[topic].append(msg)

    def count(self, topic) -> int:
        with self.lock:
            return len(self.msgs[topic])

    def get(self, topic) -> list:
        with self.lock:
            return list(self.msgs[topic])


def output_topics(prefix: str = "") -> dict:
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from ivif_ros.msg import DetectionArray, FusionStatus

    return {
        f"{prefix}fused/image": Image,
        f"{prefix}semantic/mask": Image,
        f"{prefix}semantic/color": Image,
        f"{prefix}detections/image": Image,
        f"{prefix}detections": DetectionArray,
        f"{prefix}fusion/status": FusionStatus,
        "/diagnostics": DiagnosticArray,
    }


def fusion_diagnostics_since(probe: Probe, start: int = 0) -> list[dict[str, str]]:
    """Key/values (plus _level, _message) of the fusion node's /diagnostics statuses from message ``start`` on."""
    return [
        {kv.key: kv.value for kv in status.values} | {"_level": status.level, "_message": status.message}
        for array in probe.get("/diagnostics")[start:]
        for status in array.status
        if status.name.endswith(": fusion")
    ]


def fusion_diagnostics(probe: Probe) -> dict[str, str]:
    """The latest fusion node status on /diagnostics."""
    statuses = fusion_diagnostics_since(probe)
    return statuses[-1] if statuses else {}


def assert_every_message_accounted(d: dict[str, str], sent: dict[str, list]) -> None:
    """The node's counters add up: every input message and every synced pair has one fate."""
    n = lambda key: int(d.get(key, 0))  # noqa: E731
    for cam, name, single in (("ir", "ir", "ir_only"), ("vis", "visible", "visible_only")):
        drops = sum(int(v) for k, v in d.items() if k.startswith(f"drop {name}: "))
        singles = n(f"frames {single}") + n(f"dropped {single}: pipeline_busy") + n(f"failed {single}: invalid input")
        # best-effort sensor QoS may lose a message before the node sees it; what it saw, it accounts for
        assert 0.9 * len(sent[cam]) <= n(f"received {name}") <= len(sent[cam]), f"{name}: {len(sent[cam])} sent, {d}"
        assert n(f"received {name}") == (
            n("pairs matched") + drops + singles + n(f"rejected {name}: invalid image") + _pending(d, name)
        ), f"{name} messages unaccounted for: {d}"
    assert n("pairs matched") == n("frames fused") + n("dropped fused: pipeline_busy") + n(
        "failed fused: invalid input"
    ), f"synced pairs unaccounted for: {d}"


def _pending(d, name) -> int:
    return int(d.get(f"pending {name}", 0))
