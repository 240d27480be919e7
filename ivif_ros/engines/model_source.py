"""Turn ``model_or_path`` (an ``nn.Module``, a shipped name like ``student``, or a path) into a module."""

from __future__ import annotations

import torch

from ivif_ros.errors import ConfigError


def resolve_model(model_or_path) -> tuple[torch.nn.Module, dict]:
    """``(module in eval mode, metadata)``; names and paths go through ``ivif_ros.weights.load_model``."""
    if isinstance(model_or_path, torch.nn.Module):
        return model_or_path.eval(), {}
    try:
        from ivif_ros.weights import load_model
    except ImportError as exc:
        raise ConfigError(
            f"model '{model_or_path}': ivif_ros.weights.load_model is not available in this checkout ({exc}); "
            "pass an nn.Module or install the trained weights"
        ) from exc
    model, meta = load_model(str(model_or_path))
    return model.eval(), dict(meta or {})
