"""Warm start: begin a training from a trained model's weights (``init_from`` in the config).

Not a resume: the optimizer, schedule and step start fresh; only the network's weights are
copied. The use it exists for is a two-stage student: first train it on one camera, then
train the fused student from there, so the fused one starts with the single-camera one's
features instead of having to rediscover them beside the fusion losses.

A single-camera student saw one image on both inputs, (ir, ir) or (vis, vis). Its first
convolution is therefore folded before a fused training: the two input-channel slices are
summed onto that camera's channel and the other camera's slice is zeroed. On (ir, vis) the
warm-started trunk, and so its semantic output, then computes exactly what the
source computed on its camera, and the other camera enters the trunk through weights that start
at zero and are learned. The fusion path (prior and detail head) reads both raw images as it
always does: a single-camera student never learned to fuse, so there is nothing to keep there.

A source without the fusion-context encoder (``fusion_context: 0``) may warm-start a student
with one: the encoder starts fresh and the fusion maps' weights over its channels start at zero,
so the warm-started student again computes exactly what the source computed.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from ivif_ros.errors import ConfigError
from ivif_ros.training.data import trained_input_mode

FIRST_CONV = "stem.0.0.weight"  # the student's first conv, over the stacked (ir, vis) pair
FUSION_MAPS = "fusion_maps.weight"
GROWABLE = ("fusion_context",)  # model keys a warm start may add to the source's
CAMERA_CHANNEL = {"ir": 0, "vis": 1}


def fold_single_camera(state: dict[str, torch.Tensor], camera: str) -> dict[str, torch.Tensor]:
    """``state`` with its first conv's two input channels moved onto ``camera``'s channel."""
    w = state[FIRST_CONV]
    keep = CAMERA_CHANNEL[camera]
    folded = torch.zeros_like(w)
    folded[:, keep] = w.sum(dim=1)
    return {**state, FIRST_CONV: folded}


def warm_start(
    net: nn.Module, kind: str, source: str, input_mode: str, detection_classes: list, semantic_classes: list
) -> dict:
    """Copy ``source``'s weights into ``net``; return what was done, for the sidecar."""
    from ivif_ros.weights import load_model

    model, meta = load_model(source)
    where = f"init_from {source}"
    arch = meta.get("architecture")
    if arch != kind:
        raise ConfigError(f"{where} is a {arch} but this trains a {kind}; give a {kind}'s .safetensors")
    checks = {"semantic_classes": semantic_classes}
    if kind == "teacher":  # the student has no detection output
        checks["detection_classes"] = detection_classes
    for key, ours in checks.items():
        if meta.get(key) != ours:
            raise ConfigError(
                f"{where} has {key} {meta.get(key)} but the config trains {ours}; "
                f"give a model trained on the same {key}"
            )
    # Compared as built, defaults filled: sidecars written before a config key existed omit it.
    theirs, ours = asdict(model.cfg), asdict(net.cfg)
    grown = [k for k in GROWABLE if k in ours and theirs.get(k) == 0 and ours[k] > 0]
    if {k: v for k, v in theirs.items() if k not in grown} != {k: v for k, v in ours.items() if k not in grown}:
        differ = sorted(k for k in ours if theirs.get(k) != ours[k] and k not in grown)
        raise ConfigError(
            f"{where} has model config {theirs} but the config builds {ours} (they differ "
            f"in {differ}); set the config's model: keys to the source's"
        )
    src_mode = trained_input_mode(meta, where)
    state = model.state_dict()
    folded = src_mode in CAMERA_CHANNEL and input_mode == "fused"
    if folded and FIRST_CONV not in state:  # the teacher has one encoder per camera: nothing to fold
        raise ConfigError(
            f"{where} was trained on {src_mode} alone; folding a single-camera model into "
            f"a fused training is supported for the student only; start from a fused {kind}"
        )
    if folded:
        state = fold_single_camera(state, src_mode)
    if grown:
        state = grow_fusion_context(state, net.state_dict())
    net.load_state_dict(state)
    return {
        "from": source,
        "sha256": meta.get("sha256"),
        "source_input_mode": src_mode,
        "first_conv_folded_onto": src_mode if folded else None,
        "grown": grown,
    }


def grow_fusion_context(state: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (no fusion-context encoder) completed from ``fresh`` (a student with one): the
    encoder keeps its fresh weights and the fusion maps get zero weights over its channels."""
    old = state[FUSION_MAPS]
    grown = torch.zeros_like(fresh[FUSION_MAPS])
    grown[:, : old.shape[1]] = old
    extra = {k: v for k, v in fresh.items() if k.startswith("fusion_encoder.")}
    return {**state, **extra, FUSION_MAPS: grown}
