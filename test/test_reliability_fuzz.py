"""10,000 malformed and edge-case Image messages into the real fusion node over DDS.

A probe node publishes (reliable QoS, so every message reaches the node and the counts are
exact) a seeded stream built by :func:`fuzz_stream`: one valid IR/visible pair per round,
mixed with messages that have exactly one defect (wrong step, size or data length, an
unsupported encoding, zero or huge declared size, a foreign frame_id) and with valid but
awkward ones (NaN/inf in 32FC1, big-endian, row padding, tiny frames, stale and
out-of-order stamps). The oracle knows which field each defect is in, so the node's
``invalid <camera>: <field>`` counters on /diagnostics must match it exactly.

What must hold: the node and its worker keep running; every fused image is well-formed
(rgb8, the size of its visible input, consistent step/data) and carries the stamp of a
valid, in-order visible image (nothing is published for a rejected or dropped message);
every received message has one fate; and the rejection log names the topic and the field,
at most once per throttle period per camera and field.

Set ``IVIF_FUZZ_SEED`` to replay another stream (failure messages print the seed) and
``IVIF_FUZZ_MESSAGES`` for a shorter or longer one.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from fusion_graph_harness import (  # noqa: F401  (fixtures)
    assert_every_message_accounted, engine_cache, fusion_diagnostics, student_weights,
)
from reliability_graph import fusion_graph, settle, stamp_of, wait_for_subscribers  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("engine_cache")

W, H = 64, 48
SEED = int(os.environ.get("IVIF_FUZZ_SEED", "20261122"))
FRAME = {"ir": "ir_optical", "vis": "visible_optical"}
TOPIC = {"ir": "/ir/image_raw", "vis": "/visible/image_raw"}
NAME = {"ir": "ir", "vis": "visible"}  # camera names in the node's counters
PERIOD_NS = 33_333_333
LOG_THROTTLE_S = 5.0
SLOP_S = 0.02  # the default sync.slop_s


@dataclass
class Sent:
    cam: str
    msg: object
    defect: str | None  # the field the node must reject it for; None: valid


def _image(cam, arr, encoding, stamp_ns, *, bigendian=False, step=None, frame_id=None):
    from sensor_msgs.msg import Image

    from ivif_ros.core.image_codec import array_to_image_fields, fill_image_msg
    from ivif_ros.nodes import messages

    msg = fill_image_msg(Image(), array_to_image_fields(arr, encoding, bigendian=bigendian, step=step))
    msg.header = messages.Header(stamp=messages.time_msg(stamp_ns), frame_id=FRAME[cam] if frame_id is None else frame_id)
    return msg


def _raw(cam, stamp_ns, *, height, width, encoding, step, data, bigendian=0):
    from sensor_msgs.msg import Image

    from ivif_ros.nodes import messages

    # int(): numpy integers pass rclpy's field setters but fail in its C serialiser
    return Image(header=messages.Header(stamp=messages.time_msg(stamp_ns), frame_id=FRAME[cam]), height=int(height),
                 width=int(width), encoding=encoding, is_bigendian=int(bigendian), step=int(step), data=bytes(data))


def valid_ir(rng, stamp_ns, size=(W, H)):
    """A decodable IR image: one of the encodings thermal drivers use, some awkward."""
    w, h = size
    kelvin = (290 + 20 * rng.random((h, w))).astype(np.float32)
    kind = rng.integers(6)
    if kind == 0:
        return _image("ir", (kelvin * 100).astype(np.uint16), "mono16", stamp_ns)
    if kind == 1:
        return _image("ir", (kelvin * 100).astype(np.uint16), "mono16", stamp_ns, bigendian=True)
    if kind == 2:  # dead pixels and saturation in a radiometric image
        bad = kelvin.copy()
        bad.flat[rng.choice(bad.size, 1 + rng.integers(bad.size), replace=False)] = rng.choice(
            [np.nan, np.inf, -np.inf])
        return _image("ir", bad, "32FC1", stamp_ns, bigendian=bool(rng.integers(2)))
    if kind == 3:
        return _image("ir", np.full((h, w), np.nan, np.float32), "32FC1", stamp_ns)  # a blind frame
    if kind == 4:  # row padding, as some drivers align rows
        return _image("ir", rng.integers(0, 256, (h, w), np.uint8), "mono8", stamp_ns, step=w + 13)
    return _image("ir", rng.integers(0, 256, (h + 16, w + 16), np.uint8), "8UC1", stamp_ns)  # resized on registration


def valid_vis(rng, stamp_ns, size=(W, H)):
    w, h = size
    encoding = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC3")[rng.integers(6)]
    channels = {"mono8": 1, "rgba8": 4, "bgra8": 4}.get(encoding, 3)
    arr = rng.integers(0, 256, (h, w) if channels == 1 else (h, w, channels), np.uint8)
    msg = _image("vis", arr, encoding, stamp_ns, step=w * channels + int(rng.integers(2)) * 3)
    msg.is_bigendian = int(rng.integers(2))  # meaningless for 8-bit samples: must be ignored
    return msg


def defective(rng, cam, stamp_ns) -> tuple[object, str]:
    """A message with exactly one defect, and the field the node must name."""
    kind = rng.integers(9)
    if kind == 0:  # step shorter than a row
        return _raw(cam, stamp_ns, height=H, width=W, encoding="mono8", step=W - 1 - rng.integers(W - 1),
                    data=bytes(W * H)), "step"
    if kind == 1:  # odd step for 2-byte samples (IR) / visible must be 8-bit
        if cam == "vis":
            return _raw(cam, stamp_ns, height=H, width=W, encoding="mono16", step=2 * W,
                        data=bytes(2 * W * H)), "encoding"
        return _raw(cam, stamp_ns, height=H, width=W, encoding="mono16", step=2 * W + 1,
                    data=bytes((2 * W + 1) * H)), "step"
    if kind == 2:  # truncated or overlong data
        n = W * 3 * H + int(rng.choice([-1, 1])) * int(1 + rng.integers(W * 3 * H - 1))
        return _raw(cam, stamp_ns, height=H, width=W, encoding="rgb8", step=W * 3, data=bytes(n)), "data"
    if kind == 3:  # not a raw image encoding
        enc = ("bayer_rggb8", "yuv422", "jpeg", "", "16UC5", "RGB8", "mono32", "8UC3 ")[rng.integers(8)]
        return _raw(cam, stamp_ns, height=H, width=W, encoding=enc, step=W, data=bytes(W * H)), "encoding"
    if kind == 4:  # zero size
        w, h = (0, H) if rng.integers(2) else (W, 0)
        return _raw(cam, stamp_ns, height=h, width=w, encoding="mono8", step=w, data=b""), "size"
    if kind == 5:  # a huge declared size with a tiny payload (must not allocate 10 GB)
        w, h = int(rng.integers(50_000, 100_001)), int(rng.integers(50_000, 100_001))
        return _raw(cam, stamp_ns, height=h, width=w, encoding="mono8", step=w, data=bytes(64)), "data"
    if kind == 6:  # a second camera on the same topic
        msg = valid_ir(rng, stamp_ns) if cam == "ir" else valid_vis(rng, stamp_ns)
        msg.header.frame_id = "other_camera_optical"
        return msg, "frame_id"
    if kind == 7:  # 16-bit colour IR / float visible
        if cam == "ir":
            return _raw(cam, stamp_ns, height=H, width=W, encoding="rgb16", step=6 * W,
                        data=bytes(6 * W * H)), "encoding"
        return _raw(cam, stamp_ns, height=H, width=W, encoding="32FC1", step=4 * W, data=bytes(4 * W * H)), "encoding"
    # big-endian flag with a wrong step for 4-byte floats
    return _raw(cam, stamp_ns, height=H, width=W, encoding="32FC1", step=4 * W + 2, data=bytes((4 * W + 2) * H),
                bigendian=1), ("step" if cam == "ir" else "encoding")


def fuzz_stream(seed: int, n_messages: int, t0_ns: int):
    """Rounds of: one valid pair (same stamp, sometimes a tiny frame), then 0-8 extra messages (defects,
    stale or out-of-order stamps). Stamps are unique across the stream, so an output stamp identifies
    its input."""
    rng = np.random.default_rng(seed)
    out: list[Sent] = []
    r = 0
    while len(out) < n_messages:
        stamp = t0_ns + r * PERIOD_NS
        size = (W, H)
        if r > 0 and rng.random() < 0.02:  # tiny frames: the pipeline pads them to 32x32
            size = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        order = ("ir", "vis") if rng.integers(2) else ("vis", "ir")
        for cam in order:
            msg = valid_ir(rng, stamp, size) if cam == "ir" else valid_vis(rng, stamp, size)
            out.append(Sent(cam, msg, None))
        for k in range(rng.integers(0, 9) if r > 0 else 0):
            cam = ("ir", "vis")[rng.integers(2)]
            odd = stamp + 1000 * (k + 1)  # unique stamp for this extra message
            roll = rng.random()
            if roll < 0.75:
                msg, field = defective(rng, cam, odd)
                out.append(Sent(cam, msg, field))
            elif roll < 0.9:  # out of order: behind this camera's newest stamp (dropped by the pairing)
                old = stamp - PERIOD_NS // 2 - 1000 * (k + 1)
                out.append(Sent(cam, valid_ir(rng, old) if cam == "ir" else valid_vis(rng, old), None))
            else:  # stale by seconds: the pairing treats it as a clock jump and resets
                old = stamp - 5_000_000_000 - 1000 * (k + 1)
                out.append(Sent(cam, valid_ir(rng, old) if cam == "ir" else valid_vis(rng, old), None))
                break  # after a reset, further late messages of this round could legitimately pair
        r += 1
    return out[:n_messages]


@pytest.fixture
def fuzz_graph(fusion_graph):
    """The fusion node at the fuzz size and deep reliable publishers for both cameras."""
    from sensor_msgs.msg import Image

    def start(**overrides):
        fusion, probe, probe_node, thread = fusion_graph(**{
            "engine.width": W, "engine.height": H, "diagnostics.log_throttle_s": LOG_THROTTLE_S,
            "dropout.timeout_s": 5.0, **overrides})
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {cam: probe_node.create_publisher(Image, TOPIC[cam], qos) for cam in TOPIC}
        wait_for_subscribers(pubs.values())
        return fusion, probe, pubs, probe_node, thread

    return start


def publish_in_bursts(stream, pubs, fusion, thread, burst: int = 200, timeout_s: float = 60.0) -> None:
    """Publish ``burst`` messages, then wait until the node has taken all of them (bounded queues)."""
    published = 0
    for start in range(0, len(stream), burst):
        for s in stream[start:start + burst]:
            pubs[s.cam].publish(s.msg)
        published += len(stream[start:start + burst])
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
        assert all(math.isfinite(getattr(status, f)) and getattr(status, f) >= 0 for f in (
            "register_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "publish_ms", "total_ms"))
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

    assert thread.is_alive() and fusion._worker.is_alive(), "the node stopped working"
    frames = check_outputs(probe, stream)
    d = fusion_diagnostics(probe)
    sent = {cam: [stamp_of(s.msg) for s in stream if s.cam == cam] for cam in ("ir", "vis")}
    assert_every_message_accounted(d, sent)
    assert int(d["frames fused"]) == frames and "failed fused: invalid input" not in d, d

    expected = Counter(f"invalid {NAME[s.cam]}: {s.defect}" for s in stream if s.defect)
    counted = {k: int(v) for k, v in d.items() if k.startswith("invalid ")}
    assert counted == dict(expected), f"rejections by field differ from the oracle (seed {SEED})"
    for cam in ("ir", "vis"):
        assert int(d[f"rejected {NAME[cam]}: invalid image"]) == sum(
            v for k, v in expected.items() if k.startswith(f"invalid {NAME[cam]}:"))
    drops = {k: int(v) for k, v in d.items() if k.startswith("drop ")}
    assert drops.get("drop ir: out_of_order", 0) > 0 and drops.get("drop visible: out_of_order", 0) > 0, drops
    assert int(d["non-finite pixels ir"]) > 0

    # One clear line per camera and field, at most once per throttle period each.
    log = capfd.readouterr().err
    lines = [line for line in log.splitlines() if "message rejected" in line]
    field_words = {"encoding": "'encoding'", "size": "'width' and 'height'", "step": "'step'", "data": "'data'",
                   "frame_id": "'header.frame_id'"}
    for key in expected:
        name, field = re.match(r"invalid (\w+): (\w+)", key).groups()
        topic = TOPIC["ir" if name == "ir" else "vis"]
        assert any(f"topic {topic}:" in line and field_words[field] in line and f"'invalid {name}: {field}'" in line
                   for line in lines), f"no log line for {key}"
    periods = elapsed / LOG_THROTTLE_S + 1
    assert len(lines) <= len(expected) * math.ceil(periods), f"{len(lines)} rejection log lines in {elapsed:.0f} s"
    print(f"fuzz: {n} messages in {elapsed:.1f} s, {frames} fused frames, {sum(expected.values())} rejections, "
          f"{len(lines)} log lines, drops {drops}")


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
