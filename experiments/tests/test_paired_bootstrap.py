"""The paired bootstraps (mAP@0.5 gap; mean per-image gap) agree with their definitions and separate real gaps from none."""

import numpy as np
import pytest

from ivif_ros.errors import InputError
from ivif_ros.metrics.detection import evaluate_detections
from map_bootstrap import match_at_50, paired_map_bootstrap, weighted_map50
from mean_bootstrap import paired_mean_bootstrap


def random_scene(rng, images=30, classes=3, recall=0.7, false_per_image=3, jitter=4.0):
    """Ground truth and a noisy detector: finds ~recall of the boxes (jittered) plus clutter."""
    preds, gts = [], []
    for _ in range(images):
        m = rng.integers(0, 5)
        xy = rng.uniform(0, 500, (m, 2))
        g = np.concatenate([xy, xy + rng.uniform(15, 80, (m, 2))], 1)
        gc = rng.integers(0, classes, m)
        keep = rng.random(m) < recall
        found = g[keep] + rng.normal(0, jitter, (int(keep.sum()), 4))
        fxy = rng.uniform(0, 500, (false_per_image, 2))
        clutter = np.concatenate([fxy, fxy + 30], 1)
        boxes = np.concatenate([found, clutter])
        cls = np.concatenate([gc[keep], rng.integers(0, classes, false_per_image)])
        preds.append((boxes, rng.random(len(boxes)), cls))
        gts.append((g, gc))
    return preds, gts


def test_unit_counts_give_evaluate_detections_map50_exactly():
    preds, gts = random_scene(np.random.default_rng(0))
    expected = evaluate_detections(preds, gts, 3)["map50"]
    assert 0.1 < expected < 0.9  # a case with real ranking structure, not a trivial 0 or 1
    assert weighted_map50(match_at_50(preds, gts, 3), np.ones(len(gts), int)) == pytest.approx(expected, abs=1e-12)


def test_counts_equal_duplicating_and_dropping_images():
    preds, gts = random_scene(np.random.default_rng(1))
    counts = np.ones(len(gts), int)
    counts[[2, 5]] = [3, 0]
    counts[7] = 2
    expanded = [i for i, k in enumerate(counts) for _ in range(k)]
    expected = evaluate_detections([preds[i] for i in expanded], [gts[i] for i in expanded], 3)["map50"]
    assert weighted_map50(match_at_50(preds, gts, 3), counts) == pytest.approx(expected, abs=1e-12)


def test_same_detector_on_both_sides_has_no_gap():
    preds, gts = random_scene(np.random.default_rng(2))
    m = match_at_50(preds, gts, 3)
    r = paired_map_bootstrap([m], [m], resamples=200)
    assert r["observed"] == 0 and r["ci95"] == [0.0, 0.0] and r["p_a_better"] == 0.0


def test_a_better_detector_is_ahead_on_every_resample():
    preds, gts = random_scene(np.random.default_rng(3), images=60, recall=0.95, false_per_image=1, jitter=1.0)
    # The same detector with every box shifted by 40 % of its size: most fall below IoU 0.5.
    shifted = [(b + 0.4 * (b[:, 2:] - b[:, :2]).repeat(2, 1), s, c) for b, s, c in preds]
    r = paired_map_bootstrap([match_at_50(preds, gts, 3)], [match_at_50(shifted, gts, 3)], resamples=300)
    assert r["observed"] > 0.2 and r["ci95"][0] > 0 and r["p_a_better"] == 1.0
    assert r["images"] == 60 and r["resamples"] == 300


def test_groups_are_averaged_before_the_gap():
    preds, gts = random_scene(np.random.default_rng(4))
    worse, _ = random_scene(np.random.default_rng(4), recall=0.3)
    a, b = match_at_50(preds, gts, 3), match_at_50(worse, gts, 3)
    ones = np.ones(len(gts), int)
    r = paired_map_bootstrap([a, b], [b], resamples=50)
    assert r["observed"] == pytest.approx((weighted_map50(a, ones) - weighted_map50(b, ones)) / 2)


def test_detectors_on_different_images_are_refused():
    preds, gts = random_scene(np.random.default_rng(5))
    a, b = match_at_50(preds, gts, 3), match_at_50(preds[:10], gts[:10], 3)
    with pytest.raises(InputError, match="same images"):
        paired_map_bootstrap([a], [b])
    with pytest.raises(InputError, match="each group"):
        paired_map_bootstrap([a], [])


def test_mean_bootstrap_of_a_constant_shift_is_that_shift():
    rng = np.random.default_rng(6)
    b = rng.normal(0.7, 0.05, 119)
    r = paired_mean_bootstrap(b + 0.01, b, resamples=500)
    assert r["observed"] == pytest.approx(0.01) and r["ci95"] == pytest.approx([0.01, 0.01])
    assert r["p_a_better"] == 1.0 and r["images"] == 119


def test_mean_bootstrap_interval_holds_the_noise_of_a_zero_mean_gap():
    rng = np.random.default_rng(7)
    b = rng.normal(0.7, 0.05, 200)
    noise = rng.normal(0, 0.02, 200)
    r = paired_mean_bootstrap(b + noise - noise.mean(), b, resamples=1000)
    assert r["observed"] == pytest.approx(0, abs=1e-12)
    lo, hi = r["ci95"]
    assert lo < 0 < hi and hi - lo == pytest.approx(2 * 1.96 * 0.02 / np.sqrt(200), rel=0.2)
    assert 0.3 < r["p_a_better"] < 0.7


def test_mean_bootstrap_refuses_unpaired_values():
    with pytest.raises(InputError, match="same images"):
        paired_mean_bootstrap([1.0, 2.0], [1.0])
