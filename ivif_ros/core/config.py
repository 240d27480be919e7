"""The one configuration schema of the fusion graph (nodes, ``ivif launch`` and replay).

Every setting is a dataclass field declared with :func:`param`, which records its
description and its valid range or choices. That single declaration drives

* validation (at load time, at ROS parameter declare time and at set time),
* the ROS parameter names (``section.field``, e.g. ``sync.slop_s``) and their
  ``ParameterDescriptor`` s (see ``ivif_ros.nodes.params``),
* the commented ``config/fusion.yaml``.

The YAML file is a plain ROS 2 parameters file (``/**: ros__parameters: {...}``), so
``--params-file config/fusion.yaml`` works for any node in any namespace, and
:func:`load_config` reads the same file for code that runs without ROS. Nested
mappings become dotted parameter names, which is how rcl flattens them too.

The ``pipeline`` and ``engine`` sections are ``PipelineConfig`` (``core/pipeline.py``) and
``EngineConfig`` (``engines/config.py``), owned with the code they configure; this module
imports them on first use (they pull in torch) and adds the descriptions and limits
their fields do not carry.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ivif_ros.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Field declaration helpers


def param(
    default: Any,
    doc: str,
    *,
    range: tuple[float, float] | None = None,  # noqa: A002
    choices: tuple[str, ...] | None = None,
    lengths: tuple[int, ...] | None = None,
    read_only: bool = False,
) -> Any:
    """A config field: ``default`` plus what a user needs to set it (``doc``), and its limits.

    ``range`` is inclusive ``(low, high)`` for numbers (and for every element of a list);
    ``choices`` are the allowed strings; ``lengths`` the allowed list lengths. ``read_only``
    fields cannot change after a node started (e.g. QoS, which is fixed at subscription).
    """
    meta = {"doc": doc, "range": range, "choices": choices, "lengths": lengths, "read_only": read_only}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    """One leaf setting, flattened: what a ROS parameter declaration needs."""

    name: str  # dotted, e.g. "sync.slop_s"
    kind: type  # bool, int, float, str, or list (see ``item_kind``)
    item_kind: type | None  # element type of a list field
    default: Any
    doc: str
    range: tuple[float, float] | None
    choices: tuple[str, ...] | None
    lengths: tuple[int, ...] | None
    read_only: bool

    def check(self, value: Any, where: str = "") -> Any:
        """Coerce ``value`` to this field's type and validate it; raise ConfigError naming the key."""
        at = f" in {where}" if where else ""
        value = _coerce(self, value, at)
        values = value if self.kind is list else [value]
        if self.kind is list and self.lengths is not None and len(value) not in self.lengths:
            raise ConfigError(
                f"{self.name}{at}: expected a list of {' or '.join(map(str, self.lengths))} "
                f"values, got {len(value)} ({self.doc})"
            )
        if self.range is not None:
            lo, hi = self.range
            bad = [v for v in values if not lo <= v <= hi]
            if bad:
                raise ConfigError(f"{self.name}{at}: {bad[0]!r} is outside [{lo}, {hi}]; {self.doc}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.name}{at}: {value!r} is not one of {', '.join(self.choices)}; {self.doc}")
        return value


def _short(value: Any) -> str:
    """A bounded ``repr`` for error messages: a value from a hostile file may be huge."""
    import reprlib

    r = reprlib.Repr()
    r.maxlist = r.maxtuple = r.maxdict = 10
    r.maxstring = r.maxother = 80
    r.maxlevel = 3
    return r.repr(value)


def _coerce(spec: ParamSpec, value: Any, at: str) -> Any:
    def one(kind: type, v: Any) -> Any:
        if kind is bool:
            if isinstance(v, bool):
                return v
        elif kind is int:
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            if isinstance(v, float) and v.is_integer():
                return int(v)
        elif kind is float:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        elif kind is str:
            if isinstance(v, str):
                return v
        raise ConfigError(
            f"{spec.name}{at}: expected {kind.__name__}, got {_short(v)} ({type(v).__name__}); {spec.doc}"
        )

    if spec.kind is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{spec.name}{at}: expected a list of {spec.item_kind.__name__}, got {_short(value)}")
        return [one(spec.item_kind, v) for v in value]
    return one(spec.kind, value)


