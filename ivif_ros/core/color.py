"""YCbCr colour handling for fusion (ITU-R BT.601, full range, as JPEG and fusion papers use).

Fusion methods fuse the infrared image with the **luma** (Y) of the visible image and put the
colour back with the visible chroma (Cb, Cr). This module is the one place that conversion is
defined, so the metrics, the baselines and the model pre/post-processing agree exactly.

Full-range BT.601 (no 16..235 head-room), the matrix of OpenCV's ``COLOR_RGB2YCrCb`` and of
the fusion papers' own YCbCr code (not MATLAB's studio-range ``rgb2ycbcr``)::

    Y  =        0.299    R + 0.587    G + 0.114    B
    Cb = off -  0.168736 R - 0.331264 G + 0.5      B
    Cr = off +  0.5      R - 0.418688 G - 0.081312 B

``off`` is the chroma zero: 128 for 8-bit data (peak 255), ``peak / 2`` otherwise (0.5 on 0..1).

Scale convention: integer input is on the 0..255 scale, floating-point input on 0..1 unless
``peak`` says otherwise. Outputs are floating point (float32 for integer input, the input
dtype for float input) and are *not* rounded; use ``rgb_to_y_u8`` / ``restore_color`` for the
common uint8 paths.
"""

from __future__ import annotations

import numpy as np

_RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
# The exact inverse, so that a round trip is lossless up to float rounding.
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def _peak_of(a: np.ndarray, peak: float | None) -> float:
    if peak is not None:
        return float(peak)
    return 255.0 if np.issubdtype(a.dtype, np.integer) else 1.0


def _chroma_offset(peak: float) -> float:
    return 128.0 if peak == 255.0 else peak / 2


def _float_dtype(a: np.ndarray) -> np.dtype:
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)


def rgb_to_ycbcr(rgb: np.ndarray, peak: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split an ``HxWx3`` RGB image into float ``(y, cb, cr)`` planes on the input's scale.

    ``peak`` is the white level (inferred: 255 for integer arrays, 1.0 for float arrays).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_ycbcr expects an HxWx3 RGB array, got shape {rgb.shape}")
    dtype = _float_dtype(rgb)
    offset = _chroma_offset(_peak_of(rgb, peak))
    ycc = rgb.astype(dtype, copy=False) @ _RGB_TO_YCBCR.T.astype(dtype)
    ycc[..., 1:] += dtype.type(offset)
    return ycc[..., 0], ycc[..., 1], ycc[..., 2]


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, peak: float | None = None) -> np.ndarray:
    """Merge ``(y, cb, cr)`` planes back into an ``HxWx3`` RGB image clipped to ``[0, peak]``.

    Integer ``y`` (e.g. a uint8 fused luma) gives a rounded uint8 result on 0..255; float ``y``
    gives a float result on the scale ``peak`` (inferred 1.0 for float input).
    """
    y = np.asarray(y)
    integer_out = np.issubdtype(y.dtype, np.integer)
    pk = _peak_of(y, peak)
    dtype = np.dtype(np.float32) if integer_out else _float_dtype(y)
    planes = np.stack([np.asarray(p, dtype) for p in (y, cb, cr)], axis=-1)
    planes[..., 1:] -= dtype.type(_chroma_offset(pk))
    rgb = np.clip(planes @ _YCBCR_TO_RGB.T.astype(dtype), 0, pk)
    if integer_out:
        return np.rint(rgb).astype(np.uint8)
    return rgb


def rgb_to_y_u8(image: np.ndarray) -> np.ndarray:
    """uint8 luma of an RGB uint8 image (a grey ``HxW`` image is returned unchanged).

    Rounded to nearest, i.e. the grey value ``cv2.cvtColor(..., COLOR_RGB2GRAY)`` gives and the
    value the CDDFuse evaluation reads its images as.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    y, _, _ = rgb_to_ycbcr(image)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def restore_color(fused_y: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Colour a fused uint8 luma with the visible image's chroma (uint8 RGB out).

    A grey visible image has no chroma, so the fused luma is returned as it is.
    """
    visible = np.asarray(visible)
    if visible.ndim == 2:
        return np.asarray(fused_y)
    _, cb, cr = rgb_to_ycbcr(visible)
    return ycbcr_to_rgb(np.asarray(fused_y, np.uint8), cb, cr, peak=255)
