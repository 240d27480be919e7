"""Shipped model weights: ``<name>.safetensors`` + ``<name>.json`` sidecar.

The sidecar holds the architecture (``"architecture": "student" | "teacher"`` and its
``"config"``), the class lists, the sha256 of the safetensors file and how it was trained.
Loading uses safetensors only (no pickle) and refuses a file whose hash does not match.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ivif_ros.core.hashing import file_sha256
from ivif_ros.errors import ConfigError, InputError

WEIGHTS_DIR = Path(__file__).resolve().parent


def resolve(name_or_path: str | Path) -> tuple[Path, Path]:
    """``student`` -> the shipped file; a path with or without ``.safetensors``/``.json`` -> itself."""
    p = Path(name_or_path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    elif p.parent == Path(".") and not p.with_suffix(".safetensors").exists():
        p = WEIGHTS_DIR / p.name
    weights, sidecar = p.with_suffix(".safetensors"), p.with_suffix(".json")
    for f in (weights, sidecar):
        if not f.is_file():
            shipped = sorted(q.stem for q in WEIGHTS_DIR.glob("*.safetensors"))
            raise InputError(f"model file {f} not found; give a path to <name>.safetensors with its .json "
                             f"sidecar, or a shipped name: {', '.join(shipped) or '(none shipped)'}")
    return weights, sidecar


def save_model(model, stem: str | Path, meta: dict) -> Path:
    """Write ``stem.safetensors`` and ``stem.json`` (``meta`` + architecture, config, sha256)."""
    from safetensors.torch import save_file

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_suffix(".safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights))
    sidecar = {
        "architecture": type(model).__name__.lower(),
        "config": asdict(model.cfg),
        **meta,
        "weights_file": weights.name,
        "sha256": file_sha256(weights),
    }
    stem.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return weights


def load_model(name_or_path: str | Path, device: str = "cpu"):
    """Return ``(model in eval mode, meta dict)`` after checking the weights' sha256."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ivif_ros.models import BUILDERS

    weights, sidecar = resolve(name_or_path)
    try:
        meta = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{sidecar}: not valid JSON ({exc}); restore the sidecar shipped with the weights") from exc
    digest = file_sha256(weights)
    if meta.get("sha256") != digest:
        raise InputError(f"{weights}: sha256 {digest} does not match {meta.get('sha256')} in {sidecar}; "
                         "the weights file is corrupt or belongs to another sidecar, re-download or re-export it")
    arch = meta.get("architecture")
    if arch not in BUILDERS:
        raise ConfigError(f"{sidecar}: unknown architecture {arch!r}; expected one of {sorted(BUILDERS)}")
    model = BUILDERS[arch](meta.get("config", {}))
    try:
        state = load_file(str(weights), device=device)
    except SafetensorError as exc:  # e.g. a pickle (torch.save) renamed to .safetensors: never unpickled
        raise InputError(f"{weights}: not a safetensors file ({exc}); ivif_ros loads weights only from "
                         "safetensors, never from pickles. Convert a PyTorch checkpoint you trust with "
                         "ivif_ros.weights.save_model") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing/unexpected keys or shape mismatches
        raise InputError(f"{weights}: does not fit the {arch} described by {sidecar}; the sidecar belongs to "
                         f"other weights. {str(exc).splitlines()[0]}") from exc
    return model.to(device).eval(), meta