# ---------------------------------------------------------------------------------------------
# Sections


@dataclass
class SyncConfig:
    """How IR and visible messages are paired (``ivif_ros.core.sync``)."""

    implementation: str = param(
        "auto",
        "pairing implementation: 'message_filters' (ROS package, if installed), 'builtin' "
        "(ivif_ros.core.sync, accounts every drop by reason) or 'auto' (message_filters if importable)",
        choices=("auto", "message_filters", "builtin"),
        read_only=True,
    )
    policy: str = param(
        "approximate",
        "'approximate' (pairs as soon as a partner within slop has arrived, as "
        "Python message_filters' ApproximateTimeSynchronizer; lowest latency), 'optimal' (C++ "
        "message_filters ApproximateTime: the tightest pair provable, usually one frame later) or "
        "'exact' (identical header stamps only)",
        choices=("approximate", "optimal", "exact"),
        read_only=True,
    )
    slop_s: float = param(
        0.02, "largest header-stamp difference (s) between the IR and visible image of a pair", range=(0.0, 10.0)
    )
    queue_size: int = param(10, "messages kept per camera while waiting for a partner", range=(1, 1000))
    age_penalty: float = param(
        0.1,
        "policy 'optimal': age penalty, how much a newer candidate pair must be tighter than an older one to win",
        range=(0.0, 100.0),
    )
    time_jump_reset_s: float = param(
        1.0,
        "a stamp this far (s) behind its camera's newest one resets the "
        "pairing (e.g. a looping bag) instead of being dropped as out-of-order",
        range=(0.0, 3600.0),
    )
    min_period_s: float = param(
        0.0,
        "policy 'optimal': least stamp step of either camera (message_filters' "
        "inter-message lower bound). 0 waits one frame for proof that no better pair can come; about 2/3 of "
        "the frame period (0.02 for 30 Hz) emits a tight pair on its second message",
        range=(0.0, 10.0),
    )
    pipeline_depth: int = param(
        1,
        "complete pairs that may wait for the fusion worker; when full the oldest is "
        "dropped as pipeline_busy. 1 always fuses the newest pair (latency never grows); 2 "
        "rides out one slow frame for at most one frame of extra latency",
        range=(1, 100),
        read_only=True,
    )


@dataclass
class RegistrationConfig:
    """How the IR image is mapped onto the visible image grid (``ivif_ros.core.registration``)."""

    mode: str = param(
        "resize",
        "'none' (sizes must match), 'resize' (scale IR to the visible size), 'crop' (cut "
        "crop_xywh from IR, then scale), 'homography' (3x3 from 'homography' or 'calibration_file'), "
        "'camera_info' (H = K_vis * K_ir^-1 from the CameraInfo intrinsics: boresighted cameras, far scene)",
        choices=("none", "resize", "crop", "homography", "camera_info"),
    )
    homography: list[float] = param(
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "row-major 3x3 homography mapping IR pixel coordinates to visible pixel coordinates "
        "(cv2.warpPerspective convention); used when mode is 'homography' and no calibration_file is set",
        lengths=(9,),
        range=(-1e6, 1e6),
    )
    calibration_file: str = param(
        "",
        "file with the 3x3 IR->visible homography (.npy, .txt/.csv, or "
        ".yaml/.json with key 'homography'); overrides 'homography' when set",
    )
    crop_xywh: list[int] = param(
        [0, 0, 0, 0],
        "IR region [x, y, width, height] (pixels) that the visible camera sees; used when mode is 'crop'",
        lengths=(4,),
        range=(0, 100000),
    )
    interpolation: str = param("linear", "resampling of the IR image", choices=("nearest", "linear", "cubic"))

    def validate(self) -> None:
        if self.mode == "crop" and (self.crop_xywh[2] <= 0 or self.crop_xywh[3] <= 0):
            raise ConfigError(
                "registration.crop_xywh: mode 'crop' needs a positive width and height, "
                f"got {self.crop_xywh}; set it to the IR region [x, y, w, h] the visible camera sees"
            )
        if self.mode == "homography":
            # Checked here, not first in Registration(): a running node must refuse a singular matrix or a
            # missing calibration file when it is set, not fail while applying it.
            from ivif_ros.core.registration import check_homography, load_homography

            if self.calibration_file:
                load_homography(self.calibration_file)
            else:
                check_homography(self.homography, "registration.homography")


