"""The teacher: two modality encoders with frequency-component blocks, global cross-feature
enhancement (self- and mutual attention between IR and visible at 1/16), a semantic branch
injected progressively into the fusion decoder, a scene-fidelity path that reconstructs both
sources from the fused features, and fused / semantic / boundary / binary / detection heads.

The teacher is for training and distillation only (it uses FFT and attention); the student
is what ships to the robot. ``forward(ir, vis)`` follows the same 4-tuple contract.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ivif_ros.models.blocks import ConvBNAct, DetailHead, FusionPrior, SeparableConv, TaskHeads, upsample
from ivif_ros.models.student import _make_config


@dataclass
class TeacherConfig:
    num_seg: int = 4
    num_det: int = 3
    widths: tuple = (16, 32, 64, 96)  # channels at 1, 1/2, 1/4, 1/8
    attn_dim: int = 64
    attn_heads: int = 4
    prior_sharpness: float = 20.0  # initial s of the soft pixel-max gate sigmoid(s * (ir - vis))


class FrequencyBlock(nn.Module):
    """Amplitude/phase processing in the 2-D Fourier domain (size-agnostic 1x1 convs).

    Amplitude carries global contrast/style, phase carries structure; editing them
    separately gives every output pixel an image-wide receptive field.
    """

    def __init__(self, ch: int):
        super().__init__()
        self.amp = nn.Sequential(nn.Conv2d(ch, ch, 1), nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 1))
        self.pha = nn.Sequential(nn.Conv2d(ch, ch, 1), nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 1))
        self.out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft2(x.float(), norm="ortho")
        amp = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-8)
        pha = torch.atan2(spec.imag, spec.real + 1e-6)  # eps keeps atan2's gradient finite at 0
        amp = amp + self.amp(amp)
        pha = pha + self.pha(pha)
        y = torch.fft.irfft2(torch.polar(F.relu(amp), pha), s=x.shape[-2:], norm="ortho")
        return x + self.out(y)


class Attention(nn.Module):
    """Multi-head attention of query tokens ``x`` over key/value tokens ``y`` (self if y is x)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, lq, c = x.shape
        q = self.q(self.norm_q(x)).view(n, lq, self.heads, -1).transpose(1, 2)
        k, v = self.kv(self.norm_kv(y)).view(n, y.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, lq, c)
        return x + self.proj(out)


