"""Contrast retention: how much of the visible image's local contrast the fused image keeps.

Haze from fusion (the IR brightness lifting the whole frame and flattening visible detail)
barely moves the nine no-reference metrics of ``metrics.fusion``, so it is scored on its own:

    contrast = mean over M of sd(F) / mean over M of sd(V)

``sd`` is the standard deviation of the luma in a ``WINDOW`` x ``WINDOW`` window around each
pixel, ``F`` the fused luma and ``V`` the visible luma. ``M`` holds the pixels where the visible
camera is well exposed: the window's mean visible luma is within ``EXPOSED`` (as a share of 255)
and no pixel of the window is saturated (>= ``SATURATED``). There the visible image is the one
to trust for contrast; under- or over-exposed regions are where the IR is meant to add detail,
so they are left out.

1 means the visible local contrast is kept, below 1 it is flattened (0.5: halved, as averaging
with a flat IR does), above 1 it is amplified. The ratio of means (rather than a mean of
per-pixel ratios) weighs each pixel by its visible contrast, so flat visible areas such as sky,
where a per-pixel ratio divides by almost nothing, do not dominate. It is undefined (NaN) when
no pixel is well exposed or the visible image has no texture there.
"""

from __future__ import annotations

import cv2
import numpy as np

from ivif_ros.errors import InputError
from ivif_ros.metrics.fusion import as_grey

CONTRAST = "contrast"
#: One line for reports that show the column.
CONTRAST_NOTE = (
    "`contrast`: local (7x7) standard deviation of the fused luma over the visible luma's, in the "
    "visible image's well-exposed regions; 1 keeps the visible contrast, below 1 is haze (flattened detail)."
)
WINDOW = 7
EXPOSED = (0.15, 0.85)
SATURATED = 250
#: Mean visible local SD (grey levels) under which the visible image counts as textureless.
MIN_TEXTURE = 0.5


def _box_mean(x: np.ndarray, window: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (window, window), normalize=True, borderType=cv2.BORDER_REFLECT)


def local_std(y: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Standard deviation of ``y`` (float) in a ``window`` x ``window`` box around each pixel."""
    mean = _box_mean(y, window)
    var = _box_mean(y * y, window) - mean * mean
    return np.sqrt(np.clip(var, 0, None))


def well_exposed(vis_y: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Boolean mask of pixels whose window has a mid-range mean luma and no saturated pixel."""
    mean = _box_mean(vis_y, window)
    lo, hi = (255 * e for e in EXPOSED)
    window_max = cv2.dilate(vis_y, np.ones((window, window), np.uint8), borderType=cv2.BORDER_REFLECT)
    return (mean >= lo) & (mean <= hi) & (window_max < SATURATED)


def contrast_retention(fused: np.ndarray, vis: np.ndarray, window: int = WINDOW) -> float:
    """``contrast`` of the module docstring for a fused and a visible image (uint8, grey or RGB)."""
    f, v = as_grey(fused), as_grey(vis)
    if f.shape != v.shape:
        raise InputError(f"fused {f.shape[::-1]} and visible {v.shape[::-1]} images differ in size (W x H)")
    mask = well_exposed(v, window)
    if not mask.any():
        return float("nan")
    sd_v = local_std(v, window)[mask].mean()
    if sd_v < MIN_TEXTURE:
        return float("nan")
    return float(local_std(f, window)[mask].mean() / sd_v)
