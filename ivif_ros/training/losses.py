"""Training losses. Images are (N,1,H,W) in [0,1]; each loss returns a scalar tensor.

Fusion (unsupervised; the target is derived from the sources):
``intensity_loss``, ``salient_intensity_loss``, ``gradient_loss``, ``ssim_loss``,
``edge_preservation_loss`` (differentiable Qabf), ``metric_ssim_loss``, ``fidelity_loss``, ``guidance_loss``. Tasks: ``semantic_loss``, ``heatmap_focal_loss``,
``box_regression_loss``, ``mask_bce_loss``. Distillation: ``output_distillation_loss``,
``gradient_distillation_loss``, ``FeatureDistillation``, ``distilled_semantic_loss``. The heatmap and box
losses train the teacher's detection heads (the student has none). The CLIP language-driven loss lives in
``ivif_ros.training.clip``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ivif_ros.metrics import contrast
from ivif_ros.metrics.fusion import qabf_sigmoids

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _sobel_xy(img: torch.Tensor, padding: str) -> torch.Tensor:
    """(N,2,H,W) horizontal and vertical Sobel responses; ``padding`` is an ``F.pad`` mode."""
    k = torch.stack([_SOBEL_X, _SOBEL_X.t()]).unsqueeze(1).to(img)
    return F.conv2d(F.pad(img, (1, 1, 1, 1), mode=padding), k)


def sobel_magnitude(img: torch.Tensor) -> torch.Tensor:
    """|dI/dx| + |dI/dy| with Sobel kernels (replicate padding: no fake edges at the border)."""
    return _sobel_xy(img, "replicate").abs().sum(1, keepdim=True)


def intensity_loss(fused, ir, vis):
    """L1 to the pixel-wise maximum: keeps the brighter (usually salient thermal) source."""
    return F.l1_loss(fused, torch.maximum(ir, vis))


def salient_intensity_loss(fused, ir, vis, mask):
    """L1 to max(ir, vis) inside the salient-target mask (boxes), averaged over the mask only,
    so small targets (pedestrians) weigh as much as the large background."""
    area = mask.sum().clamp_min(1.0)
    return ((fused - torch.maximum(ir, vis)).abs() * mask).sum() / area


def gradient_loss(fused, ir, vis):
    """L1 between the fused Sobel magnitude and the larger of the source magnitudes (texture)."""
    return F.l1_loss(sobel_magnitude(fused), torch.maximum(sobel_magnitude(ir), sobel_magnitude(vis)))


def _edges(img: torch.Tensor, eps: float):
    """Sobel strength and orientation atan(Sy/Sx) of a 0..255 image, zero padding as in the metric."""
    g = _sobel_xy(img, "constant")
    sx, sy = g[:, 0:1], g[:, 1:2]
    strength = torch.sqrt(sx * sx + sy * sy + eps)
    # The metric sets the orientation to pi/2 where Sx == 0; a signed floor keeps atan finite.
    sx_safe = torch.where(sx.abs() < eps, torch.full_like(sx, eps), sx)
    return strength, torch.atan(sy / sx_safe)


def edge_preservation_loss(fused, ir, vis, eps: float = 1e-3):
    """1 - Qabf(F; IR, VIS), a differentiable restatement of the Qabf metric on 0..255 grey.

    Qabf rewards keeping, at every pixel, the strength and orientation of each source's edges,
    weighted by that source's edge strength. Pixel-max already keeps the brighter source's
    edges exactly, so a learned fusion beats it on Qabf only where it also keeps the dimmer
    source's edges; the Sobel-magnitude L1 alone does not see orientation. Differences from
    the metric, all for smooth gradients: the strength ratio is min/max of eps-floored
    strengths (the metric's ``g_src == g_F`` quirk is dropped) and the image is not rounded
    to integers. The orientation keeps the metric's form, with no wrap-around at +-pi/2.
    """
    g_f, a_f = _edges(fused * 255.0, eps)
    num, den = 0.0, 0.0
    for src in (ir, vis):
        g_s, a_s = _edges(src.detach() * 255.0, eps)
        ratio = torch.minimum(g_s, g_f) / torch.maximum(g_s, g_f)
        angle = 1 - (a_s - a_f).abs() / (torch.pi / 2)
        num = num + (qabf_sigmoids(ratio, angle, exp=torch.exp) * g_s).sum((1, 2, 3))
        den = den + g_s.sum((1, 2, 3))
    return 1.0 - (num / den.clamp_min(eps)).mean()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Mean SSIM (Gaussian 11x11, sigma 1.5, data range 1) per batch, as in Wang et al. 2004."""
    w = _gaussian_window(window).to(a)
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    return _ssim_map(mu_a, mu_b, var_a, var_b, cov, 0.01**2, 0.03**2).mean()


def _ssim_map(mu_a, mu_b, var_a, var_b, cov, c1, c2):
    """Wang et al.'s SSIM formula from local means, variances and covariance."""
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim_loss(fused, ir, vis):
    """1 - mean(SSIM(F, IR), SSIM(F, VIS)): structural similarity to both sources."""
    return 1.0 - 0.5 * (ssim(fused, ir) + ssim(fused, vis))


# The reference SSIM (CDDFuse's skimage call) has near-zero constants: data_range 2 on 0..255
# grey gives c2 = 3.6e-3, so flat dark regions, most of a night scene, count as much as edges
# and score how well F's faint fluctuations follow each source's. The Gaussian loss above
# (c2 = 0.03^2 on 0..1, i.e. 58 on 0..255) barely sees those regions. Below one 8-bit step the
# metric sees nothing (F is rounded), so the constants are floored at the variance of 8-bit
# rounding noise, which also keeps the gradients finite where a source is perfectly flat.
_QUANT_VAR = (1.0 / 255.0) ** 2 / 12.0


def metric_ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean SSIM as the reference metric computes it (7x7 uniform window, 'valid' map, sample
    covariance), on 0..1 images, with constants floored at the 8-bit rounding-noise variance.
    Identical images score 1."""
    norm = window * window / (window * window - 1.0)
    mu_a, mu_b = F.avg_pool2d(a, window, 1), F.avg_pool2d(b, window, 1)
    var_a = norm * (F.avg_pool2d(a * a, window, 1) - mu_a**2)
    var_b = norm * (F.avg_pool2d(b * b, window, 1) - mu_b**2)
    cov = norm * (F.avg_pool2d(a * b, window, 1) - mu_a * mu_b)
    c1 = max((0.01 * 2.0 / 255.0) ** 2, _QUANT_VAR)
    c2 = max((0.03 * 2.0 / 255.0) ** 2, _QUANT_VAR)
    return _ssim_map(mu_a, mu_b, var_a, var_b, cov, c1, c2).mean()


def metric_ssim_loss(fused, ir, vis):
    """1 - mean(metric SSIM(F, IR), metric SSIM(F, VIS)): the reference SSIM's own weighting,
    which rewards following both sources in low-contrast regions (where pixel-max copies one)."""
    return 1.0 - 0.5 * (metric_ssim(fused, ir.detach()) + metric_ssim(fused, vis.detach()))


def _local_std(img: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    pad = window // 2
    padded = F.pad(img, (pad,) * 4, mode="replicate")
    mean = F.avg_pool2d(padded, window, stride=1)
    var = F.avg_pool2d(padded * padded, window, stride=1) - mean * mean
    return mean, torch.sqrt(var.clamp_min(0.0) + 1e-6)


def contrast_loss(fused, vis, window: int = contrast.WINDOW):
    """Local contrast the fused image loses against the visible one where the visible image is
    well exposed (the window and thresholds of ``ivif_ros.metrics.contrast``, which scores the
    same thing on whole frames): the shortfall of the fused local standard deviation, relative
    to the visible one's, 0 when nothing is lost. IR that lifts a whole region flattens its
    visible detail; this is the term that sees it."""
    vis_mean, vis_std = _local_std(vis, window)
    _, fused_std = _local_std(fused, window)
    low, high = contrast.EXPOSED
    saturated = F.max_pool2d(vis, window, stride=1, padding=window // 2) >= contrast.SATURATED / 255
    exposed = ((vis_mean >= low) & (vis_mean <= high) & ~saturated).to(vis.dtype)
    return (F.relu(vis_std - fused_std) * exposed).sum() / ((vis_std * exposed).sum() + 1e-6)


def fidelity_loss(recon_ir, recon_vis, ir, vis):
    """Scene fidelity (PSFusion): the fused features must still hold both sources."""
    return F.l1_loss(recon_ir, ir) + F.l1_loss(recon_vis, vis)


def guidance_loss(fused, target):
    """STFuse guidance: on a synthetic pair (e.g. multi-focus) whose all-in-focus ground truth
    is known, supervise the fusion path directly (intensity + gradient L1)."""
    return F.l1_loss(fused, target) + F.l1_loss(sobel_magnitude(fused), sobel_magnitude(target))


def semantic_loss(logits, target, eps: float = 1.0):
    """Cross-entropy + soft Dice over classes. ``target`` is (N,h,w) int64 class ids."""
    ce = F.cross_entropy(logits, target)
    prob = logits.softmax(1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(prob)
    inter = (prob * onehot).sum((0, 2, 3))
    denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = 1.0 - ((2 * inter + eps) / (denom + eps)).mean()
    return ce + dice


def heatmap_focal_loss(pred, gt, alpha: float = 2.0, beta: float = 4.0):
    """CenterNet penalty-reduced focal loss. ``pred`` is after sigmoid, ``gt`` Gaussian
    splats with exact 1 at object centres; normalised by the number of centres."""
    pred = pred.clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    pos_loss = torch.log(pred) * (1 - pred) ** alpha * pos
    neg_loss = torch.log(1 - pred) * pred**alpha * (1 - gt) ** beta * (1 - pos)
    return -(pos_loss + neg_loss).sum() / pos.sum().clamp_min(1.0)


def box_regression_loss(pred, target, centre_mask):
    """L1 on (dx, dy, log w, log h) at object-centre cells only. ``centre_mask`` (N,1,h,w)."""
    return ((pred - target).abs() * centre_mask).sum() / (4 * centre_mask.sum()).clamp_min(1.0)


def mask_bce_loss(logits, target):
    """Binary cross-entropy for the teacher's boundary and binary (object vs background) heads,
    with positives re-weighted by their rarity."""
    pos = target.mean().clamp(1e-3, 0.5)
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=(1 - pos) / pos)


def output_distillation_loss(student_fused, teacher_fused):
    """L1 between the student's and the teacher's fused images."""
    return F.l1_loss(student_fused, teacher_fused.detach())


def gradient_distillation_loss(student_fused, teacher_fused):
    """L1 between the Sobel responses (x and y, signed) of the student's and the teacher's fused
    images. The teacher transfers source edges better than any student (Qabf 0.733 against
    0.71-0.72) while its intensities cost SSIM (0.975), so this distils its edges (strength
    and orientation, what Qabf scores) and leaves the intensities to the fusion losses."""
    return F.l1_loss(_sobel_xy(student_fused, "replicate"), _sobel_xy(teacher_fused.detach(), "replicate"))


class FeatureDistillation(nn.Module):
    """A 1x1 adapter maps student features to the teacher's channel count; MSE on the
    per-channel standardised maps so the loss scale does not depend on BN statistics."""

    def __init__(self, student_ch: int, teacher_ch: int):
        super().__init__()
        self.adapter = nn.Conv2d(student_ch, teacher_ch, 1)

    @staticmethod
    def _standardise(x):
        return (x - x.mean((2, 3), keepdim=True)) / (x.std((2, 3), keepdim=True) + 1e-5)

    def forward(self, student_feat, teacher_feat):
        s = self.adapter(student_feat)
        if s.shape[-2:] != teacher_feat.shape[-2:]:
            s = F.interpolate(s, size=teacher_feat.shape[-2:], mode="bilinear", align_corners=False)
        return F.mse_loss(self._standardise(s), self._standardise(teacher_feat.detach()))


def distilled_semantic_loss(student_logits, teacher_logits, temperature: float = 2.0):
    """DFSFuse distilled semantic loss: KL(teacher || student) of temperature-softened class
    distributions, scaled by T^2 (Hinton et al.) so gradients keep their magnitude."""
    t = temperature
    log_s = F.log_softmax(student_logits / t, 1)
    log_t = F.log_softmax(teacher_logits.detach() / t, 1)
    kl = (log_t.exp() * (log_t - log_s)).sum(1).mean()
    return kl * t * t
