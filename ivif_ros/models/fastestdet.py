"""FastestDet: a 0.25 M-parameter anchor-free COCO detector (BSD-3-Clause, dog-qiuqiu/FastestDet).

The network, written here from its published design so that the authors' checkpoint
loads into it unchanged (same parameter names and shapes, ``strict=True``):

* backbone: ShuffleNetV2 with stage repeats 4/8/4 and channels 24 (stem) / 48 / 96 / 192,
  giving features at strides 8, 16 and 32;
* neck: the stride-8 map average-pooled to stride 16 and the stride-32 map upsampled
  (nearest) to stride 16, concatenated with the stride-16 map (336 channels); an SPP-like
  block of three depthwise 5x5 branches (receptive fields 5, 9, 13) with a residual;
* head: one stride-16 map with ``5 + num_classes`` channels per cell.

Input: ``(N, 3, H, W)`` **BGR** float in [0, 1] (no mean/std), H and W multiples of 32.
``forward(x)`` returns ``(N, 5 + C, H/16, W/16)`` in the authors' output convention:

* channel 0: objectness, sigmoid applied;
* channels 1-2: centre offsets, raw (the decoder applies ``tanh``: centre = (cell + tanh) / map size);
* channels 3-4: box width and height, raw (the decoder applies ``sigmoid``: fraction of the image);
* channels 5..: class probabilities, softmax over classes applied.

For training, ``forward_logits(x)`` returns the same map before the objectness sigmoid
and the class softmax (numerically safer losses: BCE-with-logits, cross-entropy);
``FastestDet(cfg, raw=True)`` makes ``forward`` itself return those logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: ShuffleNetV2 0.5x layout used by FastestDet.
STAGE_REPEATS = (4, 8, 4)
STEM_CHANNELS = 24
STAGE_CHANNELS = (48, 96, 192)
#: Neck/head width (the stride-16 stage's channels).
NECK_CHANNELS = 96
#: Output stride of the single head.
STRIDE = 16
#: Input sides must be multiples of this (the stride-32 map is upsampled back to stride 16).
SIZE_MULTIPLE = 32


def conv_bn(
    cin: int, cout: int, kernel: int = 1, stride: int = 1, *, depthwise: bool = False, relu: bool = True
) -> list[nn.Module]:
    """Conv (no bias) + BatchNorm (+ ReLU) as a flat list, so ``nn.Sequential`` indices follow the checkpoint."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=cin if depthwise else 1, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit.

    Stride 1: the input's channels are split by parity (the channel shuffle of the previous
    unit folded into the split); the even half passes through, the odd half goes through
    1x1 -> depthwise 3x3 -> 1x1, and both are concatenated.
    Stride 2: the whole input feeds both the main branch and a depthwise-3x3 + 1x1 shortcut.
    """

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        mid = cout // 2
        branch_in = cin if stride == 2 else cin // 2
        self.branch_main = nn.Sequential(
            *conv_bn(branch_in, mid, 1),
            *conv_bn(mid, mid, 3, stride, depthwise=True, relu=False),
            *conv_bn(mid, cout - branch_in, 1),
        )
        self.branch_proj = (
            nn.Sequential(*conv_bn(cin, cin, 3, stride, depthwise=True, relu=False), *conv_bn(cin, cin, 1))
            if stride == 2
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch_proj is not None:
            return torch.cat((self.branch_proj(x), self.branch_main(x)), 1)
        return torch.cat((x[:, 0::2], self.branch_main(x[:, 1::2])), 1)


class ShuffleNetV2Backbone(nn.Module):
    """Stem (3x3 stride 2 + max-pool) and three stages; returns the stride-8, -16 and -32 maps."""

    def __init__(self):
        super().__init__()
        self.first_conv = nn.Sequential(*conv_bn(3, STEM_CHANNELS, 3, 2))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = STEM_CHANNELS
        for name, repeats, cout in zip(("stage2", "stage3", "stage4"), STAGE_REPEATS, STAGE_CHANNELS):
            units = [ShuffleUnit(cin if i == 0 else cout, cout, 2 if i == 0 else 1) for i in range(repeats)]
            setattr(self, name, nn.Sequential(*units))
            cin = cout

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c3 = self.stage2(self.maxpool(self.first_conv(x)))
        c4 = self.stage3(c3)
        return c3, c4, self.stage4(c4)


class SpatialPyramid(nn.Module):
    """1x1 reduction, then 1, 2 and 3 stacked depthwise 5x5 convs in parallel, merged by 1x1 + residual."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.Conv1x1 = nn.Module()
        self.Conv1x1.conv1x1 = nn.Sequential(*conv_bn(cin, cout, 1))
        for depth in (1, 2, 3):
            layers = [m for _ in range(depth) for m in conv_bn(cout, cout, 5, depthwise=True)]
            setattr(self, f"S{depth}", nn.Sequential(*layers))
        self.output = nn.Sequential(*conv_bn(3 * cout, cout, 1, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv1x1.conv1x1(x)
        branches = torch.cat((self.S1(x), self.S2(x), self.S3(x)), 1)
        return F.relu(x + self.output(branches))


class HeadBranch(nn.Module):
    """Depthwise 5x5 + ReLU, then a 1x1 projection to ``cout`` channels with BatchNorm (no activation)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv5x5 = nn.Sequential(*conv_bn(cin, cin, 5, depthwise=True), *conv_bn(cin, cout, 1, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5x5(x)


class DetectHead(nn.Module):
    """Shared 1x1 conv, then objectness (1), box (4) and class (C) branches, concatenated as logits."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.conv1x1 = nn.Module()
        self.conv1x1.conv1x1 = nn.Sequential(*conv_bn(channels, channels, 1))
        self.obj_layers = HeadBranch(channels, 1)
        self.reg_layers = HeadBranch(channels, 4)
        self.cls_layers = HeadBranch(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1x1.conv1x1(x)
        return torch.cat((self.obj_layers(x), self.reg_layers(x), self.cls_layers(x)), 1)


@dataclass
class FastestDetConfig:
    num_classes: int = 80


class FastestDet(nn.Module):
    """See the module docstring for the input and output conventions."""

    input_names = ("image",)
    input_channels = (3,)
    output_names = ("pred",)

    def __init__(self, cfg: FastestDetConfig | None = None, *, raw: bool = False):
        super().__init__()
        self.cfg = cfg or FastestDetConfig()
        self.raw = raw
        self.backbone = ShuffleNetV2Backbone()
        self.SPP = SpatialPyramid(sum(STAGE_CHANNELS), NECK_CHANNELS)
        self.detect_head = DetectHead(NECK_CHANNELS, self.cfg.num_classes)

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 5 + C, H/16, W/16)``: objectness logit, 4 raw box values, class logits."""
        c3, c4, c5 = self.backbone(x)
        merged = torch.cat((F.avg_pool2d(c3, 3, 2, 1), c4, F.interpolate(c5, scale_factor=2.0, mode="nearest")), 1)
        return self.detect_head(self.SPP(merged))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.forward_logits(x)
        if self.raw:
            return logits
        return activate(logits)


def activate(logits: torch.Tensor) -> torch.Tensor:
    """Logits -> the authors' output: sigmoid on channel 0, softmax over channels 5.."""
    return torch.cat((logits[:, :1].sigmoid(), logits[:, 1:5], logits[:, 5:].softmax(1)), 1)


def build_fastestdet(
    cfg: dict | FastestDetConfig | int | None = None, *, num_classes: int | None = None, raw: bool = False
) -> FastestDet:
    """Build FastestDet: ``build_fastestdet(num_classes=80)``, or from a sidecar config dict."""
    if isinstance(cfg, int):
        cfg = FastestDetConfig(num_classes=cfg)
    elif not isinstance(cfg, FastestDetConfig):
        from ivif_ros.models.student import _make_config

        cfg = _make_config(FastestDetConfig, dict(cfg or {}))
    if num_classes is not None:
        cfg = FastestDetConfig(num_classes=num_classes)
    if cfg.num_classes < 1:
        from ivif_ros.errors import ConfigError

        raise ConfigError(f"fastestdet: num_classes must be >= 1, got {cfg.num_classes}")
    return FastestDet(cfg, raw=raw)
