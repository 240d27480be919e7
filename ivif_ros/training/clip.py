"""Language-driven fusion loss (LD-KD) with a CLIP-shaped model.

No CLIP weights can be downloaded on the build machines, so the shipped weights were trained
**without** this loss. It switches on when a config sets ``clip_checkpoint:`` to a
safetensors file holding a ``CLIPModel`` state dict, with the ``CLIPConfig`` as JSON in the
file's metadata under ``"clip_config"`` (``save_clip`` writes that format). Converting
OpenAI/open_clip weights needs a key-renaming script and their BPE tokenizer; this module
uses a byte-level tokenizer, which is exact for checkpoints trained with it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ivif_ros.errors import ConfigError, InputError

# Byte tokens 0..255, then start/end-of-text (CLIP pools the text at the end token).
SOT, EOT = 256, 257
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class CLIPConfig:
    image_size: int = 224
    patch: int = 32
    vision_width: int = 64
    vision_layers: int = 2
    text_width: int = 64
    text_layers: int = 2
    heads: int = 4
    context: int = 64
    embed_dim: int = 64
    vocab: int = 258


def tokenize(texts: list[str], context: int) -> torch.Tensor:
    """Byte-level tokens ``[SOT, bytes..., EOT, 0...]`` of length ``context`` (truncated)."""
    out = torch.zeros(len(texts), context, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = [SOT, *list(t.encode("utf-8"))[: context - 2], EOT]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def _encoder(width: int, layers: int, heads: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class CLIPModel(nn.Module):
    """ViT image encoder + transformer text encoder + projections into a shared space."""

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg
        vw, tw = cfg.vision_width, cfg.text_width
        grid = cfg.image_size // cfg.patch
        self.patch_embed = nn.Conv2d(3, vw, cfg.patch, cfg.patch, bias=False)
        self.class_token = nn.Parameter(torch.zeros(vw))
        self.vision_pos = nn.Parameter(torch.randn(grid * grid + 1, vw) * 0.02)
        self.visual = _encoder(vw, cfg.vision_layers, cfg.heads)
        self.vision_norm = nn.LayerNorm(vw)
        self.vision_proj = nn.Linear(vw, cfg.embed_dim, bias=False)
        self.token_embed = nn.Embedding(cfg.vocab, tw)
        self.text_pos = nn.Parameter(torch.randn(cfg.context, tw) * 0.01)
        self.text = _encoder(tw, cfg.text_layers, cfg.heads)
        self.text_norm = nn.LayerNorm(tw)
        self.text_proj = nn.Linear(tw, cfg.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))  # log(100), CLIP's final value

    def encode_image(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N,3,S,S) CLIP-normalised -> unit-norm embeddings (N, embed_dim)."""
        x = self.patch_embed(rgb).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], 1, -1), x], 1) + self.vision_pos
        x = self.vision_norm(self.visual(x)[:, 0])
        return F.normalize(self.vision_proj(x), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, context) tokens -> unit-norm embeddings, pooled at the end-of-text token (causal)."""
        n = tokens.shape[1]
        causal = torch.triu(torch.full((n, n), float("-inf"), device=tokens.device), 1)
        x = self.text(self.token_embed(tokens) + self.text_pos[:n], mask=causal)
        x = self.text_norm(x[torch.arange(len(tokens)), (tokens == EOT).int().argmax(1)])
        return F.normalize(self.text_proj(x), dim=-1)


def save_clip(model: CLIPModel, path: str | Path) -> None:
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(path),
        metadata={"clip_config": json.dumps(asdict(model.cfg))},
    )


def load_clip(path: str | Path) -> CLIPModel:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"clip_checkpoint {path} not found; set clip_checkpoint: null to train without the CLIP loss")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "clip_config" not in meta:
        raise InputError(
            f"{path}: no 'clip_config' JSON in the safetensors metadata; write it with "
            "ivif_ros.training.clip.save_clip (or add the metadata when converting)"
        )
    model = CLIPModel(CLIPConfig(**json.loads(meta["clip_config"])))
    model.load_state_dict(load_file(str(path)))
    return model.eval().requires_grad_(False)


class LanguageDrivenLoss(nn.Module):
    """Pull the fused image's CLIP embedding towards positive prompts and away from negatives.

    loss = -log( sum_pos exp(s * <f, t>) / sum_all exp(s * <f, t>) ), averaged over the batch.
    The CLIP model is frozen; gradients reach only the fused image.
    """

    def __init__(self, clip: CLIPModel, positive: list[str], negative: list[str]):
        super().__init__()
        if not positive or not negative:
            raise ConfigError("clip_prompts needs at least one positive and one negative prompt")
        self.clip = clip.eval().requires_grad_(False)
        with torch.no_grad():
            text = clip.encode_text(tokenize(positive + negative, clip.cfg.context))
        self.register_buffer("text", text)
        self.num_pos = len(positive)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1))

    @classmethod
    def from_checkpoint(cls, path, positive: list[str], negative: list[str]) -> "LanguageDrivenLoss":
        return cls(load_clip(path), positive, negative)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        size = self.clip.cfg.image_size
        rgb = F.interpolate(fused, size=(size, size), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
        img = self.clip.encode_image((rgb - self.mean) / self.std)
        logits = self.clip.logit_scale.exp() * img @ self.text.t()
        return (torch.logsumexp(logits, 1) - torch.logsumexp(logits[:, : self.num_pos], 1)).mean()
