"""The seeded stream of malformed and edge-case Image messages of the fuzz tests.

Shared by test_reliability_fuzz.py (which also uses it as the oracle) and
reliability_fuzz_publisher.py (which publishes a stream from another process).
Every message has a unique stamp, so an output stamp identifies its input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

W, H = 64, 48
FRAME = {"ir": "ir_optical", "vis": "visible_optical"}
TOPIC = {"ir": "/ir/image_raw", "vis": "/visible/image_raw"}
PERIOD_NS = 33_333_333


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
    msg.header = messages.Header(
        stamp=messages.time_msg(stamp_ns), frame_id=FRAME[cam] if frame_id is None else frame_id
    )
    return msg


def raw_image(cam, stamp_ns, *, height, width, encoding, step, data, bigendian=0):
    from sensor_msgs.msg import Image

    from ivif_ros.nodes import messages

    # int(): numpy integers pass rclpy's field setters but fail in its C serialiser
    return Image(
        header=messages.Header(stamp=messages.time_msg(stamp_ns), frame_id=FRAME[cam]),
        height=int(height),
        width=int(width),
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=int(step),
        data=bytes(data),
    )


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
            [np.nan, np.inf, -np.inf]
        )
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
        return raw_image(
            cam, stamp_ns, height=H, width=W, encoding="mono8", step=W - 1 - rng.integers(W - 1), data=bytes(W * H)
        ), "step"
    if kind == 1:  # odd step for 2-byte samples (IR) / visible must be 8-bit
        if cam == "vis":
            return raw_image(
                cam, stamp_ns, height=H, width=W, encoding="mono16", step=2 * W, data=bytes(2 * W * H)
            ), "encoding"
        return raw_image(
            cam, stamp_ns, height=H, width=W, encoding="mono16", step=2 * W + 1, data=bytes((2 * W + 1) * H)
        ), "step"
    if kind == 2:  # truncated or overlong data
        n = W * 3 * H + int(rng.choice([-1, 1])) * int(1 + rng.integers(W * 3 * H - 1))
        return raw_image(cam, stamp_ns, height=H, width=W, encoding="rgb8", step=W * 3, data=bytes(n)), "data"
    if kind == 3:  # not a raw image encoding
        enc = ("bayer_rggb8", "yuv422", "jpeg", "", "16UC5", "RGB8", "mono32", "8UC3 ")[rng.integers(8)]
        return raw_image(cam, stamp_ns, height=H, width=W, encoding=enc, step=W, data=bytes(W * H)), "encoding"
    if kind == 4:  # zero size
        w, h = (0, H) if rng.integers(2) else (W, 0)
        return raw_image(cam, stamp_ns, height=h, width=w, encoding="mono8", step=w, data=b""), "size"
    if kind == 5:  # a huge declared size with a tiny payload (must not allocate 10 GB)
        w, h = int(rng.integers(50_000, 100_001)), int(rng.integers(50_000, 100_001))
        return raw_image(cam, stamp_ns, height=h, width=w, encoding="mono8", step=w, data=bytes(64)), "data"
    if kind == 6:  # a second camera on the same topic
        msg = valid_ir(rng, stamp_ns) if cam == "ir" else valid_vis(rng, stamp_ns)
        msg.header.frame_id = "other_camera_optical"
        return msg, "frame_id"
    if kind == 7:  # 16-bit colour or 2-channel IR / float or 2-channel visible: decodable, but not a camera image
        if cam == "ir":
            encoding, bytes_per_pixel = (("rgb16", 6), ("8UC2", 2))[rng.integers(2)]
        else:
            encoding, bytes_per_pixel = (("32FC1", 4), ("8UC2", 2))[rng.integers(2)]
        return raw_image(
            cam,
            stamp_ns,
            height=H,
            width=W,
            encoding=encoding,
            step=bytes_per_pixel * W,
            data=bytes(bytes_per_pixel * W * H),
        ), "encoding"
    # big-endian flag with a wrong step for 4-byte floats
    return raw_image(
        cam, stamp_ns, height=H, width=W, encoding="32FC1", step=4 * W + 2, data=bytes((4 * W + 2) * H), bigendian=1
    ), ("step" if cam == "ir" else "encoding")


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
