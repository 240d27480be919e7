"""No-reference fusion-quality metrics: EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM.

Every metric scores a fused grey image ``F`` (and, where it compares, the two sources ``A`` =
infrared and ``B`` = visible luma). Images are grey, **0..255**, converted to float64 (colour
inputs are reduced to BT.601 luma first, see ``as_grey``). Higher is better for all nine.

Published fusion numbers come from two code bases that disagree in places, so each metric
follows one of two conventions, picked with ``variant``:

``"cddfuse"`` (default)
    ``utils/Evaluator.py`` of github.com/Zhaozixiang1228/MMIF-CDDFuse (MIT licence), run with
    its pinned dependencies (scikit-image 0.19.2, scikit-learn 1.1.3). Most recent MSRS/TNO
    tables (CDDFuse, and methods re-scored with its code) use it.
``"matlab"``
    Linfeng Tang's MATLAB evaluation (github.com/Linfeng-Tang/Evaluation-for-Image-Fusion; the
    same files ship in Linfeng-Tang/SeAFusion ``Evaluation/``), in its corrected form where
    images are doubles (the author notes that an earlier uint8 version truncated SD, VIF, SCD
    and SF). It is a transcription: MATLAB is not available here, so it is not checked
    against MATLAB itself, only against hand-checkable cases.

Where the conventions differ (everything else is identical):

======  =====================================  ==========================================
metric  cddfuse                                matlab
======  =====================================  ==========================================
SF      on 0..255                              on 0..1 (``im2double``), i.e. /255
AG      mean over H*W pixels                   sum divided by (H-1)(W-1)
MI      natural log (nats), sklearn            log2 (bits), 256-bin joint histogram
VIF     a NaN ratio (flat reference) -> 1.0    NaN stays NaN
Qabf    gradients on 0..255                    gradients on 0..1 (matters through the
                                               ``g_A == g_F`` quirk, see ``qabf``)
SSIM    skimage: 7x7 uniform window, sample    MATLAB ``ssim``: 11x11 Gaussian sigma 1.5,
        covariance, data_range 2 (float32      replicate padding, L = 255, mean of the
        default of skimage 0.19), 3-px border  whole map; **averaged**
        cropped; **summed** ssim(F,A)+ssim(F,B)  (ssim(F,A)+ssim(F,B))/2
======  =====================================  ==========================================

Both are vectorised (OpenCV separable/box filters, ``np.bincount`` histograms); all nine on a
640x480 triple take about 0.1-0.2 s on one core.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ivif_ros.core.color import rgb_to_y_u8
from ivif_ros.errors import ConfigError, InputError

METRIC_NAMES = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM")
VARIANTS = ("cddfuse", "matlab")


# --------------------------------------------------------------------------- helpers


def as_grey(image: np.ndarray) -> np.ndarray:
    """float64 grey 0..255 from a uint8 (or already 0..255 float) grey or RGB image."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        if image.dtype != np.uint8:
            raise InputError(
                f"colour images must be uint8 RGB to be reduced to luma, got {image.dtype}; "
                "pass the grey (Y) image instead"
            )
        image = rgb_to_y_u8(image)
    if image.ndim != 2:
        raise InputError(f"expected a grey HxW or colour HxWx3 image, got shape {image.shape}")
    return image.astype(np.float64)


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown metrics variant {variant!r}; use one of {', '.join(VARIANTS)}")


def _check_triple(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    if not (f.shape == a.shape == b.shape) or f.ndim != 2:
        raise InputError(
            f"fused {f.shape}, infrared {a.shape} and visible {b.shape} must be grey images of one size; "
            "register/resize the sources to the fused image first"
        )


def _histogram_entropy(counts: np.ndarray, log=np.log2) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * log(p)).sum())


def _as_levels(image: np.ndarray) -> np.ndarray:
    """Integer grey levels 0..255 (the rounding both references apply before histograms)."""
    return np.clip(np.rint(image), 0, 255).astype(np.intp)


