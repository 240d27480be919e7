"""Resumable training checkpoints (model, optimizer, scheduler, step, RNG).

Written with ``torch.save`` and read back with ``torch.load(weights_only=True)``: only
tensors and plain containers, never arbitrary pickled objects. Shipping uses safetensors
(``ivif_ros.weights.save_model``).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ivif_ros.errors import InputError

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(out_dir: Path, trainable, optimizer, scheduler, step: int) -> Path:
    path = Path(out_dir) / CHECKPOINT_NAME
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": trainable.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a half-written checkpoint
    return path


def load_checkpoint(out_dir: Path, trainable, optimizer, scheduler) -> int:
    """Restore state in place; return the step to continue from."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise InputError(f"--resume: no {CHECKPOINT_NAME} in {out_dir}; start without --resume or pass the run's --out")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused the content: never retry without it
        # torch's message: a preamble, the actual reason, a pointer to the docs; keep the reason
        reason = [line for line in str(exc).splitlines() if line.strip()][-2]
        raise InputError(
            f"--resume: {path} was not loaded: only tensors and plain containers are unpickled "
            f"(torch.load weights_only=True), and this file has something else or is corrupt "
            f"({reason.strip()}); resume from a checkpoint written by ivif train"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:  # empty, truncated or not a torch.save archive
        raise InputError(
            f"--resume: {path} is not a readable checkpoint ({_first_line(exc)}); resume from an "
            "intact checkpoint or start without --resume"
        ) from exc
    try:
        trainable.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        # another model's checkpoint (other shapes), another run's optimizer, or a file with missing keys
        raise InputError(
            f"--resume: {path} does not fit this training run ({type(exc).__name__}: "
            f"{_first_line(exc)}); resume with the same kind and config that wrote it, or start "
            "without --resume in a new --out"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
