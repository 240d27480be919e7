"""Classical fusion baselines: exact cases, invariants and what each is meant to keep."""

import numpy as np
import pytest

from ivif_ros.core import baselines as bl
from ivif_ros.errors import InputError
from metrics_images import natural_pair


@pytest.fixture(scope="module")
def pair():
    return natural_pair(96, 128, seed=2)


def test_registry_names_and_signature(pair):
    ir, vis = pair
    assert list(bl.BASELINES) == ["max", "mean", "laplacian", "gff"]
    for name, fn in bl.BASELINES.items():
        out = fn(ir, vis)
        assert out.dtype == np.uint8 and out.shape == ir.shape, name


def test_max_and_mean_by_hand():
    a = np.array([[0, 10, 255]], np.uint8)
    b = np.array([[1, 5, 254]], np.uint8)
    assert bl.fuse_max(a, b).tolist() == [[1, 10, 255]]
    assert bl.fuse_mean(a, b).tolist() == [[1, 8, 255]]  # halves round up, no uint8 overflow


@pytest.mark.parametrize("name", list(bl.BASELINES))
def test_fusing_an_image_with_itself_returns_it(pair, name):
    ir, _ = pair
    out = bl.BASELINES[name](ir, ir).astype(int)
    assert np.abs(out - ir).max() <= 1


def test_laplacian_pyramid_is_lossless(pair):
    ir, _ = pair
    x = ir.astype(np.float32)
    pyr = bl.laplacian_pyramid(x, 3)
    assert len(pyr) == 4 and pyr[-1].shape == (12, 16)
    np.testing.assert_allclose(bl.collapse_pyramid(pyr), x, atol=1e-3)


@pytest.mark.parametrize("name", ["laplacian", "gff"])
def test_multiscale_methods_keep_a_target_seen_only_in_infrared(name):
    vis = np.full((192, 256), 100, np.uint8)
    ir = vis.copy()
    ir[40:56, 56:72] = 220  # a hot pedestrian-sized blob invisible in the visible image
    contrast = lambda f: float(f[44:52, 60:68].mean()) - float(f[:, :30].mean())  # noqa: E731
    # mean fusion halves it (60); a multi-scale method should keep most of the 120 grey levels
    assert contrast(bl.fuse_mean(ir, vis)) == pytest.approx(60, abs=1)
    assert contrast(bl.BASELINES[name](ir, vis)) > 90


def test_gff_weights_sum_to_one():
    w = bl._normalise_weights(np.stack([np.array([[0.2, -0.1, 0.0]]), np.array([[0.6, 0.5, 0.0]])]))
    np.testing.assert_allclose(w.sum(0), 1.0)
    np.testing.assert_allclose(w[:, 0, :], [[0.25, 0.0, 0.5], [0.75, 1.0, 0.5]])


def test_guided_filter_preserves_edges_of_its_guide():
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    out = bl.guided_filter(guide, guide.copy(), radius=5, eps=1e-6)
    np.testing.assert_allclose(out, guide, atol=1e-2)


def test_mismatched_sources_are_explained(pair):
    ir, vis = pair
    with pytest.raises(InputError, match="register"):
        bl.fuse_max(ir, vis[:-1])
    with pytest.raises(InputError, match="uint8"):
        bl.fuse_gff(ir.astype(np.float32), vis)


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (12, 16)])
def test_gff_on_tiny_images(shape):
    """Windows far larger than the image (31x31 base, r1 = 45) still give weights that sum to 1
    per pixel, and an image fused with itself comes back unchanged."""
    rng = np.random.default_rng(sum(shape))
    a, b = (rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2))
    for w in bl.gff_weights([a.astype(np.float32) / 255, b.astype(np.float32) / 255]):
        assert w.shape == (2, *shape) and (w >= 0).all()
        np.testing.assert_allclose(w.sum(0), 1.0, atol=1e-6)
    assert np.array_equal(bl.fuse_gff(a, a), a)
    assert bl.fuse_gff(a, b).shape == shape


def test_gff_detail_weights_follow_the_more_salient_source():
    flat = np.full((32, 32), 0.5, np.float32)
    textured = flat + 0.2 * (np.indices((32, 32)).sum(0) % 2).astype(np.float32)  # a checkerboard
    _, w_detail = bl.gff_weights([flat, textured])
    assert w_detail[1, 8:-8, 8:-8].min() > 0.9
