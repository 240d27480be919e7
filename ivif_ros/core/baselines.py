"""Classical (training-free) infrared-visible fusion baselines.

Every method fuses the infrared image with the **luma** of the visible image, as learned fusion
methods do; colour is put back afterwards with the visible chroma (``core.color.restore_color``).
Signature of every entry of ``BASELINES``::

    fn(ir_u8: HxW uint8, vis_y_u8: HxW uint8) -> fused_y_u8: HxW uint8

- ``max``: pixel-wise maximum. Keeps hot targets and bright visible detail; a strong, popular
  sanity baseline (it reproduces the published "VIF 1.05 / Qabf 0.71" MSRS level).
- ``mean``: pixel-wise average. Halves the contrast of anything seen by one sensor only.
- ``laplacian``: Laplacian-pyramid fusion (Burt & Adelson); detail levels keep the coefficient
  of larger magnitude, the coarsest (base) level is averaged.
- ``gff``: guided-filtering fusion (S. Li, X. Kang, J. Hu, "Image fusion with guided filtering",
  IEEE TIP 2013) with the paper's parameters.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from ivif_ros.errors import InputError

FusionFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _check_sources(ir: np.ndarray, vis_y: np.ndarray) -> None:
    for name, img in (("infrared", ir), ("visible luma", vis_y)):
        if img.ndim != 2 or img.dtype != np.uint8:
            raise InputError(f"{name} image must be a grey HxW uint8 array, got {img.dtype} {img.shape}")
    if ir.shape != vis_y.shape:
        raise InputError(
            f"infrared {ir.shape[1]}x{ir.shape[0]} and visible {vis_y.shape[1]}x{vis_y.shape[0]} differ in size; "
            "register the infrared image onto the visible frame first"
        )


def _to_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def fuse_max(ir: np.ndarray, vis_y: np.ndarray) -> np.ndarray:
    """Pixel-wise maximum of the infrared and visible luma."""
    _check_sources(ir, vis_y)
    return np.maximum(ir, vis_y)


def fuse_mean(ir: np.ndarray, vis_y: np.ndarray) -> np.ndarray:
    """Pixel-wise average, rounded half up (exact in 16-bit integers)."""
    _check_sources(ir, vis_y)
    return ((ir.astype(np.uint16) + vis_y + 1) >> 1).astype(np.uint8)


# --------------------------------------------------------------------------- Laplacian pyramid


def _pyramid_levels(shape: tuple[int, int], coarsest: int = 8, max_levels: int = 6) -> int:
    """Number of detail levels so the coarsest image keeps at least ``coarsest`` pixels a side."""
    levels = int(np.floor(np.log2(min(shape) / coarsest)))
    return int(np.clip(levels, 1, max_levels))


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` band-pass images (finest first) followed by the low-pass residual."""
    pyramid, current = [], image
    for _ in range(levels):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - up)
        current = down
    pyramid.append(current)
    return pyramid


def collapse_pyramid(pyramid: list[np.ndarray]) -> np.ndarray:
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])) + band
    return image


def fuse_laplacian(ir: np.ndarray, vis_y: np.ndarray, levels: int | None = None) -> np.ndarray:
    """Laplacian-pyramid fusion: max-|coefficient| detail selection, averaged base level."""
    _check_sources(ir, vis_y)
    levels = levels or _pyramid_levels(ir.shape)
    pa = laplacian_pyramid(ir.astype(np.float32), levels)
    pb = laplacian_pyramid(vis_y.astype(np.float32), levels)
    fused = [np.where(np.abs(a) >= np.abs(b), a, b) for a, b in zip(pa[:-1], pb[:-1])]
    fused.append((pa[-1] + pb[-1]) / 2)
    return _to_u8(collapse_pyramid(fused))


# --------------------------------------------------------------------------- guided-filter fusion


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter (K. He et al., TPAMI 2013) from O(1) box means."""
    mean_i, mean_p = _box_mean(guide, radius), _box_mean(src, radius)
    cov_ip = _box_mean(guide * src, radius) - mean_i * mean_p
    var_i = _box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box_mean(a, radius) * guide + _box_mean(b, radius)


_LAPLACIAN_3X3 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def fuse_gff(
    ir: np.ndarray,
    vis_y: np.ndarray,
    base_radius: int = 15,
    r1: int = 45,
    eps1: float = 0.3,
    r2: int = 7,
    eps2: float = 1e-6,
) -> np.ndarray:
    """Guided-filtering fusion (Li et al. 2013), defaults from the paper.

    Two-scale split with a 31x31 mean filter (``base_radius`` 15); each layer is the per-pixel
    weighted sum of the sources' layers with the weights of ``gff_weights``.
    """
    _check_sources(ir, vis_y)
    sources = [ir.astype(np.float32) / 255, vis_y.astype(np.float32) / 255]
    bases = [_box_mean(s, base_radius) for s in sources]
    details = [s - b for s, b in zip(sources, bases)]
    w_base, w_detail = gff_weights(sources, r1, eps1, r2, eps2)
    fused = (w_base * np.stack(bases)).sum(0) + (w_detail * np.stack(details)).sum(0)
    return _to_u8(fused * 255)


def gff_weights(
    sources: list[np.ndarray], r1: int = 45, eps1: float = 0.3, r2: int = 7, eps2: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """Base- and detail-layer weights (each ``(N, H, W)``, summing to 1 per pixel) of GFF for
    float sources in 0..1.

    Saliency is |Laplacian| smoothed by a Gaussian (r = 5, sigma = 5); the binary "most salient"
    maps are refined by a guided filter with each source as guide (r1, eps1 for the base layer:
    smooth, spatially consistent weights; r2, eps2 for the detail layer: edge-sharp weights).
    """
    saliency = np.stack(
        [
            cv2.GaussianBlur(np.abs(cv2.filter2D(s, -1, _LAPLACIAN_3X3, borderType=cv2.BORDER_REFLECT)), (11, 11), 5)
            for s in sources
        ]
    )
    winner = saliency.argmax(0)  # ties go to the first source
    masks = [(winner == k).astype(np.float32) for k in range(len(sources))]
    w_base = np.stack([guided_filter(s, m, r1, eps1) for s, m in zip(sources, masks)])
    w_detail = np.stack([guided_filter(s, m, r2, eps2) for s, m in zip(sources, masks)])
    return _normalise_weights(w_base), _normalise_weights(w_detail)


def _normalise_weights(w: np.ndarray) -> np.ndarray:
    """Clip the guided-filter overshoot to >= 0 and make the weights sum to 1 per pixel
    (equal weights where both vanish)."""
    w = np.clip(w, 0, None)
    total = w.sum(0, keepdims=True)
    return np.where(total > 1e-6, w / np.maximum(total, 1e-6), 1.0 / len(w))


BASELINES: dict[str, FusionFn] = {
    "max": fuse_max,
    "mean": fuse_mean,
    "laplacian": fuse_laplacian,
    "gff": fuse_gff,
}
