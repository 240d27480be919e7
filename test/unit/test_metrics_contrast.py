"""Contrast retention: 1 for the visible image itself, below 1 for a hazy copy, only well-exposed pixels count."""

import math

import numpy as np
import pytest

from ivif_ros.core.baselines import fuse_max, fuse_mean
from ivif_ros.errors import InputError
from ivif_ros.metrics.contrast import contrast_retention, local_std, well_exposed
from metrics_images import natural_pair


@pytest.fixture(scope="module")
def pair():
    return natural_pair(96, 128, seed=3)


def haze(vis: np.ndarray, amount: float, veil: float = 200.0) -> np.ndarray:
    """Blend a uniform bright veil over the image, as a lifted, flattened fusion looks."""
    return np.clip(np.rint((1 - amount) * vis + amount * veil), 0, 255).astype(np.uint8)


def test_the_visible_image_keeps_all_its_contrast(pair):
    _, vis = pair
    assert contrast_retention(vis, vis) == pytest.approx(1.0, abs=1e-12)
    rgb = np.repeat(vis[..., None], 3, axis=2)  # colour input is reduced to luma first
    assert contrast_retention(rgb, vis) == pytest.approx(1.0, abs=1e-9)


def test_haze_scores_below_one_in_proportion(pair):
    _, vis = pair
    light, heavy = contrast_retention(haze(vis, 0.3), vis), contrast_retention(haze(vis, 0.6), vis)
    assert light == pytest.approx(0.7, abs=0.02) and heavy == pytest.approx(0.4, abs=0.02)


def test_stretched_contrast_scores_above_one(pair):
    _, vis = pair
    stretched = np.clip(np.rint(1.5 * (vis.astype(float) - 120) + 120), 0, 255).astype(np.uint8)
    assert contrast_retention(stretched, vis) > 1.3


def test_mean_fusion_flattens_and_max_keeps_more(pair):
    ir, vis = pair
    mean, best = contrast_retention(fuse_mean(ir, vis), vis), contrast_retention(fuse_max(ir, vis), vis)
    assert mean < 0.8 and best > mean


def test_only_well_exposed_unsaturated_pixels_count():
    vis = np.full((40, 60), 128, np.uint8)
    vis[:, :30] = 10  # too dark
    vis[::2, 30:45] = 255  # saturated stripes
    vis[:, 45:] = 120 + 20 * (np.arange(40)[:, None] % 2)  # well exposed texture
    mask = well_exposed(vis.astype(np.float64))
    assert not mask[:, :24].any() and not mask[:, 30:48].any() and mask[5:-5, 52:].all()
    fused = vis.copy()
    fused[:, :45] = 128  # flattening the badly exposed part changes nothing
    assert contrast_retention(fused, vis) == pytest.approx(1.0)


def test_undefined_without_a_well_exposed_textured_pixel():
    assert math.isnan(contrast_retention(np.full((20, 20), 100, np.uint8), np.full((20, 20), 250, np.uint8)))
    assert math.isnan(contrast_retention(np.full((20, 20), 100, np.uint8), np.full((20, 20), 128, np.uint8)))


def test_local_std_by_hand():
    y = np.zeros((9, 9))
    y[:, 1::2] = 2.0  # odd columns 2, even columns 0
    sd = local_std(y, 3)
    assert sd[4, 4] == pytest.approx(np.std([2, 0, 2] * 3))  # the window around (4, 4) holds columns 3, 4, 5


def test_size_mismatch_is_explained(pair):
    _, vis = pair
    with pytest.raises(InputError, match="differ in size"):
        contrast_retention(vis[:-1], vis)