@dataclass
class IrNormalizeConfig:
    """How 16-bit and float IR images become 8-bit (``ivif_ros.core.ir_normalize``)."""

    mode: str = param(
        "percentile",
        "'percentile' (robust stretch between two percentiles of each frame) or "
        "'fixed' (between fixed_min and fixed_max, e.g. raw counts or Kelvin)",
        choices=("percentile", "fixed"),
    )
    low_percentile: float = param(1.0, "lower percentile mapped to 0", range=(0.0, 100.0))
    high_percentile: float = param(99.0, "upper percentile mapped to 255", range=(0.0, 100.0))
    smoothing: float = param(
        0.9,
        "exponential smoothing of the percentile bounds across frames (0 = none, "
        "0.9 = slow), which stops the brightness flickering with scene content",
        range=(0.0, 0.999),
    )
    fixed_min: float = param(0.0, "value mapped to 0 in 'fixed' mode", range=(-1e9, 1e9))
    fixed_max: float = param(65535.0, "value mapped to 255 in 'fixed' mode", range=(-1e9, 1e9))

    def validate(self) -> None:
        if self.low_percentile >= self.high_percentile:
            raise ConfigError(
                f"ir_normalize: low_percentile ({self.low_percentile}) must be below "
                f"high_percentile ({self.high_percentile})"
            )
        if self.fixed_min >= self.fixed_max:
            raise ConfigError(f"ir_normalize: fixed_min ({self.fixed_min}) must be below fixed_max ({self.fixed_max})")


@dataclass
class DropoutConfig:
    """What happens when one camera goes silent."""

    timeout_s: float = param(
        0.5,
        "a camera silent this long (s) is declared lost; the graph then keeps "
        "publishing from the other camera (FusionStatus mode ir_only / visible_only)",
        range=(0.01, 60.0),
    )
    check_period_s: float = param(
        0.1, "how often (s) the dropout timer checks the cameras", range=(0.01, 10.0), read_only=True
    )


@dataclass
class QosConfig:
    """QoS of the image topics. Inputs default to sensor-data QoS (best effort, shallow)."""

    input_reliability: str = param(
        "best_effort",
        "reliability of the input subscriptions (best_effort also accepts reliable publishers)",
        choices=("best_effort", "reliable"),
        read_only=True,
    )
    input_depth: int = param(5, "history depth of the input subscriptions", range=(1, 1000), read_only=True)
    output_reliability: str = param(
        "reliable",
        "reliability of the output publishers (reliable also serves best-effort subscribers)",
        choices=("best_effort", "reliable"),
        read_only=True,
    )
    output_depth: int = param(5, "history depth of the output publishers", range=(1, 1000), read_only=True)


@dataclass
class DiagnosticsConfig:
    """The /diagnostics status (rate, per-stage latency, drops by reason)."""

    period_s: float = param(1.0, "publication period (s) of /diagnostics", range=(0.05, 60.0), read_only=True)
    hardware_id: str = param("ivif", "hardware_id field of the diagnostic status")
    min_rate_hz: float = param(5.0, "fused output rate below which the status is WARN", range=(0.0, 1000.0))
    max_latency_ms: float = param(
        500.0, "median end-to-end latency above which the status is WARN", range=(0.0, 60000.0)
    )
    log_throttle_s: float = param(
        5.0, "minimum time (s) between repeated log lines about rejected messages", range=(0.0, 3600.0)
    )


@dataclass
class OverlayConfig:
    """The overlay node: semantic colour image and boxes drawn on the fused image.

    Colours and opacity are ``pipeline.palette`` / ``pipeline.overlay_alpha``, shared with replay."""

    draw_detections: bool = param(True, "also publish detections/image with the boxes drawn")
    queue_size: int = param(10, "fused images / masks kept while waiting for their partner", range=(1, 1000))


