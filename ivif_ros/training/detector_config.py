"""Configuration of ``ivif train detector``: a YAML file mapped onto ``DetectorTrainConfig``.

Paths of data sources are relative to the data root, which comes from ``--data`` or the
``IVIF_DATA`` environment variable (never from the committed config). Every error names
the field and the fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ivif_ros.errors import ConfigError
from ivif_ros.training.config import resolve_data_folder
from ivif_ros.training.detector_data import INPUT_MODES, AugmentConfig


@dataclass
class DetectorTrainConfig:
    #: Published classes, each a COCO class name: the head is cut to these rows of COCO's.
    classes: list = field(default_factory=lambda: ["person", "bicycle", "car"])
    #: data sources: [{root: <folder under the data root>, split: <names file under it>?}]
    data: list = field(default_factory=list)
    labels: str = "fusion"  # labels_det/<labels>/ holds the boxes
    input_mode: str = "fused"  # fused | ir | visible
    fusion_model: str = "student"  # the fusion weights whose output is the 'fused' input
    cache_dir: str | None = None  # fused-image cache (default ~/.cache/ivif_ros/fused)
    #: The detector's run-time input, [W, H], and the size of every training image: FastestDet
    #: predicts box sizes as fractions of its input, so it must train at the size it runs at.
    input_size: list = field(default_factory=lambda: [352, 352])
    batch_size: int = 16
    epochs: int = 40
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 2.0
    loss_weights: list = field(default_factory=lambda: [8.0, 16.0, 1.0])  # box, objectness, class
    augment: dict = field(default_factory=dict)  # AugmentConfig fields
    seed: int = 0
    log_every: int = 5
    checkpoint_every: int = 50

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()})

    def to_dict(self) -> dict:
        return asdict(self)


def data_root(cli_value: str | None) -> Path:
    """The folder holding the datasets: ``--data``, else ``$IVIF_DATA``, else an error."""
    return resolve_data_folder(cli_value, "--data", "msrs/ and splits/")


def _check(path, cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{path}: '{key}' {msg}")


def load_detector_config(path: str | Path, overrides: dict | None = None) -> DetectorTrainConfig:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training config {path} not found; see config/train_detector.yaml for an example")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a training config is a mapping of keys, not a {type(raw).__name__}")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name for f in fields(DetectorTrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; valid keys: {sorted(known)}")
    cfg = DetectorTrainConfig(**raw)
    _check(
        path,
        isinstance(cfg.classes, list) and cfg.classes and all(isinstance(c, str) for c in cfg.classes),
        "classes",
        f"must list COCO class names, got {cfg.classes!r}",
    )
    _check(
        path,
        isinstance(cfg.data, list) and len(cfg.data) > 0,
        "data",
        "is empty; list at least one {root: msrs/test, split: splits/msrs_dev_train.txt} source",
    )
    for i, src in enumerate(cfg.data):
        _check(
            path,
            isinstance(src, dict) and isinstance(src.get("root"), str) and set(src) <= {"root", "split"},
            f"data[{i}]",
            f"must be {{root: <folder>, split: <names file>?}} relative to the data root, got {src!r}",
        )
        for k in ("root", "split"):
            _check(
                path,
                not src.get(k) or not Path(src[k]).is_absolute(),
                f"data[{i}].{k}",
                "must be relative to the data root (--data / IVIF_DATA), not absolute",
            )
    _check(
        path,
        cfg.input_mode in INPUT_MODES,
        "input_mode",
        f"must be one of {', '.join(INPUT_MODES)}, got {cfg.input_mode!r}",
    )
    for key in ("input_size",):
        v = getattr(cfg, key)
        _check(
            path,
            isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= 32 and x % 32 == 0 for x in v),
            key,
            f"must be [width, height], multiples of 32 (>= 32), got {v!r}",
        )
    for key in ("batch_size", "epochs", "log_every", "checkpoint_every"):
        _check(
            path,
            isinstance(getattr(cfg, key), int) and getattr(cfg, key) >= 1,
            key,
            f"must be a positive integer, got {getattr(cfg, key)!r}",
        )
    for key in ("lr", "momentum", "weight_decay", "warmup_epochs"):
        _check(
            path,
            isinstance(getattr(cfg, key), (int, float)) and getattr(cfg, key) >= 0,
            key,
            f"must be a number >= 0, got {getattr(cfg, key)!r}",
        )
    _check(
        path,
        isinstance(cfg.loss_weights, list) and len(cfg.loss_weights) == 3,
        "loss_weights",
        f"must be [box, objectness, class], got {cfg.loss_weights!r}",
    )
    aug_fields = {f.name for f in fields(AugmentConfig)}
    _check(
        path,
        isinstance(cfg.augment, dict) and set(cfg.augment) <= aug_fields,
        "augment",
        f"has unknown keys {sorted(set(cfg.augment) - aug_fields) if isinstance(cfg.augment, dict) else cfg.augment}; "
        f"valid: {sorted(aug_fields)}",
    )
    return cfg
