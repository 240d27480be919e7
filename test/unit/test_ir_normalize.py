"""IR normalisation of 16-bit and float thermal images (ivif_ros.core.ir_normalize)."""

from __future__ import annotations

import numpy as np

from ivif_ros.core.config import IrNormalizeConfig
from ivif_ros.core.ir_normalize import IrNormalizer


def thermal16(rng, hot=False):
    img = rng.normal(8000, 300, (96, 128)).clip(0, 16383).astype(np.uint16)  # 14-bit counts
    img[0, :3] = 16383  # a few saturated pixels must not set the range
    if hot:
        img[30:60, 40:80] = 15000  # a hot object enters
    return img


def test_percentile_stretch_is_robust_to_hot_pixels():
    norm = IrNormalizer(IrNormalizeConfig(mode="percentile", smoothing=0.0))
    out = norm(thermal16(np.random.default_rng(0)))
    assert out.dtype == np.uint8 and out.shape == (96, 128)
    # 1-99 % of the bulk spans nearly the full 8-bit range
    assert np.percentile(out, 1) <= 3 and np.percentile(out, 99) >= 252
    assert 100 < out.mean() < 155


def test_smoothing_limits_frame_to_frame_flicker():
    rng = np.random.default_rng(1)
    frames = [thermal16(rng), thermal16(rng, hot=True)]

    def background_jump(smoothing):
        norm = IrNormalizer(IrNormalizeConfig(smoothing=smoothing))
        a, b = (norm(f) for f in frames)
        return abs(float(b[70:, :].mean()) - float(a[70:, :].mean()))

    assert background_jump(0.9) < 0.5 * background_jump(0.0)


def test_fixed_range_and_float_dead_pixels():
    norm = IrNormalizer(IrNormalizeConfig(mode="fixed", fixed_min=250.0, fixed_max=350.0))
    kelvin = np.array([[250.0, 300.0, 350.0, 400.0], [np.nan, -np.inf, np.inf, 200.0]], np.float32)
    np.testing.assert_array_equal(norm(kelvin), [[0, 128, 255, 255], [0, 0, 255, 0]])


def test_uint8_passes_through_and_colour_becomes_luma():
    norm = IrNormalizer(IrNormalizeConfig())
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert norm(grey) is grey
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(norm(rgb), grey)


def test_uint16_lookup_gives_the_float_mapping_exactly():
    """16-bit frames go through a 65,536-entry table; it must equal the float path value for value."""
    rng = np.random.default_rng(3)
    ir = (27000 + rng.integers(0, 4000, (48, 64))).astype(np.uint16)
    ir[0, :5] = (0, 1, 65535, 26999, 31000)  # below, inside and above the window
    cfg = IrNormalizeConfig(smoothing=0.0)
    via_table = IrNormalizer(cfg)(ir)
    via_float = IrNormalizer(cfg)(ir.astype(np.float32))
    np.testing.assert_array_equal(via_table, via_float)
    assert via_table[0, 0] == 0 and via_table[0, 2] == 255
