"""Paired bootstrap of a mean per-image difference (a fusion metric of two methods on the same images).

Why: a model card that says "Qabf 0.71352 against pixel-max's 0.71339" should also say whether
another draw of images from the same scenes would keep the order. The images are resampled with
replacement and the mean of the per-image differences is taken on each resample; the pairing
keeps the per-image correlation (both methods find the same images hard).
"""

from __future__ import annotations

import numpy as np

from ivif_ros.errors import InputError


def bootstrap_summary(observed: float, gaps: np.ndarray, images: int) -> dict:
    """``{"observed", "ci95": [2.5 %, 97.5 % percentiles], "p_a_better", "resamples", "images"}``."""
    return {
        "observed": float(observed),
        "ci95": [float(np.percentile(gaps, 2.5)), float(np.percentile(gaps, 97.5))],
        "p_a_better": float((gaps > 0).mean()),
        "resamples": len(gaps),
        "images": images,
    }


def paired_mean_bootstrap(a, b, resamples: int = 2000, seed: int = 0) -> dict:
    """Bootstrap of mean(a - b) over images; ``a[i]`` and ``b[i]`` are two methods' values on image i."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise InputError(
            f"need one value per image for both methods, on the same images (got shapes {a.shape} and {b.shape})"
        )
    if resamples < 1:
        raise InputError(f"resamples must be >= 1, got {resamples}")
    diff = a - b
    rng = np.random.default_rng(seed)
    gaps = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    return bootstrap_summary(diff.mean(), gaps, len(diff))
