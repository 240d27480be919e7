"""Hand-checkable cases and invariants of ivif_ros.metrics.fusion."""

import math
import time

import numpy as np
import pytest

from ivif_ros.errors import ConfigError, InputError
from ivif_ros.metrics import fusion as fm
from metrics_images import natural_pair

VARIANTS = fm.VARIANTS


@pytest.fixture(scope="module")
def pair():
    ir, vis = natural_pair()
    return ir.astype(np.float64), vis.astype(np.float64)


def ramp(h=40, w=50):
    """Horizontal ramp with a step of exactly 1 grey level per column."""
    return np.tile(np.arange(w, dtype=np.float64), (h, 1))


def test_entropy_known_histograms():
    assert fm.entropy(np.full((10, 10), 77.0)) == 0.0
    two_levels = np.array([[0.0, 255.0] * 8] * 4)
    assert fm.entropy(two_levels) == pytest.approx(1.0)
    all_levels = np.arange(256, dtype=np.float64).reshape(16, 16)
    assert fm.entropy(all_levels) == pytest.approx(8.0)


def test_standard_deviation_known_arrays():
    assert fm.standard_deviation(np.full((5, 5), 3.0)) == 0.0
    checker = (np.indices((8, 8)).sum(0) % 2) * 255.0
    assert fm.standard_deviation(checker) == pytest.approx(127.5)
    assert fm.standard_deviation(np.array([[1.0, 2.0, 3.0, 4.0]])) == pytest.approx(math.sqrt(1.25))


@pytest.mark.parametrize("variant", VARIANTS)
def test_flat_image_has_no_frequency_or_gradient(variant):
    flat = np.full((20, 30), 200.0)
    assert fm.spatial_frequency(flat, variant) == 0.0
    assert fm.average_gradient(flat, variant) == 0.0


def test_spatial_frequency_and_gradient_of_a_unit_ramp():
    r = ramp()
    assert fm.spatial_frequency(r) == pytest.approx(1.0)
    assert fm.spatial_frequency(r, "matlab") == pytest.approx(1.0 / 255)
    assert fm.average_gradient(r) == pytest.approx(math.sqrt(0.5))
    h, w = r.shape
    assert fm.average_gradient(r, "matlab") == pytest.approx(math.sqrt(0.5) * h * w / ((h - 1) * (w - 1)))


def test_mutual_information_of_an_image_with_itself_is_its_entropy(pair):
    ir, _ = pair
    # MI(F; F) = H(F): with F = A = B the sum is 2 H(F), in bits for matlab, nats for cddfuse.
    assert fm.mutual_information(ir, ir, ir, "matlab") == pytest.approx(2 * fm.entropy(ir))
    assert fm.mutual_information(ir, ir, ir) == pytest.approx(2 * fm.entropy(ir) * math.log(2))


def test_mutual_information_is_symmetric_and_variants_differ_by_log_base(pair):
    ir, vis = pair
    fused = np.maximum(ir, vis)
    mi = fm.mutual_information(fused, ir, vis)
    assert fm.mutual_information(fused, vis, ir) == pytest.approx(mi)
    assert fm.mutual_information(ir, fused, fused) == pytest.approx(fm.mutual_information(fused, ir, ir))
    assert fm.mutual_information(fused, ir, vis, "matlab") == pytest.approx(mi / math.log(2))


def test_mutual_information_of_independent_images_is_near_zero():
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 4, (400, 400)).astype(np.float64) for _ in range(2))
    assert fm.mutual_information(a, b, b) < 1e-3


def test_scd_of_the_sum_of_the_sources_is_two(pair):
    ir, vis = pair
    # F - B = A and F - A = B, so both correlations are exactly 1.
    assert fm.scd(ir + vis, ir, vis) == pytest.approx(2.0)
    assert math.isnan(fm.scd(ir, ir, vis))  # F - A constant: correlation undefined


@pytest.mark.parametrize("variant", VARIANTS)
def test_vif_of_a_source_against_itself_is_one(pair, variant):
    ir, vis = pair
    assert fm.vif(ir, ir, ir, variant) == pytest.approx(2.0, abs=1e-6)
    # VIF(A -> A) = 1, so the sum is 1 + VIF(B -> A) and B's share is below 1 for a different image.
    share_b = fm.vif(ir, ir, vis, variant) - 1.0
    assert 0.0 < share_b < 1.0


