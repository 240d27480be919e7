"""Image <-> ndarray codec: every encoding, endianness, row padding, validation errors."""

from types import SimpleNamespace

import numpy as np
import pytest

from ivif_ros.core.image_codec import (
    array_to_image_fields,
    check_finite,
    encoding_layout,
    fill_image_msg,
    image_to_array,
    to_rgb,
)
from ivif_ros.errors import InputError

ENCODINGS = ["mono8", "mono16", "rgb8", "bgr8", "rgba8", "bgra8", "32FC1", "16UC1", "8UC1", "8UC3", "16SC1", "64FC1"]


def random_image(encoding: str, h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    dtype, channels = encoding_layout(encoding)
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    if dtype.kind == "f":
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 8])
def test_round_trip(encoding, bigendian, pad):
    arr = random_image(encoding)
    dtype, channels = encoding_layout(encoding)
    step = arr.shape[1] * channels * dtype.itemsize + pad
    fields = array_to_image_fields(arr, encoding, bigendian=bigendian, step=step)
    assert fields["step"] == step and len(fields["data"]) == step * arr.shape[0]
    out = image_to_array(SimpleNamespace(**fields), "/t")
    assert out.dtype == arr.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_big_endian_mono16_wire_bytes():
    # 2x2 image, rows padded to 6 bytes; values 0x0102, 0x0304 / 0xA0B0, 0xFFFE
    data = bytes([1, 2, 3, 4, 0xEE, 0xEE, 0xA0, 0xB0, 0xFF, 0xFE, 0xEE, 0xEE])
    msg = SimpleNamespace(height=2, width=2, encoding="mono16", is_bigendian=1, step=6, data=data)
    np.testing.assert_array_equal(image_to_array(msg), [[0x0102, 0x0304], [0xA0B0, 0xFFFE]])
    msg.is_bigendian = 0
    np.testing.assert_array_equal(image_to_array(msg), [[0x0201, 0x0403], [0xB0A0, 0xFEFF]])


def test_plain_list_data_is_accepted():
    msg = SimpleNamespace(height=1, width=3, encoding="mono8", is_bigendian=0, step=3, data=[1, 2, 3])
    np.testing.assert_array_equal(image_to_array(msg), [[1, 2, 3]])


def test_decode_is_zero_copy_for_native_data():
    fields = array_to_image_fields(random_image("rgb8"), "rgb8", step=7 * 3 + 5)
    buf = np.frombuffer(fields["data"], np.uint8)
    out = image_to_array(SimpleNamespace(**{**fields, "data": buf}))
    assert np.shares_memory(out, buf)


def test_rclpy_message_round_trip():
    from sensor_msgs.msg import Image

    arr = random_image("mono16", 4, 6)
    msg = fill_image_msg(Image(), array_to_image_fields(arr, "mono16"))
    np.testing.assert_array_equal(image_to_array(msg, "/ir/image_raw"), arr)


def test_step_too_small_names_topic_and_field():
    fields = array_to_image_fields(random_image("mono16", 4, 640), "mono16")
    fields["step"] = 1200
    with pytest.raises(InputError, match=r"topic /ir/image_raw: field 'step' is 1200 .* = 1280"):
        image_to_array(SimpleNamespace(**fields), "/ir/image_raw")


def test_truncated_data_names_field():
    fields = array_to_image_fields(random_image("rgb8"), "rgb8")
    fields["data"] = fields["data"][:-3]
    with pytest.raises(InputError, match=r"topic /cam: field 'data' has 102 bytes but step\*height"):
        image_to_array(SimpleNamespace(**fields), "/cam")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"step": 7}, "step"),
        ({"data": b"\0" * 5}, "data"),
        ({"width": 0}, "size"),
        ({"encoding": "yuv422"}, "encoding"),
    ],
)
def test_errors_name_the_field_for_rejection_counters(change, field):
    from ivif_ros.core.image_codec import ImageFieldError

    fields = {**array_to_image_fields(random_image("mono16", 2, 4), "mono16"), **change}
    with pytest.raises(ImageFieldError) as err:
        image_to_array(SimpleNamespace(**fields), "/ir/image_raw")
    assert err.value.field == field and isinstance(err.value, InputError)


def test_unknown_encoding_lists_supported():
    msg = SimpleNamespace(height=1, width=1, encoding="bayer_rggb8", is_bigendian=0, step=1, data=b"\0")
    with pytest.raises(InputError, match=r"field 'encoding' is 'bayer_rggb8'.*mono16"):
        image_to_array(msg, "/cam")


def test_encode_rejects_mismatched_dtype():
    with pytest.raises(InputError, match="needs a uint8 array"):
        array_to_image_fields(np.zeros((2, 2), np.float32), "mono8")


def test_to_rgb_orders_channels():
    bgra = np.array([[[1, 2, 3, 4]]], np.uint8)
    np.testing.assert_array_equal(to_rgb(bgra, "bgra8"), [[[3, 2, 1]]])
    np.testing.assert_array_equal(to_rgb(bgra[:, :, :3], "bgr8"), [[[3, 2, 1]]])
    np.testing.assert_array_equal(to_rgb(bgra, "rgba8"), [[[1, 2, 3]]])


def test_check_finite_counts_nan_and_inf():
    arr = np.zeros((3, 3), np.float32)
    assert check_finite(arr).ok
    arr[0, 0], arr[1, 1], arr[2, 2], arr[2, 1] = np.nan, np.inf, -np.inf, np.nan
    report = check_finite(arr)
    assert (report.nan, report.posinf, report.neginf, report.ok) == (2, 1, 1, False)
    assert "4 of 9 pixels are not finite" in report.describe("/depth")
