"""BT.601 full-range YCbCr (ivif_ros.core.color), which the metrics and baselines score on."""

import cv2
import numpy as np
import pytest

from ivif_ros.core.color import restore_color, rgb_to_y_u8, rgb_to_ycbcr, ycbcr_to_rgb


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)


def test_matches_opencv_full_range_ycrcb(rgb):
    y, cb, cr = rgb_to_ycbcr(rgb)
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float64)  # 8-bit fixed point, rounded
    assert np.abs(ref[..., 0] - y).max() <= 0.51  # OpenCV: 14-bit fixed-point coefficients
    assert np.abs(ref[..., 2] - cb).max() <= 1.0 and np.abs(ref[..., 1] - cr).max() <= 1.0
    assert y.dtype == np.float32


def test_grey_pixels_have_neutral_chroma():
    grey = np.repeat(np.arange(0, 256, 15, dtype=np.uint8)[None, :, None], 3, axis=2)
    y, cb, cr = rgb_to_ycbcr(grey)
    np.testing.assert_allclose(y[0], grey[0, :, 0], atol=1e-4)
    np.testing.assert_allclose(cb, 128, atol=1e-4)
    np.testing.assert_allclose(cr, 128, atol=1e-4)
    _, cb01, _ = rgb_to_ycbcr(grey / 255.0)
    np.testing.assert_allclose(cb01, 0.5, atol=1e-9)  # float data on 0..1: chroma zero is 0.5


def test_round_trips(rgb):
    np.testing.assert_allclose(ycbcr_to_rgb(*rgb_to_ycbcr(rgb), peak=255), rgb, atol=1e-3)
    f = rgb / 255.0
    np.testing.assert_allclose(ycbcr_to_rgb(*rgb_to_ycbcr(f)), f, atol=1e-12)


def test_luma_u8_is_opencv_grey(rgb):
    diff = rgb_to_y_u8(rgb).astype(int) - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert np.abs(diff).max() <= 1 and (diff != 0).mean() < 0.01
    grey = rgb[..., 0]
    assert rgb_to_y_u8(grey) is grey


def test_restore_color_keeps_the_fused_luma_and_the_visible_chroma(rgb):
    fused_y = np.full(rgb.shape[:2], 128, np.uint8)
    out = restore_color(fused_y, rgb)
    y, cb, cr = rgb_to_ycbcr(out)
    _, cb_vis, cr_vis = rgb_to_ycbcr(rgb)
    inside = (out > 0).all(-1) & (out < 255).all(-1)  # clipping to 0..255 changes saturated pixels
    assert np.abs(y - 128)[inside].max() <= 1.0
    assert np.abs(cb - cb_vis)[inside].max() <= 1.5 and np.abs(cr - cr_vis)[inside].max() <= 1.5
    assert restore_color(fused_y, rgb[..., 0]) is fused_y  # grey visible: nothing to restore
