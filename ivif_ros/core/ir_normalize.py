"""Turning any IR image into the 8-bit single-channel image the fusion model expects.

Thermal cameras publish ``mono16`` raw counts (often 14-bit) or ``32FC1`` temperatures;
the model, like the paired-folder datasets it was trained on, sees ``uint8``. Two
mappings, both ``ir_normalize.*`` settings:

* ``percentile``: stretch between the ``low``/``high`` percentiles of the frame, robust to
  a few hot or dead pixels. The bounds are smoothed exponentially across frames
  (``smoothing``), so a hot object entering the view does not make the whole image
  flicker darker from one frame to the next.
* ``fixed``: a fixed ``[fixed_min, fixed_max]`` window (counts or Kelvin): radiometric,
  no adaptation at all.

``uint8`` input passes through untouched (it is already display-mapped); colour input
becomes BT.601 luma first. In float images NaN and -inf (dead pixels) become 0, +inf 255.
"""

from __future__ import annotations

import numpy as np

from ivif_ros.core.config import IrNormalizeConfig
from ivif_ros.datasets.paired import rgb_to_gray

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Percentiles are estimated on every 2nd pixel of every 2nd row: 4x fewer samples, and a
# 1 %/99 % bound moves by well under one grey level on real thermal frames.
_SUBSAMPLE = 2


class IrNormalizer:
    """Stateful (for the smoothing) IR -> uint8 mapper; one instance per IR stream."""

    def __init__(self, cfg: IrNormalizeConfig):
        self.cfg = cfg
        self._bounds: tuple[float, float] | None = None

    def reset(self) -> None:
        """Forget the smoothed bounds (e.g. after a camera was lost or the bag looped)."""
        self._bounds = None

    def bounds(self, values: np.ndarray) -> tuple[float, float]:
        """The ``(low, high)`` window for this frame (after smoothing in percentile mode)."""
        cfg = self.cfg
        if cfg.mode == "fixed":
            return cfg.fixed_min, cfg.fixed_max
        sample = values[::_SUBSAMPLE, ::_SUBSAMPLE]
        if sample.dtype.kind == "f":
            sample = sample[np.isfinite(sample)]
        if sample.size == 0:
            return self._bounds or (0.0, 1.0)
        lo, hi = np.percentile(sample, (cfg.low_percentile, cfg.high_percentile))
        if self._bounds is not None and cfg.smoothing > 0:
            s = cfg.smoothing
            lo, hi = s * self._bounds[0] + (1 - s) * lo, s * self._bounds[1] + (1 - s) * hi
        self._bounds = (float(lo), float(hi))
        return self._bounds

    def __call__(self, ir: np.ndarray) -> np.ndarray:
        if ir.ndim == 3:
            if ir.dtype == np.uint8:
                return rgb_to_gray(ir[:, :, :3])
            ir = ir[:, :, :3].astype(np.float32) @ _LUMA
        if ir.dtype == np.uint8:
            return ir
        lo, hi = self.bounds(ir)
        scale = 255.0 / max(hi - lo, 1e-6)
        if ir.dtype == np.uint16:
            # The same mapping as below, computed once per possible value (65,536) and looked up:
            # identical output, about 5x faster than the float passes over a 640x480 frame.
            return np.take(self._stretch(np.arange(65536, dtype=np.float32), lo, scale), ir)
        return self._stretch(ir.astype(np.float32), lo, scale)

    @staticmethod
    def _stretch(values: np.ndarray, lo: float, scale: float) -> np.ndarray:
        """float32 values -> uint8: ``(v - lo) * scale`` rounded, NaN and -inf to 0, +inf to 255."""
        out = (values - np.float32(lo)) * np.float32(scale) + np.float32(0.5)
        out = np.nan_to_num(out, nan=0.0, posinf=255.0, neginf=0.0)
        return np.clip(out, 0, 255).astype(np.uint8)
