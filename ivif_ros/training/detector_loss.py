"""FastestDet's training objective, for fine-tuning on MSRS.

The detector predicts one box per cell of its stride-16 map (here its logits,
``FastestDet.forward_logits``): channel 0 objectness, 1-2 the centre as ``tanh`` offsets from the cell's corner in cell units,
3-4 width and height as ``sigmoid`` fractions of the whole map, then class logits.

Target assignment: a box is a candidate for the four cells whose corner lies within one
cell of its centre (the centre's cell and its right, lower and lower-right neighbours, since
``tanh`` reaches one cell either way). Of a box's candidates, those whose predicted box
overlaps it better than the candidates' mean are positives (the best always is). Positives
learn the box (1 - SIoU), the class (negative log-likelihood) and an objectness equal to
their IoU (IoU-aware objectness); all other cells learn objectness 0. Positives and
negatives share the objectness loss 1:3, positives spread evenly per image, as in the
authors' code. Weights: 8 box + 16 objectness + 1 class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CORNERS = ((0, 0), (1, 0), (0, 1), (1, 1))


@dataclass
class LossParts:
    box: torch.Tensor
    obj: torch.Tensor
    cls: torch.Tensor
    total: torch.Tensor


def siou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """SIoU of ``cx, cy, w, h`` boxes (N,4) x (N,4): IoU minus half of the distance and shape
    costs of Gevorgyan 2022 (the distance cost weighted by the angle between the centres)."""
    p1, p2 = pred[:, :2] - pred[:, 2:] / 2, pred[:, :2] + pred[:, 2:] / 2
    t1, t2 = target[:, :2] - target[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2
    inter = (torch.min(p2, t2) - torch.max(p1, t1)).clamp(min=0).prod(1)
    wp, hp = pred[:, 2], pred[:, 3] + eps
    wt, ht = target[:, 2], target[:, 3] + eps
    iou = inter / (wp * hp + wt * ht - inter + eps)

    hull = torch.max(p2, t2) - torch.min(p1, t1)  # enclosing box width, height
    d = target[:, :2] - pred[:, :2]
    dist = d.norm(dim=1) + eps
    sin_x, sin_y = d[:, 0].abs() / dist, d[:, 1].abs() / dist
    sin_a = torch.where(sin_x > math.sqrt(0.5), sin_y, sin_x)  # the smaller of the two angles
    angle = torch.cos(2 * torch.arcsin(sin_a.clamp(max=1.0)) - math.pi / 2)
    gamma = angle - 2
    rho = (d / (hull + eps)) ** 2
    distance = 2 - torch.exp(gamma * rho[:, 0]) - torch.exp(gamma * rho[:, 1])
    omega_w = (wp - wt).abs() / torch.max(wp, wt).clamp(min=eps)
    omega_h = (hp - ht).abs() / torch.max(hp, ht)
    shape = (1 - torch.exp(-omega_w)) ** 4 + (1 - torch.exp(-omega_h)) ** 4
    return iou - 0.5 * (distance + shape)


def assign(targets: torch.Tensor, h: int, w: int):
    """Candidate cells of each box. ``targets`` (M,6): batch, class, cx, cy, w, h normalised.

    Returns (box index, batch, cell x, cell y) of every in-map candidate, and the boxes in
    cell units (M,4).
    """
    scale = targets.new_tensor([w, h, w, h])
    boxes = targets[:, 2:6] * scale
    base = boxes[:, :2].floor().long()
    idx, gx, gy = [], [], []
    m = torch.arange(len(targets), device=targets.device)
    for dx, dy in CORNERS:
        cx, cy = base[:, 0] + dx, base[:, 1] + dy
        ok = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        idx.append(m[ok])
        gx.append(cx[ok])
        gy.append(cy[ok])
    idx = torch.cat(idx)
    return idx, targets[idx, 0].long(), torch.cat(gx), torch.cat(gy), boxes


def detector_loss(preds: torch.Tensor, targets: torch.Tensor, weights=(8.0, 16.0, 1.0)) -> LossParts:
    """``preds`` (N,5+C,H,W) logits (``forward_logits``); ``targets`` (M,6) (see ``assign``)."""
    n, _, h, w = preds.shape
    pobj = preds[:, 0].sigmoid()
    zero = preds.sum() * 0.0
    tobj = torch.zeros_like(pobj)
    factor = torch.full_like(pobj, 0.75)
    box_loss, cls_loss = zero, zero
    if len(targets):
        idx, b, gx, gy, boxes = assign(targets, h, w)
        if len(idx):
            reg = preds[b, 1:5, gy, gx]
            pbox = torch.stack(
                [reg[:, 0].tanh() + gx, reg[:, 1].tanh() + gy, reg[:, 2].sigmoid() * w, reg[:, 3].sigmoid() * h], 1
            )
            iou = siou(pbox, boxes[idx])
            # positives: candidates above their own box's mean IoU, and each box's best
            with torch.no_grad():
                count = torch.zeros(len(targets), device=iou.device).index_add_(0, idx, torch.ones_like(iou))
                mean = torch.zeros(len(targets), device=iou.device).index_add_(0, idx, iou) / count.clamp(min=1)
                best = torch.full((len(targets),), -1e9, device=iou.device).scatter_reduce(0, idx, iou, "amax")
                pos = (iou > mean[idx]) | (iou >= best[idx])
            b, gx, gy, iou, cls = b[pos], gx[pos], gy[pos], iou[pos], targets[idx[pos], 1].long()
            box_loss = (1.0 - iou).mean()
            cls_loss = F.cross_entropy(preds[b, 5:, gy, gx], cls)
            tobj[b, gy, gx] = iou.detach().clamp(min=0.0)
            per_image = torch.bincount(b, minlength=n).float()
            factor[b, gy, gx] = 0.25 * (h * w) / per_image[b]
    obj_loss = (F.smooth_l1_loss(pobj, tobj, reduction="none") * factor).mean()
    total = weights[0] * box_loss + weights[1] * obj_loss + weights[2] * cls_loss
    return LossParts(box_loss, obj_loss, cls_loss, total)