@dataclass
class GraphConfig:
    """How ``ivif launch`` and the launch file start the nodes."""

    mode: str = param(
        "multi_process",
        "'multi_process' (one process per node) or 'single_process' (both nodes in one executor)",
        choices=("single_process", "multi_process"),
    )
    overlay: bool = param(True, "start the overlay node (semantic/color, detections/image)")
    fastdds_profile: str = param(
        "fastdds_profile.xml",
        "Fast DDS XML profile the launchers give the nodes "
        "(FASTDDS_DEFAULT_PROFILES_FILE): a relative name is looked up in the package's "
        "config directory. The shipped one keeps default discovery and receives large "
        "images from default-configured publishers intact. Empty = leave the environment "
        "as is; an exported FASTDDS_* variable also wins",
    )


def _foreign_sections() -> dict[str, type]:
    """Sections whose dataclasses live with their owners: ``engine`` (EngineConfig) and
    ``pipeline`` (PipelineConfig). Imported on first use: they pull in torch."""
    from ivif_ros.core.pipeline import PipelineConfig
    from ivif_ros.engines.config import EngineConfig

    return {"pipeline": PipelineConfig, "engine": EngineConfig}


def _foreign_metadata() -> dict[str, dict]:
    """Descriptions and limits for the foreign sections' fields, which carry none themselves."""
    from ivif_ros.engines.config import BACKENDS, PRECISIONS

    precisions = tuple(sorted({p for ps in PRECISIONS.values() for p in ps}))
    return {
        "pipeline.model": {
            "doc": "fusion model to run: 'student', 'teacher' or a path to <name>.safetensors "
            "(with its .json sidecar); fixed at start (the engine is built for it), "
            "restart the node to change it",
            "read_only": True,
        },
        "pipeline.detector": {
            "doc": "detector run on the fused image, whose boxes are published: 'detector' "
            "(FastestDet fine-tuned on MSRS fused images: person, bicycle, car; trained "
            "at 480x352), 'detector_coco' (its authors' COCO weights: 80 classes, trained "
            "at 352x352), or a path to <name>.safetensors (with its .json sidecar); '' "
            "publishes no detections",
            "read_only": True,
        },
        "pipeline.detector_size": {
            "doc": "detector input [width, height], multiples of 32; [0, 0] is the frame size "
            "padded to 32. Use the size the detector was trained at (box sizes are "
            "fractions of the input)",
            "lengths": (2,),
            "range": (0, 4096),
            "read_only": True,
        },
        "pipeline.class_map": {
            "doc": "published detection classes in id order: 'name' (a class of the detector) "
            "or 'name=class,class' to merge detector classes, e.g. 'car=car,truck,bus'; "
            "checked against the class names in the detector's sidecar"
        },
        "pipeline.score_threshold": {
            "doc": "detections below this score (objectness^0.6 x class^0.4) are dropped",
            "range": (0.0, 1.0),
        },
        "pipeline.nms_iou": {"doc": "IoU above which same-class boxes are suppressed", "range": (0.0, 1.0)},
        "pipeline.top_k": {"doc": "most detections per frame", "range": (1, 10000)},
        "pipeline.seg_upsample": {"doc": "semantic mask upsampling", "choices": ("nearest", "bilinear")},
        "pipeline.palette": {"doc": "class colour table of semantic/color", "choices": ("default", "msrs")},
        "pipeline.overlay_alpha": {"doc": "opacity of the class colours over the fused image", "range": (0.0, 1.0)},
        "engine.backend": {
            "doc": "inference backend; 'auto' times the installed CPU backends and caches "
            "the choice (timed again when a week old or timed under load)",
            "choices": BACKENDS,
            "read_only": True,
        },
        "engine.precision": {
            "doc": "numeric precision. bf16: OpenVINO (native on AVX512-BF16/AMX CPUs), the "
            "other CPU backends run fp32; keeps the student's fusion metrics. fp16: "
            "TensorRT",
            "choices": precisions,
            "read_only": True,
        },
        "engine.width": {
            "doc": "expected frame width (engines are built for it, padded to 32)",
            "range": (32, 16384),
            "read_only": True,
        },
        "engine.height": {"doc": "expected frame height", "range": (32, 16384), "read_only": True},
        "engine.dynamic": {
            "doc": "build engines that accept any size between min_size and max_size",
            "read_only": True,
        },
        "engine.min_size": {"doc": "smallest (height, width) of a dynamic engine", "lengths": (2,), "read_only": True},
        "engine.max_size": {"doc": "largest (height, width) of a dynamic engine", "lengths": (2,), "read_only": True},
        "engine.threads": {
            "doc": "CPU threads of ONNX Runtime / OpenVINO (0 = all cores)",
            "range": (0, 1024),
            "read_only": True,
        },
        "engine.cache_dir": {"doc": "where exported models, engines and the auto choice are cached", "read_only": True},
        "engine.auto_candidates": {"doc": "CPU backends that 'auto' times", "read_only": True},
        "engine.auto_runs": {
            "doc": "timed runs per candidate during auto-selection",
            "range": (1, 1000),
            "read_only": True,
        },
    }


