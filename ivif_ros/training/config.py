"""Training configuration: a YAML file mapped onto ``TrainConfig`` (unknown keys are errors)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ivif_ros.errors import ConfigError

DEFAULT_WEIGHTS = {
    # fusion (scaled so that they are not drowned by the task losses, which are ~10x larger)
    "intensity": 4.0,
    "salient": 2.0,
    "gradient": 8.0,
    "ssim": 2.0,
    "guidance": 1.0,
    "qabf": 0.0,
    "ssim_metric": 0.0,
    "contrast": 0.0,
    # teacher-only auxiliaries
    "fidelity": 0.5,
    "boundary": 0.2,
    "binary": 0.2,
    # tasks (heatmap and box: the teacher's detection heads)
    "semantic": 0.5,
    "heatmap": 1.0,
    "box": 0.1,
    # distillation (student with a teacher)
    "distill_output": 1.0,
    "distill_gradient": 0.0,
    "distill_feature": 0.5,
    "distill_semantic": 0.5,
    # language-driven (only with clip_checkpoint)
    "clip": 0.1,
}


@dataclass
class TrainConfig:
    model: dict = field(default_factory=dict)  # builder keys (StudentConfig / TeacherConfig)
    detection_classes: list = field(default_factory=lambda: ["person", "bicycle", "car"])
    semantic_classes: list = field(default_factory=lambda: ["background", "person", "bicycle", "car"])
    data_root: str | None = None  # None: $IVIF_DATA (``ivif train --data`` overrides)
    data: list = field(default_factory=list)  # [{root: rel/or/abs, split?, exclude?, seg_labels?}]
    input_mode: str = "fused"  # fused | ir | vis (single-modality ablations)
    crop: int = 192
    object_crop_prob: float = 0.0  # share of crops centred near a labelled box
    visible_dropout: float = 0.0  # share of crops whose visible image is replaced by IR
    visible_jitter: float = 0.0  # visible exposure augmentation strength (gain, gamma, noise)
    ir_jitter: float = 0.0  # IR response augmentation strength (gain, offset, gamma, noise, blur)
    visible_only_crop_prob: float = 0.0  # share of crops centred on a box only the visible labels hold
    batch_size: int = 4
    steps: int = 1000
    lr: float = 2e-3
    # Peak lr of the student's fusion path (fusion_maps, detail head, prior); None = lr. After a
    # warm start from a single-camera student, a low lr keeps the trunk near where it was while
    # the fusion path, which that student never trained, learns at its own rate.
    fusion_path_lr: float | None = None
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    seed: int = 0
    workers: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    guidance_every: int = 4  # add synthetic multi-focus pairs every N steps
    temperature: float = 2.0  # distilled semantic loss
    clip_checkpoint: str | None = None
    # A trained model (.safetensors + .json) whose weights start this training (a warm start,
    # not a resume); a single-camera student is folded for a fused one (training/warm_start.py).
    init_from: str | None = None
    # Semantic coupling (training/coupling.py, student only): a frozen detector's loss on the
    # student's fused image, {weights, weight (its lambda), size [w, h], batch_size, data {root, split}}.
    detector_coupling: dict | None = None
    clip_prompts: dict = field(
        default_factory=lambda: {
            "positive": ["a bright thermal target with clear visible texture", "a sharp, high-contrast road scene"],
            "negative": ["a blurry, low-contrast image", "a noisy dark image with washed-out targets"],
        }
    )
    loss_weights: dict = field(default_factory=dict)

    def weight(self, name: str) -> float:
        if name == "detector":  # the coupling's lambda lives with its other settings
            return float(self.detector_coupling["weight"]) if self.detector_coupling else 0.0
        return float({**DEFAULT_WEIGHTS, **self.loss_weights}.get(name, 0.0))

    def resolved_data_root(self) -> Path:
        """The folder the data sources are relative to: ``data_root`` (``--data``), else $IVIF_DATA."""
        sources = ", ".join(s["root"] for s in self.data) or "see the config"
        return resolve_data_folder(self.data_root, "data_root/--data", f"the training data sources ({sources})")

    def resolved_sources(self) -> list[dict]:
        root = self.resolved_data_root()
        out = []
        for src in self.data:
            s = {"root": str(root / src["root"])}
            if src.get("split"):
                s["split"] = str(root / src["split"])
            if src.get("seg_labels"):
                s["seg_labels"] = src["seg_labels"]
            if src.get("exclude"):
                s["exclude"] = src["exclude"]  # already absolute (load_config)
            out.append(s)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    def provenance(self) -> dict:
        """``to_dict`` for a weights sidecar: file paths relative to the working directory (the
        repository, for a checkout) where they lie below it, so no machine path is recorded."""
        d = self.to_dict()
        for key in PATH_KEYS:
            if d.get(key):
                d[key] = portable_path(d[key])
        d["data"] = [{**s, "exclude": portable_path(s["exclude"])} if s.get("exclude") else dict(s) for s in d["data"]]
        d["data_root"] = self.data_root or f"${DATA_ENV}"
        return d


DATA_ENV = "IVIF_DATA"  # the data folder when neither the config nor --data names one


def resolve_data_folder(given: str | Path | None, given_by: str, holding: str) -> Path:
    """The data folder: ``given`` (named ``given_by`` in errors), else $IVIF_DATA; one clear error
    naming ``holding`` (what the folder must hold) when neither is set or the folder is missing."""
    root = given or os.environ.get(DATA_ENV)
    if not root:
        raise ConfigError(f"no data folder: pass --data DIR or set {DATA_ENV}=DIR, the folder holding {holding}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(
            f"data folder {root} (from {given_by if given else DATA_ENV}) does not exist; "
            f"pass --data DIR or set {DATA_ENV} to the folder holding the data"
        )
    return root


PATH_KEYS = ("init_from", "clip_checkpoint")  # file paths, relative to the config


def portable_path(value: str | Path) -> str:
    """``value`` relative to the working directory if it lies below it, else as given."""
    path = Path(value)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(value)


def _beside(config: Path, value: str) -> str:
    """``value`` as an absolute path, relative to the folder of ``config`` unless already absolute."""
    return str(Path(value) if Path(value).is_absolute() else (config.parent / value).resolve())


def _read_raw(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """One config file's keys over those of its ``base:`` (if any), held-out paths made absolute.

    ``base:`` names another training config, relative to this file; this file's keys replace the
    base's, except ``loss_weights``, which is merged weight by weight (a config that changes one
    weight names only that one). Bases may chain; a cycle is an error.
    """
    from ivif_ros.core.safe_yaml import load_yaml_file

    if not path.is_file():
        where = f" (the base of {chain[-1]})" if chain else ""
        raise ConfigError(f"training config {path}{where} not found; see config/train_student.yaml for an example")
    if path.resolve() in chain:
        raise ConfigError(f"{path}: 'base' chain loops back to itself ({' -> '.join(map(str, chain))} -> {path})")
    raw = load_yaml_file(path, "training config") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a training config is a mapping of keys, not a {type(raw).__name__}")
    for src in raw.get("data") or []:
        # A held-out names file ships beside the config (never the images), so it is found
        # relative to the config file that names it, not to data_root.
        if isinstance(src, dict) and src.get("exclude"):
            src["exclude"] = _beside(path, src["exclude"])
            if not Path(src["exclude"]).is_file():
                raise ConfigError(
                    f"{path}: data source {src.get('root')!r}: exclude file {src['exclude']} "
                    f"not found; give a names file (one pair name per line) relative to the config"
                )
    for key in PATH_KEYS:
        # Model files named in a config are found relative to it, like its held-out files, so a
        # config runs from any working directory. The CLI's overrides stay relative to the shell's.
        if isinstance(raw.get(key), str):
            raw[key] = _beside(path, raw[key])
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be the path of another training config, not {base!r}")
    merged = _read_raw(path.parent / base, (*chain, path.resolve()))
    weights = {**(merged.get("loss_weights") or {}), **(raw.pop("loss_weights", None) or {})}
    merged.update(raw)
    if weights:
        merged["loss_weights"] = weights
    return merged


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    path = Path(path)
    raw = _read_raw(path)
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; valid keys: {sorted(known)}")
    bad = set(raw.get("loss_weights", {})) - set(DEFAULT_WEIGHTS)
    if bad:
        raise ConfigError(f"{path}: unknown loss_weights {sorted(bad)}; valid: {sorted(DEFAULT_WEIGHTS)}")
    cfg = TrainConfig(**raw)
    if not cfg.data:
        raise ConfigError(f"{path}: 'data' is empty; list at least one {{root: ..., split: ...}} source")
    if cfg.detector_coupling is not None:
        from ivif_ros.training.coupling import check_coupling

        cfg.detector_coupling = check_coupling(cfg.detector_coupling, str(path))
    if cfg.semantic_classes[0] not in ("background", "unlabelled"):
        raise ConfigError(
            f"{path}: semantic_classes must start with the background class (id 0), "
            f"'background' or 'unlabelled', not {cfg.semantic_classes[0]!r}"
        )
    return cfg
