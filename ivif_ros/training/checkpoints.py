"""Resumable training checkpoints (model, optimizer, scheduler, step, RNG).

Written with ``torch.save`` and read back with ``torch.load(weights_only=True)``: only
tensors and plain containers, never arbitrary pickled objects. Shipping uses safetensors
(``ivif_ros.weights.save_model``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ivif_ros.errors import InputError

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(out_dir: Path, trainable, optimizer, scheduler, step: int) -> Path:
    path = Path(out_dir) / CHECKPOINT_NAME
    tmp = path.with_suffix(".tmp")
    torch.save({
        "model": trainable.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
    }, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a half-written checkpoint
    return path


def load_checkpoint(out_dir: Path, trainable, optimizer, scheduler) -> int:
    """Restore state in place; return the step to continue from."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise InputError(f"--resume: no {CHECKPOINT_NAME} in {out_dir}; start without --resume or pass the run's --out")
    state = torch.load(path, map_location="cpu", weights_only=True)
    trainable.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])