SECTIONS: dict[str, type] = {
    "sync": SyncConfig,
    "registration": RegistrationConfig,
    "ir_normalize": IrNormalizeConfig,
    "dropout": DropoutConfig,
    "qos": QosConfig,
    "diagnostics": DiagnosticsConfig,
    "overlay": OverlayConfig,
    "graph": GraphConfig,
}


@dataclass
class FusionConfig:
    """The whole graph's configuration; ``pipeline`` and ``engine`` are the owners' ``PipelineConfig``
    and ``EngineConfig``, and ``pipeline.engine`` is the same object as ``engine``."""

    sync: SyncConfig = field(default_factory=SyncConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    ir_normalize: IrNormalizeConfig = field(default_factory=IrNormalizeConfig)
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    qos: QosConfig = field(default_factory=QosConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    pipeline: Any = None  # ivif_ros.core.pipeline.PipelineConfig
    engine: Any = None  # ivif_ros.engines.config.EngineConfig

    def __post_init__(self) -> None:
        foreign = _foreign_sections()
        if self.engine is None:
            self.engine = foreign["engine"]()
        if self.pipeline is None:
            self.pipeline = foreign["pipeline"]()
        self.pipeline.engine = self.engine  # one EngineConfig, set in its own section

    # -- flat (ROS parameter) view ----------------------------------------------------------
    def to_flat(self) -> dict[str, Any]:
        """``{"sync.slop_s": 0.02, ...}``: the ROS parameter names and values."""
        return {spec.name: _as_param_value(_get(self, spec.name)) for spec in param_specs()}

    @classmethod
    def from_flat(cls, flat: dict[str, Any], where: str = "") -> "FusionConfig":
        """Build and validate from dotted names; missing names keep their defaults."""
        nested: dict[str, Any] = {}
        for name, value in flat.items():
            section, _, key = name.partition(".")
            nested.setdefault(section, {})[key] = value
        return cls.from_dict(nested, where)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> "FusionConfig":
        """Build and validate from ``{section: {field: value}}``; unknown keys are errors."""
        classes = {**SECTIONS, **_foreign_sections()}
        at = f" in {where}" if where else ""
        if not isinstance(data, dict):
            raise ConfigError(f"config{at}: expected a mapping of sections, got {type(data).__name__}")
        sections = {}
        for name, values in data.items():
            if name not in classes:
                raise ConfigError(f"unknown config section {name!r}{at}{_suggest(name, classes)}")
            if not isinstance(values, dict):
                raise ConfigError(f"config section {name!r}{at}: expected a mapping, got {values!r}")
            sections[name] = _build_section(name, classes[name], values, where)
        return cls(**sections)

    def with_overrides(self, overrides: dict[str, Any], where: str = "overrides") -> "FusionConfig":
        flat = self.to_flat()
        flat.update(overrides)
        return FusionConfig.from_flat(flat, where)


def _build_section(name: str, cls: type, values: dict[str, Any], where: str) -> Any:
    specs = {s.name.split(".", 1)[1]: s for s in _section_specs(name, cls)}
    at = f" in {where}" if where else ""
    kwargs = {}
    for key, value in values.items():
        if key not in specs:
            raise ConfigError(f"unknown config key '{name}.{key}'{at}{_suggest(key, specs)}")
        kwargs[key] = specs[key].check(value, where)
    try:
        obj = cls(**kwargs)
        validate = getattr(obj, "validate", None)
        if callable(validate):
            validate()
    except ConfigError as exc:
        raise ConfigError(f"{exc}{at}") from exc
    except ValueError as exc:  # a foreign section may use ValueError; report it the same way
        raise ConfigError(f"{name}{at}: {exc}") from exc
    return obj


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"


def _get(cfg: FusionConfig, dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return getattr(getattr(cfg, section), key)


def _as_param_value(value: Any) -> Any:
    """A field value as ROS accepts it: paths become strings, tuples lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


_FOREIGN = ("pipeline", "engine")
_KINDS = {bool: bool, int: int, float: float, str: str}


def _section_specs(section: str, cls: type) -> Iterator[ParamSpec]:
    hints = typing.get_type_hints(cls)
    defaults = cls()
    foreign = _foreign_metadata() if section in _FOREIGN else {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.name.startswith("_") or dataclasses.is_dataclass(hint):
            continue  # a nested section (pipeline.engine) is declared as its own section
        origin = typing.get_origin(hint)
        if origin in (list, tuple):  # tuple[int, int] and tuple[str, ...] alike: a ROS array
            kind, item_kind = list, _KINDS[typing.get_args(hint)[0]]
        elif hint in _KINDS or hint is Path:  # a path is a string parameter
            kind, item_kind = _KINDS.get(hint, str), None
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: type {hint} cannot be a ROS parameter")
        meta = f.metadata or foreign.get(f"{section}.{f.name}", {})
        default = getattr(defaults, f.name)
        yield ParamSpec(
            name=f"{section}.{f.name}",
            kind=kind,
            item_kind=item_kind,
            default=list(default) if kind is list else (str(default) if hint is Path else default),
            doc=meta.get("doc", "") or (f.name.replace("_", " ")),
            range=meta.get("range"),
            choices=meta.get("choices"),
            lengths=meta.get("lengths"),
            read_only=bool(meta.get("read_only")),
        )


def param_specs(sections: tuple[str, ...] | None = None) -> list[ParamSpec]:
    """Every leaf setting (of the given sections), in declaration order."""
    classes = {**SECTIONS, **_foreign_sections()}
    wanted = sections or tuple(classes)
    unknown = [s for s in wanted if s not in classes]
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; known: {', '.join(classes)}")
    return [spec for s in wanted for spec in _section_specs(s, classes[s])]


# ---------------------------------------------------------------------------------------------
# Files


WILDCARD = "/**"


def read_param_file(path: str | Path, node_name: str | None = None) -> dict[str, Any]:
    """The nested settings in a ROS 2 parameters file (or a plain ``{section: {...}}`` YAML).

    For a parameters file, the ``/**`` block applies first and the block named after
    ``node_name`` (either ``name`` or ``/ns/name``) on top, as rcl does.
    """
    from ivif_ros.core.safe_yaml import load_yaml_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file (see config/fusion.yaml)")
    data = load_yaml_file(path, "config file") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    blocks = {k: v for k, v in data.items() if isinstance(v, dict) and "ros__parameters" in v}
    if not blocks:
        return data
    merged: dict[str, Any] = {}
    names = [WILDCARD] + ([n for n in blocks if node_name and n.rsplit("/", 1)[-1] == node_name])
    for name in names:
        if name in blocks:
            _deep_update(merged, blocks[name]["ros__parameters"] or {})
    return merged


def _deep_update(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def parse_override(text: str) -> tuple[str, Any]:
    """``"sync.slop_s=0.05"`` (or ``:=``) -> ``("sync.slop_s", 0.05)``; the value is parsed as YAML."""
    from ivif_ros.core.safe_yaml import load_yaml_text, one_line

    sep = ":=" if ":=" in text else "="
    name, found, raw = text.partition(sep)
    if not found or not name.strip():
        raise ConfigError(f"parameter override {one_line(repr(text), 80)}: expected NAME=VALUE, e.g. sync.slop_s=0.05")
    return name.strip(), load_yaml_text(raw, f"parameter override {one_line(name.strip(), 80)}")


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None, node_name: str | None = None
) -> FusionConfig:
    """Read, validate and return the configuration (defaults when ``path`` is None)."""
    cfg = FusionConfig.from_dict(read_param_file(path, node_name), str(path)) if path else FusionConfig()
    return cfg.with_overrides(overrides) if overrides else cfg
