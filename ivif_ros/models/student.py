"""The real-time student: one shared encoder over the stacked (ir, vis) pair, compute at
1/4 and 1/8 resolution (optionally 1/16), a very light full-resolution fusion path, and a
semantic segmentation head. Detections come from a separate detector run on the fused image
(``models/fastestdet.py``).

Only export-friendly operations (conv, BN, ReLU, sigmoid, add/mul, concat, bilinear
resize, global average pooling, clamp) so ONNX Runtime, OpenVINO and TensorRT run it.
I/O follows docs/contracts.md: ``forward(ir, vis) -> (fused, seg_logits)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ivif_ros.models.blocks import (
    ChannelGate,
    ConvBNAct,
    DepthwiseSeparable,
    DetailHead,
    FusionPrior,
    SeparableConv,
    scale_gradient,
    upsample,
)


@dataclass
class StudentConfig:
    num_seg: int = 4  # semantic classes incl. background
    width: int = 32  # channels at 1/4
    deep_width: int = 64  # channels at 1/8
    blocks4: int = 1  # residual blocks at 1/4
    blocks8: int = 3  # residual blocks at 1/8
    prior_sharpness: float = 20.0  # initial s of the soft pixel-max gate sigmoid(s * (ir - vis))
    # Share of the fusion losses' gradient that reaches the shared trunk through the 1/4
    # fusion maps. Below 1 the trunk is shaped mostly by the semantic and distillation losses
    # and the fusion path reads it as semantic context (PSFusion's injection). 1 (the shipped
    # value) lets the fusion losses shape the trunk too.
    fusion_grad_scale: float = 1.0
    # Channels of a small fusion-only encoder over (ir, vis) at 1/4, read by the fusion maps
    # beside the trunk feature; 0 (the shipped student) leaves it out. The fusion maps need
    # features that see the visible camera, and a trunk warm-started from an IR-only student
    # (``init_from``) has none; this encoder gives the fusion path visible-aware context of its
    # own, whatever shaped the trunk.
    fusion_context: int = 0
    # Residual blocks of an optional 1/16 stage (0: none, the shipped student) and its channels.
    # The 1/8 trunk sees about 87 px, while half of the MSRS cars are wider than 88 px; two
    # blocks at 1/16 reach about 170 px of context.
    blocks16: int = 0
    wide_width: int = 96


class Student(nn.Module):
    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        w, d = cfg.width, cfg.deep_width
        self.stem = nn.Sequential(ConvBNAct(2, 16, stride=2), ConvBNAct(16, w, stride=2))
        self.stage4 = nn.Sequential(*[DepthwiseSeparable(w) for _ in range(cfg.blocks4)])
        self.stage8 = nn.Sequential(
            ConvBNAct(w, d, stride=2), *[DepthwiseSeparable(d) for _ in range(cfg.blocks8)], ChannelGate(d)
        )
        if cfg.blocks16:
            e = cfg.wide_width
            self.stage16 = nn.Sequential(
                ConvBNAct(d, e, stride=2), *[DepthwiseSeparable(e) for _ in range(cfg.blocks16)], ChannelGate(e)
            )
            self.lateral16 = nn.Conv2d(e, d, 1)
        self.lateral8 = nn.Conv2d(d, w, 1)
        self.merge = SeparableConv(w, w)
        self.seg_head = nn.Sequential(SeparableConv(w, w), nn.Conv2d(w, cfg.num_seg, 1))
        # 1/4-resolution fusion maps: gate-logit correction, low-frequency residual, 2 context maps.
        c = cfg.fusion_context
        if c:
            self.fusion_encoder = nn.Sequential(
                ConvBNAct(2, 8, stride=2), ConvBNAct(8, c, stride=2), DepthwiseSeparable(c)
            )
        self.fusion_maps = nn.Conv2d(w + c, 4, 3, padding=1)
        nn.init.zeros_(self.fusion_maps.weight)
        nn.init.zeros_(self.fusion_maps.bias)
        self.detail = DetailHead(ctx_ch=2)
        self.prior = FusionPrior(cfg.prior_sharpness)

    def forward_features(self, ir: torch.Tensor, vis: torch.Tensor) -> dict[str, torch.Tensor]:
        """All outputs plus the 1/4-resolution feature map used for feature distillation."""
        f4 = self.stage4(self.stem(torch.cat([ir, vis], 1)))
        f8 = self.stage8(f4)
        if self.cfg.blocks16:
            f8 = f8 + upsample(self.lateral16(self.stage16(f8)), f8.shape[-2:])
        feat = self.merge(f4 + upsample(self.lateral8(f8), f4.shape[-2:]))
        seg = self.seg_head(feat)
        fusion_in = scale_gradient(feat, self.cfg.fusion_grad_scale) if self.training else feat
        if self.cfg.fusion_context:
            fusion_in = torch.cat([fusion_in, self.fusion_encoder(torch.cat([ir, vis], 1))], 1)
        maps = upsample(self.fusion_maps(fusion_in), ir.shape[-2:])
        residual = maps[:, 1:2] + self.detail(ir, vis, maps[:, 2:4])
        fused = self.prior(ir, vis, maps[:, 0:1], residual)
        return {"fused": fused, "seg_logits": seg, "feat": feat}

    def forward(self, ir: torch.Tensor, vis: torch.Tensor):
        out = self.forward_features(ir, vis)
        return out["fused"], out["seg_logits"]


def build_student(cfg: dict | StudentConfig | None = None) -> Student:
    """Build the student from a config dict (keys of ``StudentConfig``; unknown keys are an error)."""
    if isinstance(cfg, StudentConfig):
        return Student(cfg)
    return Student(_make_config(StudentConfig, cfg or {}))


def _make_config(cls, cfg: dict):
    from ivif_ros.errors import ConfigError

    known = set(asdict(cls()))
    unknown = set(cfg) - known
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {sorted(unknown)}; valid keys: {sorted(known)}")
    return cls(**cfg)
