"""10,000 malformed and edge-case Image messages into the real fusion node over DDS.

The 10,000 come from a probe node in the node's process, 2,000 more from a separate
process (reliability_fuzz_publisher.py, shared-memory transport); reliable QoS, so every
message reaches the node and the counts are exact. The seeded stream
(``reliability_fuzz_stream.fuzz_stream``) has one valid IR/visible pair per round, mixed
with messages that have exactly one defect (wrong step, size or data length, an
unsupported encoding, zero or huge declared size, a foreign frame_id) and with valid but
awkward ones (NaN/inf in 32FC1, big-endian, row padding, tiny frames, stale and
out-of-order stamps). The oracle knows which field each defect is in, so the node's
``invalid <camera>: <field>`` counters on /diagnostics must match it exactly.

What must hold: the node and its worker keep running; every fused image is well-formed
(rgb8, the size of its visible input, consistent step/data) and carries the stamp of a
valid visible image (nothing is published for a rejected message);
every received message has one fate; and the rejection log names the topic and the field,
at most once per throttle period per camera and field.

Set ``IVIF_FUZZ_SEED`` to replay another stream (failure messages print the seed) and
``IVIF_FUZZ_MESSAGES`` for a shorter or longer one.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from fusion_graph_harness import (  # noqa: F401  (fixtures)
    assert_every_message_accounted,
    engine_cache,
    fusion_diagnostics,
    student_weights,
)
from reliability_fuzz_stream import FRAME, H, PERIOD_NS, TOPIC, W, fuzz_stream, valid_ir, valid_vis
from reliability_graph import fusion_graph, settle, stamp_of, wait_for_subscribers  # noqa: F401  (fixture)
from ros_harness import SUPPORT_DIR

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("engine_cache")]

SEED = int(os.environ.get("IVIF_FUZZ_SEED", "20261122"))
NAME = {"ir": "ir", "vis": "visible"}  # camera names in the node's counters
LOG_THROTTLE_S = 5.0
SLOP_S = 0.02  # the default sync.slop_s


@pytest.fixture
def fuzz_graph(fusion_graph):
    """The fusion node at the fuzz size and deep reliable publishers for both cameras."""
    from sensor_msgs.msg import Image

    def start(**overrides):
        fusion, probe, probe_node, thread = fusion_graph(
            **{
                "engine.width": W,
                "engine.height": H,
                "diagnostics.log_throttle_s": LOG_THROTTLE_S,
                "dropout.timeout_s": 5.0,
                **overrides,
            }
        )
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {cam: probe_node.create_publisher(Image, TOPIC[cam], qos) for cam in TOPIC}
        wait_for_subscribers(pubs.values())
        return fusion, probe, pubs, probe_node, thread

    return start


def publish_in_bursts(stream, pubs, fusion, thread, burst: int = 200, timeout_s: float = 60.0) -> None:
    """Publish ``burst`` messages, then wait until the node has taken all of them (bounded queues)."""
    published = 0
    for start in range(0, len(stream), burst):
        for s in stream[start : start + burst]:
            pubs[s.cam].publish(s.msg)
        published += len(stream[start : start + burst])
        deadline = time.monotonic() + timeout_s
        while True:
            c = fusion.stats.snapshot_counts()
            if c.get("received ir", 0) + c.get("received visible", 0) >= published:
                break
            assert thread.is_alive(), "the executor thread died (an exception escaped a callback)"
            assert time.monotonic() < deadline, f"the node took {c} of {published} messages (seed {SEED})"
            time.sleep(0.01)


def check_outputs(probe, stream) -> int:
    """Every fused image and mask is well-formed and answers a valid visible image.

    A late valid image can be fused: a stale one resets the pairing (the policy takes a stamp
    seconds old for a clock jump), which forgets the newest stamps, and the cameras' callbacks
    interleave differently from the publishing order. It is then paired within slop like any other."""
    vis_size = {stamp_of(s.msg): (s.msg.width, s.msg.height) for s in stream if s.cam == "vis" and s.defect is None}
    fused, masks, statuses = probe.get("fused/image"), probe.get("semantic/mask"), probe.get("fusion/status")
    assert fused and len(fused) == len(masks) == len(statuses)
    for image, mask, status in zip(fused, masks, statuses):
        stamp = stamp_of(image)
        assert stamp in vis_size, f"output for a stamp no valid visible image had: {stamp} (seed {SEED})"
        w, h = vis_size[stamp]
        assert (image.encoding, image.width, image.height, image.step) == ("rgb8", w, h, 3 * w), f"seed {SEED}"
        assert len(image.data) == 3 * w * h and image.header.frame_id == FRAME["vis"]
        assert (mask.encoding, mask.width, mask.height, len(mask.data)) == ("mono8", w, h, w * h)
        assert stamp_of(mask) == stamp_of(status) == stamp
        assert status.mode == "fused" and 0 <= status.pair_skew_ms <= SLOP_S * 1e3
        assert all(
            math.isfinite(getattr(status, f)) and getattr(status, f) >= 0
            for f in ("register_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "publish_ms", "total_ms")
        )
    return len(fused)


def test_ten_thousand_malformed_and_edge_case_images(fuzz_graph, capfd):
    n = int(os.environ.get("IVIF_FUZZ_MESSAGES", "10000"))
    fusion, probe, pubs, probe_node, thread = fuzz_graph()
    t0 = probe_node.get_clock().now().nanoseconds
    stream = fuzz_stream(SEED, n, t0)
    started = time.monotonic()
    publish_in_bursts(stream, pubs, fusion, thread)
    settle(probe)
    time.sleep(0.6)  # two /diagnostics periods after the last frame
    elapsed = time.monotonic() - started

    summary = check_run(fusion, probe, thread, stream, capfd.readouterr().err, elapsed, SEED)
    print(f"fuzz: {n} messages in {elapsed:.1f} s, {summary}")


def test_fuzz_from_another_process(fuzz_graph, ros_env, capfd):
    """A subset over DDS between processes (shared memory transport), from an independent publisher."""
    seed, n = SEED + 1, 2000
    fusion, probe, _, probe_node, thread = fuzz_graph()
    t0 = probe_node.get_clock().now().nanoseconds
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            str(SUPPORT_DIR / "reliability_fuzz_publisher.py"),
            "--seed",
            str(seed),
            "--messages",
            str(n),
            "--t0-ns",
            str(t0),
        ],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and f"published {n}" in proc.stdout, proc.stdout + proc.stderr
    settle(probe)
    time.sleep(0.6)
    elapsed = time.monotonic() - started
    summary = check_run(fusion, probe, thread, fuzz_stream(seed, n, t0), capfd.readouterr().err, elapsed, seed)
    print(f"fuzz from another process: {n} messages in {elapsed:.1f} s, {summary}")


def check_run(fusion, probe, thread, stream, log: str, elapsed: float, seed: int) -> str:
    """Everything the fuzz tests require of the node after ``stream``; returns a one-line summary."""
    assert thread.is_alive() and fusion._worker.is_alive(), "the node stopped working"
    frames = check_outputs(probe, stream)
    d = fusion_diagnostics(probe)
    sent = {cam: [stamp_of(s.msg) for s in stream if s.cam == cam] for cam in ("ir", "vis")}
    for cam in ("ir", "vis"):  # reliable QoS: exact
        assert int(d[f"received {NAME[cam]}"]) == len(sent[cam]), (cam, d)
    assert_every_message_accounted(d, sent)
    assert int(d["frames fused"]) == frames and "failed fused: invalid input" not in d, d

    expected = Counter(f"invalid {NAME[s.cam]}: {s.defect}" for s in stream if s.defect)
    counted = {k: int(v) for k, v in d.items() if k.startswith("invalid ")}
    assert counted == dict(expected), f"rejections by field differ from the oracle (seed {seed})"
    for cam in ("ir", "vis"):
        assert int(d[f"rejected {NAME[cam]}: invalid image"]) == sum(
            v for k, v in expected.items() if k.startswith(f"invalid {NAME[cam]}:")
        )
    drops = {k: int(v) for k, v in d.items() if k.startswith("drop ")}
    assert drops.get("drop ir: out_of_order", 0) > 0 and drops.get("drop visible: out_of_order", 0) > 0, drops
    assert int(d["non-finite pixels ir"]) > 0

    # One clear line per camera and field, at most once per throttle period each.
    lines = [line for line in log.splitlines() if "message rejected" in line]
    field_words = {
        "encoding": "'encoding'",
        "size": "'width' and 'height'",
        "step": "'step'",
        "data": "'data'",
        "frame_id": "'header.frame_id'",
    }
    for key in expected:
        name, field = re.match(r"invalid (\w+): (\w+)", key).groups()
        topic = TOPIC["ir" if name == "ir" else "vis"]
        assert any(
            f"topic {topic}:" in line and field_words[field] in line and f"'invalid {name}: {field}'" in line
            for line in lines
        ), f"no log line for {key}"
    periods = elapsed / LOG_THROTTLE_S + 1
    assert len(lines) <= len(expected) * math.ceil(periods), f"{len(lines)} rejection log lines in {elapsed:.0f} s"
    return f"{frames} fused frames, {sum(expected.values())} rejections, {len(lines)} log lines, drops {drops}"


def test_clock_jumping_back_under_sim_time(fuzz_graph):
    """/clock goes 30 s back mid-stream (a looping bag, a restarted simulator): no crash, the pairing
    resets, fusion continues, and every message is still accounted for."""
    from rosgraph_msgs.msg import Clock

    from ivif_ros.nodes import messages

    fusion, probe, pubs, probe_node, thread = fuzz_graph(use_sim_time=True)
    clock = probe_node.create_publisher(Clock, "/clock", 10)
    rng = np.random.default_rng(SEED)
    sent = {"ir": [], "vis": []}
    sim = 1_000_000 * 10**9
    fused_before = 0
    for phase in range(2):
        for _ in range(40):
            sim += PERIOD_NS
            clock.publish(Clock(clock=messages.time_msg(sim)))
            for cam in ("ir", "vis"):
                msg = valid_ir(rng, sim) if cam == "ir" else valid_vis(rng, sim)
                pubs[cam].publish(msg)
                sent[cam].append(sim)
            time.sleep(0.01)
        if phase == 0:
            settle(probe)
            fused_before = probe.count("fused/image")
            sim -= 30 * 10**9  # the clock and the stamps jump back
            # As with `ros2 bag play --clock`, the clock leads the images: the node must see the
            # jump before the first image of the new timeline, or that image's age is measured
            # against the old clock (a race between the /clock and image subscriptions).
            clock.publish(Clock(clock=messages.time_msg(sim)))
            deadline = time.monotonic() + 5.0
            while fusion.get_clock().now().nanoseconds > sim and time.monotonic() < deadline:
                time.sleep(0.01)
            assert fusion.get_clock().now().nanoseconds <= sim, "the node did not see the clock jump back"
    settle(probe)
    for _ in range(20):  # timers (dropout check, /diagnostics) run on the simulated clock: keep it going
        sim += 50_000_000
        clock.publish(Clock(clock=messages.time_msg(sim)))
        time.sleep(0.05)

    assert thread.is_alive() and fusion._worker.is_alive()
    assert fused_before > 0 and probe.count("fused/image") > fused_before, "fusion did not continue after the jump"
    d = fusion_diagnostics(probe)
    # The jumped-back stamps were taken as a new timeline, not dropped as out-of-order until
    # the clock caught up again 30 s later.
    assert not any(k.endswith("out_of_order") for k in d), d
    assert d["mode"] == "fused", d
    assert_every_message_accounted(d, sent)
    jump_at = sent["vis"][39]
    after = probe.get("fusion/status")[fused_before:]
    assert all(stamp_of(s) < jump_at for s in after)
    assert all(math.isfinite(s.total_ms) and 0 <= s.visible_age_ms < 5000 for s in after), after


def settled_diagnostics(fusion, probe, thread) -> dict[str, str]:
    """Once the node is quiet and two /diagnostics periods have passed: its latest status,
    after checking that the executor and the fusion worker both survived."""
    settle(probe)
    time.sleep(0.6)
    assert fusion._worker.is_alive() and thread.is_alive()
    return fusion_diagnostics(probe)


def test_decodable_but_unusable_ir_paired_with_a_valid_image(fuzz_graph):
    """A 2-channel IR image (8UC2) decodes fine, and with the visible image of the same stamp it
    would reach the pipeline, whose IR normalisation has no luma for it: that killed the worker
    thread (the node then never published again). It is rejected at the input instead."""
    from reliability_fuzz_stream import raw_image

    fusion, probe, pubs, probe_node, thread = fuzz_graph()
    rng = np.random.default_rng(SEED)
    t0 = probe_node.get_clock().now().nanoseconds
    for k in range(20):
        stamp = t0 + k * PERIOD_NS
        ir = (
            raw_image("ir", stamp, height=H, width=W, encoding="8UC2", step=2 * W, data=bytes(2 * W * H))
            if k % 2
            else valid_ir(rng, stamp)
        )
        pubs["ir"].publish(ir)
        pubs["vis"].publish(valid_vis(rng, stamp))
        time.sleep(0.03)
    d = settled_diagnostics(fusion, probe, thread)
    assert d["invalid ir: encoding"] == "10" and int(d["frames fused"]) > 0, d
    assert all(stamp_of(m) in {t0 + k * PERIOD_NS for k in range(0, 20, 2)} for m in probe.get("fused/image"))


def test_broken_camera_info_is_reported_not_fatal(fuzz_graph):
    """registration.mode camera_info with a driver that publishes a singular or NaN K: those frames
    fail as invalid input (counted, logged), the worker lives, and a good K restores fusion.
    A singular K used to raise LinAlgError in the worker, which then died."""
    from sensor_msgs.msg import CameraInfo

    fusion, probe, pubs, probe_node, thread = fuzz_graph(**{"registration.mode": "camera_info"})
    infos = {
        cam: probe_node.create_publisher(CameraInfo, f"{name}/camera_info", 10)
        for cam, name in (("ir", "ir"), ("vis", "visible"))
    }
    good = [80.0, 0.0, W / 2, 0.0, 80.0, H / 2, 0.0, 0.0, 1.0]
    rng = np.random.default_rng(SEED)
    t0 = probe_node.get_clock().now().nanoseconds
    fused_per_phase = []
    for phase, k_ir in enumerate((good, [1.0, 0, 0, 0, 0, 0, 0, 0, 0], [math.nan] * 9, good)):
        for cam, k in (("ir", k_ir), ("vis", good)):
            infos[cam].publish(CameraInfo(width=W, height=H, k=k))
        time.sleep(0.2)
        before = probe.count("fused/image")
        for i in range(10):
            stamp = t0 + (phase * 10 + i) * PERIOD_NS
            pubs["ir"].publish(valid_ir(rng, stamp))
            pubs["vis"].publish(valid_vis(rng, stamp))
            time.sleep(0.03)
        settle(probe, quiet_s=0.5)
        fused_per_phase.append(probe.count("fused/image") - before)
    time.sleep(0.6)
    d = fusion_diagnostics(probe)
    assert fusion._worker.is_alive() and thread.is_alive()
    assert fused_per_phase[0] > 0 and fused_per_phase[1] == fused_per_phase[2] == 0 and fused_per_phase[3] > 0, (
        fused_per_phase
    )
    assert int(d["failed fused: invalid input"]) > 0, d


def test_an_unexpected_error_costs_one_frame_not_the_worker(fuzz_graph):
    """IR-only output takes its size from the visible CameraInfo when no visible image came yet. A
    driver that claims 1,000,000 x 1,000,000 makes registration fail to allocate (MemoryError, at
    once, on any machine): such frames fail as an internal error, counted and logged with the cause,
    and the node fuses again as soon as the visible camera publishes."""
    from sensor_msgs.msg import CameraInfo

    fusion, probe, pubs, probe_node, thread = fuzz_graph(**{"dropout.timeout_s": 0.3})
    info = probe_node.create_publisher(CameraInfo, "visible/camera_info", 10)
    info.publish(CameraInfo(width=1_000_000, height=1_000_000, k=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]))
    time.sleep(0.5)  # longer than dropout.timeout_s: IR alone is ir_only at once
    rng = np.random.default_rng(SEED)
    t0 = probe_node.get_clock().now().nanoseconds
    for i in range(30):
        stamp = t0 + i * PERIOD_NS
        pubs["ir"].publish(valid_ir(rng, stamp))
        if i >= 15:
            pubs["vis"].publish(valid_vis(rng, stamp))
        time.sleep(0.04)
    d = settled_diagnostics(fusion, probe, thread)
    assert int(d["failed ir_only: internal error"]) > 0 and int(d["frames fused"]) > 0, d
    assert all(m.mode == "fused" for m in probe.get("fusion/status")), "output from a failed frame"