def _correlate(image: np.ndarray, kernel: np.ndarray, border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """2-D correlation (kernel not flipped), output the size of ``image``."""
    return cv2.filter2D(image, cv2.CV_64F, kernel, borderType=border)


# --------------------------------------------------------------------------- single-image metrics


def entropy(f: np.ndarray) -> float:
    """EN: Shannon entropy (bits) of the 256-bin grey histogram of round(F). Same in both variants
    (CDDFuse ``np.bincount`` + log2; MATLAB ``entropy`` on uint8 uses ``imhist`` 256 bins + log2)."""
    return _histogram_entropy(np.bincount(_as_levels(f).ravel(), minlength=256))


def standard_deviation(f: np.ndarray) -> float:
    """SD: population standard deviation (divide by H*W) of F on 0..255. Same in both variants."""
    return float(np.std(f))


def spatial_frequency(f: np.ndarray, variant: str = "cddfuse") -> float:
    """SF = sqrt(mean(row diff^2) + mean(column diff^2)), forward differences, no padding.

    ``cddfuse``: F on 0..255. ``matlab``: ``SF_evaluation(im2double(F))``, i.e. F on 0..1, so
    the value is the cddfuse value / 255.
    """
    _check_variant(variant)
    dx = np.diff(f, axis=1)
    dy = np.diff(f, axis=0)
    sf = math.sqrt(np.mean(dx * dx) + np.mean(dy * dy))
    return sf / 255.0 if variant == "matlab" else sf


def average_gradient(f: np.ndarray, variant: str = "cddfuse") -> float:
    """AG: mean of sqrt((Gx^2 + Gy^2) / 2), gradients as MATLAB ``gradient`` / ``np.gradient``
    (central differences inside, one-sided at the border).

    ``cddfuse`` divides the sum by H*W (``np.mean``); ``matlab`` (``AG_evaluation``) by
    (H-1)(W-1), which makes it slightly larger.
    """
    _check_variant(variant)
    gy, gx = np.gradient(f)
    s = np.sqrt((gx * gx + gy * gy) / 2)
    if variant == "matlab":
        h, w = f.shape
        return float(s.sum() / ((h - 1) * (w - 1)))
    return float(s.mean())


# --------------------------------------------------------------------------- metrics against the sources


def _mutual_information_nats(x: np.ndarray, y: np.ndarray) -> float:
    """MI of two integer 0..255 images from their 256x256 joint histogram, natural log.

    Equal to ``sklearn.metrics.mutual_info_score`` on the flattened images (which builds the
    same contingency table over the distinct values, and clips negatives to 0).
    """
    joint = np.bincount((x * 256 + y).ravel(), minlength=256 * 256).reshape(256, 256).astype(np.float64)
    n = joint.sum()
    px, py = joint.sum(1), joint.sum(0)
    i, j = np.nonzero(joint)
    pij = joint[i, j]
    mi = np.sum(pij / n * (np.log(pij) + np.log(n) - np.log(px[i]) - np.log(py[j])))
    return max(float(mi), 0.0)


def mutual_information(f: np.ndarray, a: np.ndarray, b: np.ndarray, variant: str = "cddfuse") -> float:
    """MI = MI(F, A) + MI(F, B) over 256 grey levels (images rounded to integers).

    ``cddfuse``: nats (``sklearn.metrics.mutual_info_score``). ``matlab``: bits
    (``MI_evaluation``: H(A) + H(F) - H(A, F) with ``log2``), i.e. the cddfuse value / ln 2.
    """
    _check_variant(variant)
    lf, la, lb = _as_levels(f), _as_levels(a), _as_levels(b)
    mi = _mutual_information_nats(lf, la) + _mutual_information_nats(lf, lb)
    return mi / math.log(2) if variant == "matlab" else mi


def _corr2(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two images (MATLAB ``corr2``); NaN when either is constant."""
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(np.sum(xc * xc)) * float(np.sum(yc * yc)))
    return float(np.sum(xc * yc)) / den if den > 0 else math.nan


def scd(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """SCD (Aslantas & Bendes 2015): corr(F - B, A) + corr(F - A, B). Same in both variants.

    NaN when F - A or F - B is constant (e.g. F == A), as in both references.
    """
    return _corr2(f - b, a) + _corr2(f - a, b)


# VIF: the LIVE multi-scale pixel-domain VIF (``vifp_mscale.m``), which CDDFuse transcribes.
_VIF_SIGMA_NSQ = 2.0
_VIF_EPS = 1e-10


def _vif_kernel(n: int) -> np.ndarray:
    """1-D factor of MATLAB ``fspecial('gaussian', n, n/5)``: the 2-D window is its outer product
    (fspecial's tiny-value cut-off never triggers at these sizes)."""
    sd = n / 5.0
    x = np.arange(n) - (n - 1) / 2
    g = np.exp(-(x * x) / (2 * sd * sd))
    return g / g.sum()


def _filter_valid(image: np.ndarray, g: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(win, image, 'valid')`` for the separable window outer(g, g)."""
    r = (len(g) - 1) // 2
    full = cv2.sepFilter2D(image, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
    return full[r : image.shape[0] - r, r : image.shape[1] - r]


def _vif_terms(ref: np.ndarray, mu2: np.ndarray, sigma2_sq: np.ndarray, dist: np.ndarray, g: np.ndarray):
    """Numerator and denominator sums of one VIF scale (reference ``ref``, distorted ``dist``)."""
    eps = _VIF_EPS
    mu1 = _filter_valid(ref, g)
    sigma1_sq = np.maximum(_filter_valid(ref * ref, g) - mu1 * mu1, 0)
    sigma12 = _filter_valid(ref * dist, g) - mu1 * mu2

    gain = sigma12 / (sigma1_sq + eps)
    sv_sq = sigma2_sq - gain * sigma12
    flat_ref = sigma1_sq < eps
    gain[flat_ref] = 0
    sv_sq[flat_ref] = sigma2_sq[flat_ref]
    sigma1_sq[flat_ref] = 0
    flat_dist = sigma2_sq < eps
    gain[flat_dist] = 0
    sv_sq[flat_dist] = 0
    negative = gain < 0
    sv_sq[negative] = sigma2_sq[negative]
    gain[negative] = 0
    np.maximum(sv_sq, eps, out=sv_sq)

    num = np.sum(np.log10(1 + gain * gain * sigma1_sq / (sv_sq + _VIF_SIGMA_NSQ)))
    den = np.sum(np.log10(1 + sigma1_sq / _VIF_SIGMA_NSQ))
    return num, den


def vif(f: np.ndarray, a: np.ndarray, b: np.ndarray, variant: str = "cddfuse") -> float:
    """VIF = VIFp(A -> F) + VIFp(B -> F): multi-scale pixel-domain VIF (Sheikh & Bovik, LIVE
    ``vifp_mscale.m``), 4 scales, Gaussian windows N = 17, 9, 5, 3 with sigma N/5, 'valid'
    filtering, dyadic subsampling, sigma_n^2 = 2, images on 0..255.

    A source with no texture gives 0/0: ``cddfuse`` counts that ratio as 1.0, ``matlab`` keeps NaN.
    """
    _check_variant(variant)
    nums, dens = np.zeros(2), np.zeros(2)
    refs, dist = [a, b], f
    for scale in range(1, 5):
        g = _vif_kernel(2 ** (4 - scale + 1) + 1)
        if scale > 1:
            refs = [_filter_valid(r, g)[::2, ::2] for r in refs]
            dist = _filter_valid(dist, g)[::2, ::2]
        mu2 = _filter_valid(dist, g)
        sigma2_sq = np.maximum(_filter_valid(dist * dist, g) - mu2 * mu2, 0)
        for k, ref in enumerate(refs):
            num, den = _vif_terms(ref, mu2, sigma2_sq.copy(), dist, g)
            nums[k] += num
            dens[k] += den
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = nums / dens
    if variant == "cddfuse":
        ratios = np.where(np.isnan(ratios), 1.0, ratios)
    return float(ratios.sum())


# Qabf: Xydeas & Petrovic edge-preservation, constants of both references.
_QABF_TG, _QABF_KG, _QABF_DG = 0.9994, -15.0, 0.5
_QABF_TA, _QABF_KA, _QABF_DA = 0.9879, -22.0, 0.8
# conv2(img, h, 'same') with zero padding == correlation with the kernel rotated by 180 degrees.
_SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float64)[::-1, ::-1].copy()
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)[::-1, ::-1].copy()


def _edge_strength_orientation(image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    sx = _correlate(image, _SOBEL_X, cv2.BORDER_CONSTANT) * scale
    sy = _correlate(image, _SOBEL_Y, cv2.BORDER_CONSTANT) * scale
    strength = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        orientation = np.where(sx == 0, math.pi / 2, np.arctan(sy / sx))
    return strength, orientation


def _edge_preservation(g_src, a_src, g_f, a_f) -> np.ndarray:
    """Q^{SF} per pixel. Note the references' quirk kept on purpose: where g_src == g_F the
    strength ratio is set to g_F itself (not 1), so it depends on the grey scale."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(g_src > g_f, g_f / g_src, np.where(g_src == g_f, g_f, g_src / g_f))
    angle = 1 - np.abs(a_src - a_f) / (math.pi / 2)
    return qabf_sigmoids(ratio, angle)


def qabf_sigmoids(ratio, angle, exp=np.exp):
    """Q^{SF} = Q_g * Q_a from the strength ratio and the orientation agreement (1 - |da|/(pi/2)).

    Array-agnostic: numpy here, torch tensors with ``exp=torch.exp`` in the differentiable
    training loss (``ivif_ros.training.losses.edge_preservation_loss``), so both use one formula.
    """
    q_g = _QABF_TG / (1 + exp(_QABF_KG * (ratio - _QABF_DG)))
    q_a = _QABF_TA / (1 + exp(_QABF_KA * (angle - _QABF_DA)))
    return q_g * q_a


def qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray, variant: str = "cddfuse") -> float:
    """Qabf = sum(Q^{AF} g_A + Q^{BF} g_B) / sum(g_A + g_B), 3x3 Sobel with zero padding,
    orientation atan(Sy/Sx) (pi/2 where Sx == 0), Tg 0.9994, kg -15, Dg 0.5, Ta 0.9879,
    ka -22, Da 0.8.

    ``cddfuse`` uses gradients of the 0..255 image; ``matlab`` (``analysis_Qabf(im2double(..))``)
    of the 0..1 image. The only place this matters is the ``g_A == g_F`` quirk. Gradients are
    taken on integers and then scaled, so ``Sx == 0`` is exact (MATLAB's own float sums on
    0..1 can leave 1e-17 residues; that rounding cannot be reproduced without MATLAB).
    """
    _check_variant(variant)
    scale = 1 / 255.0 if variant == "matlab" else 1.0
    g_a, a_a = _edge_strength_orientation(a, scale)
    g_b, a_b = _edge_strength_orientation(b, scale)
    g_f, a_f = _edge_strength_orientation(f, scale)
    q_af = _edge_preservation(g_a, a_a, g_f, a_f)
    q_bf = _edge_preservation(g_b, a_b, g_f, a_f)
    return float(np.sum(q_af * g_a + q_bf * g_b) / np.sum(g_a + g_b))


def _ssim_skimage(f: np.ndarray, refs: list[np.ndarray]) -> list[float]:
    """skimage 0.19 ``structural_similarity(F, X)`` defaults on float32 images: 7x7 uniform
    window, sample covariance (x 49/48), data_range = 2 (the float dtype range (-1, 1)),
    K1 0.01, K2 0.03, mean over the map with a 3-pixel border cropped."""
    win, data_range = 7, 2.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    cov_norm = win * win / (win * win - 1)
    pad = (win - 1) // 2

    def box(x):
        return cv2.blur(x, (win, win), borderType=cv2.BORDER_REFLECT)[pad:-pad, pad:-pad]

    ux, uxx = box(f), box(f * f)
    vx = cov_norm * (uxx - ux * ux)
    out = []
    for r in refs:
        uy, uyy, uxy = box(r), box(r * r), box(f * r)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        out.append(float(s.mean()))
    return out


def _ssim_matlab(f: np.ndarray, refs: list[np.ndarray]) -> list[float]:
    """MATLAB ``ssim(F, X)`` defaults on 8-bit images: Gaussian sigma 1.5 in an 11x11 window,
    replicate padding, L = 255, K1 0.01, K2 0.03, population variances, mean of the full map."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def gauss(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REPLICATE)

    mx = gauss(f)
    vx = gauss(f * f) - mx * mx
    out = []
    for r in refs:
        my = gauss(r)
        vy = gauss(r * r) - my * my
        cxy = gauss(f * r) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out.append(float(s.mean()))
    return out


def ssim(f: np.ndarray, a: np.ndarray, b: np.ndarray, variant: str = "cddfuse") -> float:
    """SSIM of the fused image against both sources.

    ``cddfuse``: ssim(F, A) + ssim(F, B) with skimage's defaults (range 0..2, identical images
    score 2). ``matlab``: (ssim(F, A) + ssim(F, B)) / 2 with MATLAB's ``ssim`` (range 0..1).
    See ``_ssim_skimage`` / ``_ssim_matlab`` for windows and constants.
    """
    _check_variant(variant)
    if variant == "matlab":
        return float(np.mean(_ssim_matlab(f, [a, b])))
    return float(np.sum(_ssim_skimage(f, [a, b])))


# --------------------------------------------------------------------------- all at once


def fusion_metrics(fused: np.ndarray, ir: np.ndarray, vis: np.ndarray, variant: str = "cddfuse") -> dict[str, float]:
    """All nine metrics of one triple, keyed by ``METRIC_NAMES``.

    ``fused``, ``ir`` and ``vis`` are uint8 (or 0..255) images, grey or RGB (RGB is reduced to
    BT.601 luma, rounded, as the references read their images).
    """
    _check_variant(variant)
    f, a, b = as_grey(fused), as_grey(ir), as_grey(vis)
    _check_triple(f, a, b)
    return {
        "EN": entropy(f),
        "SD": standard_deviation(f),
        "SF": spatial_frequency(f, variant),
        "AG": average_gradient(f, variant),
        "MI": mutual_information(f, a, b, variant),
        "SCD": scd(f, a, b),
        "VIF": vif(f, a, b, variant),
        "Qabf": qabf(f, a, b, variant),
        "SSIM": ssim(f, a, b, variant),
    }
