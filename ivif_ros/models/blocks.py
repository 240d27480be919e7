"""Building blocks shared by the teacher and the student.

Everything here is an ``nn.Module`` built from export-friendly operations unless its
docstring says otherwise (the teacher-only frequency and attention blocks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Sequential):
    """3x3 (or kxk) convolution, batch norm, activation. BN folds into the conv at export."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class DepthwiseSeparable(nn.Module):
    """Residual depthwise 3x3 + pointwise expansion/projection (MobileNetV2-style).

    Spends most MACs in 1x1 convs, which every backend runs at near-peak throughput.
    """

    def __init__(self, ch: int, expand: int = 2):
        super().__init__()
        hidden = ch * expand
        self.body = nn.Sequential(
            ConvBNAct(ch, hidden, k=1),
            ConvBNAct(hidden, hidden, groups=hidden),
            ConvBNAct(hidden, ch, k=1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class ChannelGate(nn.Module):
    """Squeeze-excitation: a global-average-pooled descriptor re-weights channels.

    The cheapest way to give a fully convolutional net image-level (global) context.
    """

    def __init__(self, ch: int, reduction: int = 4):
        super().__init__()
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(ch, max(ch // reduction, 8), 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(max(ch // reduction, 8), ch, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class FusionPrior(nn.Module):
    """Fused image = clamp(w * ir + (1 - w) * vis + residual).

    ``w`` starts as a soft maximum selection, ``sigmoid(sharpness * (ir - vis))``, so an
    untrained net already outputs ~pixel-max fusion (a strong baseline on MSRS); the
    network learns a low-resolution correction of the gate logit and a detail residual.
    ``sharpness`` is a learned scalar.
    """

    def __init__(self, sharpness: float = 20.0):
        super().__init__()
        self.sharpness = nn.Parameter(torch.tensor(float(sharpness)))

    def forward(self, ir, vis, gate_correction, residual):
        w = torch.sigmoid(self.sharpness * (ir - vis) + gate_correction)
        return torch.clamp(w * ir + (1 - w) * vis + residual, 0.0, 1.0)


class DetailHead(nn.Module):
    """Full-resolution detail residual from the sources plus an upsampled context map.

    Kept to 8 channels: full-resolution convolutions dominate the latency of fusion nets.
    """

    def __init__(self, ctx_ch: int, hidden: int = 8):
        super().__init__()
        self.src = nn.Conv2d(2, hidden, 3, padding=1)
        self.ctx = nn.Conv2d(ctx_ch, hidden, 1)
        self.out = nn.Conv2d(hidden, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # start exactly at the prior
        nn.init.zeros_(self.out.bias)

    def forward(self, ir, vis, ctx_full):
        return self.out(F.relu(self.src(torch.cat([ir, vis], 1)) + self.ctx(ctx_full)))


class TaskHeads(nn.Module):
    """The teacher's heads at 1/4: semantic logits, CenterNet heatmap (after sigmoid) and box
    regression, each behind its own 3x3 conv. The student keeps only a semantic head."""

    def __init__(self, ch: int, num_seg: int, num_det: int, hidden: int = 32):
        super().__init__()

        def head(cout: int) -> nn.Module:
            return nn.Sequential(ConvBNAct(ch, hidden), nn.Conv2d(hidden, cout, 1))

        self.seg, self.heat, self.box = head(num_seg), head(num_det), head(4)
        # CenterNet prior: start with a low centre probability so the focal loss is stable.
        nn.init.constant_(self.heat[-1].bias, -2.19)

    def forward(self, x: torch.Tensor):
        return self.seg(x), torch.sigmoid(self.heat(x)), self.box(x)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise ``cin -> cout``: a 3x3 receptive field at ~1/9 of the MACs."""

    def __init__(self, cin: int, cout: int):
        super().__init__(ConvBNAct(cin, cin, groups=cin), ConvBNAct(cin, cout, k=1))


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the backward pass multiplies the gradient by ``scale``.

    Lets one task borrow a shared feature map without steering it at full strength
    (``scale`` 0 is a plain ``detach``). Call it only in training mode, so exported
    graphs carry no extra operations.
    """
    if scale == 1.0:
        return x
    if scale == 0.0:
        return x.detach()
    return x.detach() + scale * (x - x.detach())


def upsample(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize to ``size`` (align_corners=False: exported identically by ONNX/OpenVINO)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
