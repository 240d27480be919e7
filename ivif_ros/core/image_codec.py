"""The one ``sensor_msgs/msg/Image`` <-> numpy codec of ivif_ros.

Used by the bag code (rosbags messages), the rclpy nodes (instead of cv_bridge, which
is not available from pip and mishandles 16-bit and row padding) and replay. It is
duck-typed: anything with ``height, width, encoding, is_bigendian, step, data`` works,
so rclpy messages, rosbags dataclasses and plain namespaces are all accepted.

Decoding is zero-copy where the wire layout allows it: the returned array is a strided
view of ``msg.data`` (row padding from ``step`` is skipped by the stride, not copied).
A copy is made only for byte-swapping big-endian data. Views of immutable ``bytes``
are read-only; call ``.copy()`` before writing into them.

Arrays are ``HxW`` for one channel and ``HxWxC`` otherwise, in the channel order of the
encoding (``bgr8`` stays BGR; use :func:`to_rgb` for RGB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ivif_ros.errors import InputError

# Named encodings of sensor_msgs/image_encodings.hpp: (numpy dtype, channels).
NAMED_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "rgb16": (np.dtype(np.uint16), 3),
    "bgr16": (np.dtype(np.uint16), 3),
    "rgba16": (np.dtype(np.uint16), 4),
    "bgra16": (np.dtype(np.uint16), 4),
}

# OpenCV-style encodings "<depth>C<channels>", e.g. 8UC1, 16UC1, 32FC1, 8UC3: the depths
# that image_encodings.hpp defines.
# Largest image decoded (pixels) and largest 'data' field (bytes): beyond any camera this package
# serves, and refused before anything is allocated, so one hostile frame cannot exhaust memory.
MAX_IMAGE_PIXELS = 8192 * 8192
MAX_IMAGE_BYTES = 8192 * 8192 * 4 * 2  # 8192x8192 of 4 channels x 16 bit, 512 MiB

_CV_ENCODING = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$")
_CV_DEPTHS = {"8U": "u1", "8S": "i1", "16U": "u2", "16S": "i2", "32S": "i4", "32F": "f4", "64F": "f8"}


class ImageFieldError(InputError):
    """An Image message whose fields contradict each other or the encoding.

    ``field`` names the offending part (``encoding``, ``size``, ``step``, ``data``, or a
    caller's own such as ``frame_id``) so that receivers can count rejections by reason.
    """

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def encoding_layout(encoding: str, topic: str = "") -> tuple[np.dtype, int]:
    """Return ``(dtype, channels)`` of an image encoding (native byte order).

    Raises ``InputError`` for unknown encodings (e.g. compressed or Bayer images,
    which this codec does not demosaic).
    """
    if encoding in NAMED_ENCODINGS:
        return NAMED_ENCODINGS[encoding]
    m = _CV_ENCODING.match(encoding)
    if m:
        return np.dtype(_CV_DEPTHS[m.group(1)]), int(m.group(2))
    where = f"topic {topic}: " if topic else ""
    supported = ", ".join(NAMED_ENCODINGS) + ", and <8U|8S|16U|16S|32S|32F|64F>C<1-4> (e.g. 8UC1, 16UC1, 32FC1, 8UC3)"
    raise ImageFieldError(
        f"{where}field 'encoding' is {encoding!r}, which is not supported; use one of {supported}", "encoding"
    )


def image_to_array(msg, topic: str = "") -> np.ndarray:
    """Decode a ``sensor_msgs/msg/Image``-like message into a numpy array.

    Validates the header fields against the data so that a broken publisher gives a
    message naming the topic, the field and the fix instead of a garbled image.
    """
    where = f"topic {topic}: " if topic else "image: "
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype, channels = encoding_layout(msg.encoding, topic)
    if height <= 0 or width <= 0:
        raise ImageFieldError(f"{where}image is {width}x{height}; fields 'width' and 'height' must be positive", "size")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageFieldError(
            f"{where}field 'step' is {step} but width*channels*bytes = {width}*{channels}*{dtype.itemsize} = "
            f"{row_bytes} for encoding {msg.encoding!r}; fix the publisher's step (bytes per row incl. padding)",
            "step",
        )
    if step % dtype.itemsize:
        raise ImageFieldError(
            f"{where}field 'step' is {step}, not a multiple of the {dtype.itemsize}-byte sample size of "
            f"{msg.encoding!r}; fix the publisher's step",
            "step",
        )
    buf = _as_bytes_array(msg.data)
    if buf.size != step * height:
        raise ImageFieldError(
            f"{where}field 'data' has {buf.size} bytes but step*height = {step}*{height} = {step * height}; "
            "the message is truncated or its 'step'/'height' are wrong",
            "data",
        )
    if width * height > MAX_IMAGE_PIXELS or buf.size > MAX_IMAGE_BYTES:
        raise ImageFieldError(
            f"{where}image is {width}x{height} ({buf.size} bytes); at most {MAX_IMAGE_PIXELS} pixels and "
            f"{MAX_IMAGE_BYTES} bytes are decoded (ivif_ros.core.image_codec.MAX_IMAGE_PIXELS); check the "
            "publisher's 'width' and 'height', or downscale at the camera",
            "size",
        )
    wire = dtype.newbyteorder(">" if msg.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    shape = (height, width) if channels == 1 else (height, width, channels)
    strides = (step, dtype.itemsize) if channels == 1 else (step, channels * dtype.itemsize, dtype.itemsize)
    arr = np.ndarray(shape, wire, buffer=buf, strides=strides)
    if not wire.isnative:
        arr = arr.astype(dtype)  # byte-swap once into native order
    return arr


def _as_bytes_array(data) -> np.ndarray:
    """``msg.data`` as a flat uint8 array without copying: bytes (rclpy after assignment, raw
    buffers), array.array('B') (rclpy) and numpy arrays (rosbags) all expose a buffer; a plain
    list of ints (hand-built messages) is converted."""
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:
        return np.asarray(data, np.uint8).reshape(-1)


def array_to_image_fields(arr: np.ndarray, encoding: str, *, bigendian: bool = False, step: int | None = None) -> dict:
    """Encode an array into the fields of a ``sensor_msgs/msg/Image``.

    Returns ``{height, width, encoding, is_bigendian, step, data}`` with ``data`` as
    ``bytes``. ``arr`` must already have the dtype and channel count of ``encoding``
    (no silent conversion: scaling a float image to mono8 is the caller's decision).
    ``step`` larger than the packed row size pads each row with zeros, which some
    drivers do for alignment; ``bigendian`` writes multi-byte samples big-endian.
    """
    dtype, channels = encoding_layout(encoding)
    arr = np.asarray(arr)
    expected_shape = "HxW" if channels == 1 else f"HxWx{channels}"
    ok_shape = arr.ndim == 2 if channels == 1 else (arr.ndim == 3 and arr.shape[2] == channels)
    if channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr, ok_shape = arr[:, :, 0], True
    if not ok_shape or arr.dtype != dtype:
        raise InputError(
            f"cannot encode a {arr.dtype} array of shape {arr.shape} as {encoding!r}: it needs a {dtype} array "
            f"of shape {expected_shape}; convert the array first"
        )
    height, width = arr.shape[:2]
    row_bytes = width * channels * dtype.itemsize
    step = row_bytes if step is None else int(step)
    if step < row_bytes or step % dtype.itemsize:
        raise InputError(
            f"cannot encode with step {step}: rows of {encoding!r} at width {width} need at least {row_bytes} "
            f"bytes and a multiple of {dtype.itemsize}"
        )
    wire = arr.astype(dtype.newbyteorder(">" if bigendian else "<"), copy=False)
    if step == row_bytes:
        data = wire.tobytes()
    else:
        padded = np.zeros((height, step), np.uint8)
        padded[:, :row_bytes] = np.ascontiguousarray(wire).view(np.uint8).reshape(height, row_bytes)
        data = padded.tobytes()
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": int(bool(bigendian) and dtype.itemsize > 1),
        "step": step,
        "data": data,
    }


def fill_image_msg(msg, fields: dict):
    """Copy :func:`array_to_image_fields` output into a mutable Image message (rclpy).

    Returns ``msg``. The header is left to the caller (stamp and frame_id are the
    node's business). rosbags messages are built with ``ivif_ros.bag.image_msgs``.
    """
    msg.height = fields["height"]
    msg.width = fields["width"]
    msg.encoding = fields["encoding"]
    msg.is_bigendian = fields["is_bigendian"]
    msg.step = fields["step"]
    msg.data = fields["data"]
    return msg


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Return a decoded colour image as RGB (alpha dropped); mono images unchanged.

    Only the channel order changes; the result is a view (no copy) for rgb/rgba.
    """
    if encoding in ("bgr8", "bgra8", "bgr16", "bgra16"):
        return arr[:, :, 2::-1]
    if encoding in ("rgba8", "rgba16"):
        return arr[:, :, :3]
    if arr.ndim == 3 and arr.shape[2] == 4:  # 8UC4 etc.: assume the BGRA order of OpenCV
        return arr[:, :, 2::-1]
    if arr.ndim == 3 and arr.shape[2] == 3 and encoding.endswith("C3"):  # OpenCV default is BGR
        return arr[:, :, ::-1]
    return arr


@dataclass(frozen=True)
class NonFinite:
    """Counts of non-finite samples in a float image (see :func:`check_finite`)."""

    nan: int
    posinf: int
    neginf: int
    size: int

    @property
    def ok(self) -> bool:
        return self.nan == 0 and self.posinf == 0 and self.neginf == 0

    def describe(self, topic: str = "") -> str:
        where = f"topic {topic}: " if topic else ""
        bad = self.nan + self.posinf + self.neginf
        return (
            f"{where}{bad} of {self.size} pixels are not finite ({self.nan} NaN, {self.posinf} +inf, "
            f"{self.neginf} -inf)"
        )


def check_finite(arr: np.ndarray) -> NonFinite:
    """Count NaN/inf samples of a float image.

    Decoding never rejects them, because whether NaN means "no reading" (depth,
    thermal dead pixels) or a fault is the caller's call; integer images are always finite.
    """
    if arr.dtype.kind != "f" or np.isfinite(arr).all():  # one pass in the common case
        return NonFinite(0, 0, 0, arr.size)
    nan = int(np.count_nonzero(np.isnan(arr)))
    posinf = int(np.count_nonzero(np.isposinf(arr)))
    neginf = int(np.count_nonzero(np.isneginf(arr)))
    return NonFinite(nan, posinf, neginf, arr.size)