def test_vif_of_a_flat_source_follows_each_variant(pair):
    ir, _ = pair
    flat = np.full_like(ir, 100.0)
    assert fm.vif(ir, ir, flat) == pytest.approx(2.0, abs=1e-6)  # cddfuse: 0/0 counts as 1
    assert math.isnan(fm.vif(ir, ir, flat, "matlab"))


def test_qabf_of_identical_images_is_the_saturated_constant(pair):
    ir, _ = pair
    # With F = A = B every orientation term is Ta/(1+exp(ka(1-Da))); the strength term is
    # Tg/(1+exp(kg(g_F-Dg))) (the g_A == g_F quirk), with g_F >= 1 on 0..255 where it counts.
    q_a = 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))
    lo, hi = 0.9994 / (1 + math.exp(-15 * 0.5)) * q_a, 0.9994 * q_a
    assert lo <= fm.qabf(ir, ir, ir) <= hi


def test_qabf_matlab_scale_exposes_the_equal_strength_quirk():
    # Where g_A == g_F the references use g_F as the strength ratio. On 0..1 (matlab) a weak edge
    # has g_F << 0.5, so a perfect copy of the sources scores near 0; on 0..255 it scores ~0.976.
    weak = np.zeros((20, 20))
    weak[5:15, 5:15] = 10.0
    assert fm.qabf(weak, weak, weak, "matlab") < 0.05
    assert fm.qabf(weak, weak, weak) > 0.97
    strong = weak * 25.5  # every edge strength >= 1 on 0..1 too: both variants agree
    assert fm.qabf(strong, strong, strong, "matlab") == pytest.approx(fm.qabf(strong, strong, strong), abs=1e-3)


def test_qabf_of_a_black_image_is_the_strength_floor(pair):
    ir, vis = pair
    # g_F = 0 everywhere (zero padding adds no edge to a black image): ratio 0 for every source
    # pixel with an edge, so every term is at most Tg / (1 + exp(-kg * Dg)).
    assert fm.qabf(np.zeros_like(ir), ir, vis) <= 0.9994 / (1 + math.exp(15 * 0.5))
    assert fm.qabf(np.maximum(ir, vis), ir, vis) > 0.5


def test_ssim_of_identical_images_is_one_per_pair(pair):
    ir, vis = pair
    assert fm.ssim(ir, ir, ir) == pytest.approx(2.0)  # cddfuse sums the two pairs
    assert fm.ssim(ir, ir, ir, "matlab") == pytest.approx(1.0)  # matlab averages them
    assert fm.ssim(ir, ir, vis) < 2.0 and fm.ssim(ir, ir, vis, "matlab") < 1.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_fusion_metrics_returns_every_metric(pair, variant):
    ir, vis = pair
    m = fm.fusion_metrics(np.maximum(ir, vis).astype(np.uint8), ir.astype(np.uint8), vis.astype(np.uint8), variant)
    assert tuple(m) == fm.METRIC_NAMES
    assert all(np.isfinite(v) for v in m.values())


def test_colour_inputs_are_scored_on_their_luma(pair):
    ir, vis = (x.astype(np.uint8) for x in pair)
    fused = np.maximum(ir, vis)
    as_rgb = lambda x: np.repeat(x[..., None], 3, axis=2)  # noqa: E731  (grey RGB: luma == grey)
    assert fm.fusion_metrics(as_rgb(fused), ir, as_rgb(vis)) == fm.fusion_metrics(fused, ir, vis)


def test_bad_inputs_are_explained(pair):
    ir, vis = pair
    with pytest.raises(ConfigError, match="variant"):
        fm.fusion_metrics(ir, ir, vis, variant="octave")
    with pytest.raises(InputError, match="one size"):
        fm.fusion_metrics(ir[:-1], ir, vis)


def test_all_nine_metrics_on_a_vga_triple_take_under_half_a_second():
    ir, vis = natural_pair(480, 640, seed=1)
    fused = np.maximum(ir, vis)
    fm.fusion_metrics(fused, ir, vis)  # warm-up (OpenCV kernels, page faults)
    best = min(_timed(fm.fusion_metrics, fused, ir, vis) for _ in range(3))
    assert best < 0.5


def _timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t
