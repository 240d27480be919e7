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
            raise InputError(
                f"model file {f} not found; give a path to <name>.safetensors with its .json "
                f"sidecar, or a shipped name: {', '.join(shipped) or '(none shipped)'}"
            )
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
        raise InputError(
            f"{weights}: sha256 {digest} does not match {meta.get('sha256')} in {sidecar}; "
            "the weights file is corrupt or belongs to another sidecar, re-download or re-export it"
        )
    if not isinstance(meta, dict):
        raise InputError(f"{sidecar}: expected a JSON object; restore the sidecar shipped with the weights")
    arch = meta.get("architecture")
    if not isinstance(arch, str) or arch not in BUILDERS:
        raise ConfigError(f"{sidecar}: unknown architecture {str(arch)[:40]!r}; expected one of {sorted(BUILDERS)}")
    try:
        shapes = _file_shapes(weights)
    except SafetensorError as exc:  # e.g. a pickle (torch.save) renamed to .safetensors: never unpickled
        raise InputError(
            f"{weights}: not a safetensors file ({exc}); ivif_ros loads weights only from "
            "safetensors, never from pickles. Convert a PyTorch checkpoint you trust with "
            "ivif_ros.weights.save_model"
        ) from exc
    config = meta.get("config", {})
    check_sidecar_config(arch, config, shapes, sidecar, weights)  # before anything is allocated
    model = BUILDERS[arch](config)
    state = load_file(str(weights), device=device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing/unexpected keys or shape mismatches
        raise InputError(
            f"{weights}: does not fit the {arch} described by {sidecar}; the sidecar belongs to "
            f"other weights. {str(exc).splitlines()[0]}"
        ) from exc
    return model.to(device).eval(), meta


def _file_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from the safetensors header, without reading any tensor."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def check_sidecar_config(arch: str, config, shapes: dict[str, tuple[int, ...]], sidecar: Path, weights: Path) -> None:
    """Refuse a sidecar ``config`` that does not describe ``weights``, before a model is built.

    Each value must have the type of its ``StudentConfig``/``TeacherConfig`` field, and the
    model it describes, built on PyTorch's ``meta`` device (shapes only, no memory), must have
    exactly the tensors of the file. A ``width: 8000`` therefore fails in milliseconds instead
    of allocating gigabytes first.
    """
    import dataclasses

    import torch

    from ivif_ros.models import BUILDERS, CONFIGS

    fix = f"restore the sidecar shipped with {weights.name}, or re-export the weights with ivif_ros.weights.save_model"
    if not isinstance(config, dict):
        raise InputError(f"{sidecar}: field 'config' must be an object, got {type(config).__name__}; {fix}")
    fields = {f.name: f for f in dataclasses.fields(CONFIGS[arch])}
    for name, value in config.items():
        if name not in fields:
            raise InputError(
                f"{sidecar}: config.{str(name)[:40]} is not a {arch} setting "
                f"(known: {', '.join(sorted(fields))}); {fix}"
            )
        default = fields[name].default
        if not _same_kind(default, value):
            raise InputError(
                f"{sidecar}: config.{name} = {str(value)[:40]!r} is not valid: expected "
                f"{_kind_text(default)} (the default is {default!r}); {fix}"
            )
    try:
        with torch.device("meta"):
            probe = BUILDERS[arch](dict(config))
    except Exception as exc:  # noqa: BLE001  any failure to describe the model is the sidecar's fault
        raise InputError(
            f"{sidecar}: its config does not describe a {arch} ({type(exc).__name__}: {str(exc)[:200]}); {fix}"
        ) from None
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    for name in sorted(set(expected) | set(shapes)):
        if expected.get(name) != shapes.get(name):
            raise InputError(
                f"{weights}: does not fit the {arch} described by {sidecar}: tensor {name} is "
                f"{shapes.get(name, 'absent')} in the file, {expected.get(name, 'absent')} by the "
                f"sidecar's config; {fix}"
            )


def _kind_text(default) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer in [0, 1000000]"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, (tuple, list)):
        return f"a list of {len(default)} values"
    return f"a {type(default).__name__}"


def _same_kind(default, value) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1_000_000
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (tuple, list)):
        return (
            isinstance(value, (tuple, list))
            and all(_same_kind(d, v) for d, v in zip(default, value))
            and len(value) == len(default)
        )
    return isinstance(value, type(default))