class CrossFeatureEnhancement(nn.Module):
    """STFuse-style enhancement: self-attention within each modality, then mutual
    (cross) attention where IR queries visible and visible queries IR. Runs at 1/16."""

    def __init__(self, ch: int, dim: int, heads: int):
        super().__init__()
        self.inp = nn.ModuleList([nn.Conv2d(ch, dim, 1), nn.Conv2d(ch, dim, 1)])
        self.self_attn = nn.ModuleList([Attention(dim, heads), Attention(dim, heads)])
        self.cross_attn = nn.ModuleList([Attention(dim, heads), Attention(dim, heads)])
        self.out = nn.ModuleList([nn.Conv2d(dim, ch, 1), nn.Conv2d(dim, ch, 1)])

    def forward(self, ir8: torch.Tensor, vis8: torch.Tensor):
        n, _, h, w = ir8.shape
        grid = (h // 2, w // 2)  # tokens at 1/16 of the input
        ir_t, vis_t = (
            attn(*2 * [proj(F.avg_pool2d(x, 2)).flatten(2).transpose(1, 2)])
            for x, proj, attn in zip((ir8, vis8), self.inp, self.self_attn)
        )
        ir_t, vis_t = self.cross_attn[0](ir_t, vis_t), self.cross_attn[1](vis_t, ir_t)
        return [
            x + upsample(out(t.transpose(1, 2).reshape(n, -1, *grid)), (h, w))
            for x, t, out in zip((ir8, vis8), (ir_t, vis_t), self.out)
        ]


class ModalityEncoder(nn.Module):
    """Features at 1, 1/2, 1/4 (+ frequency block) and 1/8 of one source image."""

    def __init__(self, widths):
        super().__init__()
        c1, c2, c4, c8 = widths
        self.s1 = ConvBNAct(1, c1)
        self.s2 = ConvBNAct(c1, c2, stride=2)
        self.s4 = nn.Sequential(ConvBNAct(c2, c4, stride=2), ConvBNAct(c4, c4))
        self.freq = FrequencyBlock(c4)
        self.s8 = ConvBNAct(c4, c8, stride=2)

    def forward(self, x):
        f1 = self.s1(x)
        f2 = self.s2(f1)
        f4 = self.freq(self.s4(f2))
        return f1, f2, f4, self.s8(f4)


class SemanticInjection(nn.Module):
    """PSFusion-style injection: semantic features modulate fusion features (scale + shift)."""

    def __init__(self, sem_ch: int, ch: int):
        super().__init__()
        self.scale, self.shift = nn.Conv2d(sem_ch, ch, 1), nn.Conv2d(sem_ch, ch, 1)

    def forward(self, x, sem):
        sem = upsample(sem, x.shape[-2:]) if sem.shape[-2:] != x.shape[-2:] else sem
        return x * (1 + torch.tanh(self.scale(sem))) + self.shift(sem)


class Teacher(nn.Module):
    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, c4, c8 = cfg.widths
        self.enc_ir, self.enc_vis = ModalityEncoder(cfg.widths), ModalityEncoder(cfg.widths)
        self.cfe = CrossFeatureEnhancement(c8, cfg.attn_dim, cfg.attn_heads)
        # Semantic branch (1/8 -> 1/4).
        self.sem8 = nn.Sequential(ConvBNAct(2 * c8, c8), ConvBNAct(c8, c8))
        self.sem4_lat = ConvBNAct(2 * c4, c4, k=1)
        self.sem4 = nn.Sequential(ConvBNAct(c4 + c8, c4, k=1), ConvBNAct(c4, c4))
        self.heads = TaskHeads(c4, cfg.num_seg, cfg.num_det)
        self.boundary = nn.Conv2d(c4, 1, 1)
        self.binary = nn.Conv2d(c4, 1, 1)
        # Fusion decoder with progressive semantic injection at 1/8, 1/4, 1/2.
        self.dec8 = ConvBNAct(2 * c8, c8, k=1)
        self.inj8 = SemanticInjection(c8, c8)
        self.dec4 = nn.Sequential(ConvBNAct(2 * c4 + c8, c4, k=1), ConvBNAct(c4, c4))
        self.inj4 = SemanticInjection(c4, c4)
        self.dec2 = SeparableConv(2 * c2 + c4, c2)
        self.inj2 = SemanticInjection(c4, c2)
        self.dec1 = ConvBNAct(2 * c1 + c2, c1, k=1)
        self.fusion_maps = nn.Conv2d(c1, 2, 3, padding=1)  # gate-logit correction, residual
        nn.init.zeros_(self.fusion_maps.weight)
        nn.init.zeros_(self.fusion_maps.bias)
        self.detail = DetailHead(ctx_ch=c1)
        self.prior = FusionPrior(cfg.prior_sharpness)
        # Scene-fidelity path: reconstruct both sources from the fused features.
        self.fidelity = nn.Sequential(ConvBNAct(c1 + 1, c1), nn.Conv2d(c1, 2, 3, padding=1), nn.Sigmoid())

    def forward_features(self, ir: torch.Tensor, vis: torch.Tensor) -> dict[str, torch.Tensor]:
        i1, i2, i4, i8 = self.enc_ir(ir)
        v1, v2, v4, v8 = self.enc_vis(vis)
        i8, v8 = self.cfe(i8, v8)
        s8 = self.sem8(torch.cat([i8, v8], 1))
        s4 = self.sem4(torch.cat([self.sem4_lat(torch.cat([i4, v4], 1)), upsample(s8, i4.shape[-2:])], 1))
        seg, heat, box = self.heads(s4)

        d8 = self.inj8(self.dec8(torch.cat([i8, v8], 1)), s8)
        d4 = self.inj4(self.dec4(torch.cat([i4, v4, upsample(d8, i4.shape[-2:])], 1)), s4)
        d2 = self.inj2(self.dec2(torch.cat([i2, v2, upsample(d4, i2.shape[-2:])], 1)), s4)
        d1 = self.dec1(torch.cat([i1, v1, upsample(d2, i1.shape[-2:])], 1))
        maps = self.fusion_maps(d1)
        fused = self.prior(ir, vis, maps[:, 0:1], maps[:, 1:2] + self.detail(ir, vis, d1))
        recon = self.fidelity(torch.cat([d1, fused], 1))
        return {
            "fused": fused,
            "seg_logits": seg,
            "det_heatmap": heat,
            "det_box": box,
            "boundary_logits": self.boundary(s4),
            "binary_logits": self.binary(s4),
            # "feat" is what the student's shared features are distilled towards: the
            # semantic features that feed the heads and the injections, the counterpart of the
            # student's trunk (which also feeds heads and fusion maps), rather than d4, a
            # fusion-decoder feature that pulls the student's fused image towards the teacher's.
            "recon_ir": recon[:, 0:1],
            "recon_vis": recon[:, 1:2],
            "feat": s4,
        }

    def forward(self, ir: torch.Tensor, vis: torch.Tensor):
        """The fusion models' contract, as the student's. The detection heads shape the semantic
        features during training only; their outputs are in ``forward_features``."""
        out = self.forward_features(ir, vis)
        return out["fused"], out["seg_logits"]


def build_teacher(cfg: dict | TeacherConfig | None = None) -> Teacher:
    """Build the teacher from a config dict (keys of ``TeacherConfig``)."""
    if isinstance(cfg, TeacherConfig):
        return Teacher(cfg)
    cfg = dict(cfg or {})
    if "widths" in cfg:
        cfg["widths"] = tuple(cfg["widths"])
    return Teacher(_make_config(TeacherConfig, cfg))
