"""Synthetic fusion tasks with known ground truth, for the STFuse-style guidance loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _box_blur(img: torch.Tensor, radius: int) -> torch.Tensor:
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(img, (radius,) * 4, mode="replicate"), k, stride=1)


def multifocus_pair(img: torch.Tensor, generator: torch.Generator | None = None):
    """Split ``img`` into two partially defocused views with complementary smooth masks.

    Returns (near, far, target=img): fusing the two must recover the all-in-focus image, so
    the fusion path gets a supervised signal for "keep the sharper detail" (multi-focus
    fusion, the task STFuse borrows guidance from).
    """
    n, _, h, w = img.shape
    blurred = _box_blur(img, radius=3)
    # Low-frequency random field -> smooth complementary focus masks.
    field = torch.rand(n, 1, 4, 4, generator=generator).to(img)
    mask = (F.interpolate(field, size=(h, w), mode="bilinear", align_corners=False) > 0.5).to(img)
    mask = _box_blur(mask, radius=2)
    near = mask * img + (1 - mask) * blurred
    far = (1 - mask) * img + mask * blurred
    return near, far, img
