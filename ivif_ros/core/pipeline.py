"""The fusion pipeline: registered IR + visible frame -> fused image, semantic mask, detections.

The ROS node and offline replay both call ``FusionPipeline.process``, so live
and offline results come from one code path. Registration happens before
(``core.registration``); this module sees an IR frame already of the visible size.
Works for the student and the teacher alike: the model is whatever
``config.model`` names (or the module/engine passed in), behind an ``Engine``.

The published detections come from a COCO-pretrained detector (``config.detector``, FastestDet,
``core.detector``) run on the fused RGB output at ``config.detector_size``, on an engine of the
same backend as the fusion model (docs/contracts.md).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ivif_ros.core import detector as det
from ivif_ros.core import postprocess as post
from ivif_ros.core.preprocess import preprocess
from ivif_ros.engines import Engine, EngineConfig, create_engine
from ivif_ros.engines.config import SIZE_MULTIPLE, padded
from ivif_ros.errors import ConfigError, UserFacingError

#: Shipped detector used by default: FastestDet fine-tuned on MSRS fused images (person, bicycle,
#: car) at 480x352. ``detector_coco`` is the authors' COCO checkpoint (80 classes, 352x352).
DEFAULT_DETECTOR = "detector"


@dataclass
class PipelineConfig:
    #: ``student``, ``teacher`` or a weights path (``ivif_ros.weights.load_model``).
    model: str = "student"
    engine: EngineConfig = field(default_factory=EngineConfig)
    #: Detector weights: a shipped name (``detector``, ``detector_coco``) or a path; ``""`` runs no detector.
    detector: str = DEFAULT_DETECTOR
    #: Detector input ``[width, height]`` (multiples of 32); ``[0, 0]``: the frame's own size, padded to 32.
    detector_size: list[int] = field(default_factory=lambda: [480, 352])
    #: Published classes: ``"name"`` or ``"name=detector class,detector class"`` (``core.detector.ClassMap``).
    class_map: list[str] = field(default_factory=lambda: list(det.DEFAULT_CLASS_MAP))
    score_threshold: float = 0.3
    nms_iou: float = det.NMS_IOU
    top_k: int = 100
    #: ``nearest`` (argmax at 1/4 then upsample; fast) or ``bilinear`` (upsample logits; smoother).
    seg_upsample: str = "nearest"
    #: Colour table name in ``core.postprocess.PALETTES`` (``default`` or ``msrs``).
    palette: str = "default"
    overlay_alpha: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0 or not 0.0 <= self.nms_iou <= 1.0:
            raise ConfigError("pipeline.score_threshold and pipeline.nms_iou must lie in [0, 1]")
        if self.top_k < 1:
            raise ConfigError(f"pipeline.top_k must be >= 1, got {self.top_k}")
        if self.seg_upsample not in ("nearest", "bilinear"):
            raise ConfigError(f"pipeline.seg_upsample must be 'nearest' or 'bilinear', got '{self.seg_upsample}'")
        if self.palette not in post.PALETTES:
            raise ConfigError(f"pipeline.palette: unknown '{self.palette}'; choose one of {', '.join(post.PALETTES)}")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ConfigError(f"pipeline.overlay_alpha must lie in [0, 1], got {self.overlay_alpha}")
        size = list(self.detector_size)
        if len(size) != 2 or any(v < 0 or v % SIZE_MULTIPLE for v in size) or (0 in size and size != [0, 0]):
            raise ConfigError(
                f"pipeline.detector_size: {size} must be [width, height], both positive multiples of "
                f"{SIZE_MULTIPLE} (e.g. [352, 352], [640, 480]) or [0, 0] for the frame's own size"
            )
        if self.detector:
            self.detector_classes()  # the class map must fit the detector: fail at load time, not at the first frame

    def detector_classes(self) -> det.ClassMap:
        """The class map parsed against the detector sidecar's ``detection_classes``."""
        return det.ClassMap.parse(self.class_map, detector_class_names(self.detector), "pipeline.class_map")

    def detector_hw(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """Detector input ``(height, width)`` for a frame of ``frame_hw``."""
        w, h = self.detector_size
        return (h, w) if w else (padded(frame_hw[0]), padded(frame_hw[1]))


def detector_class_names(name_or_path: str) -> list[str]:
    """The ``detection_classes`` of a detector's sidecar (a clear error if it has none)."""
    from ivif_ros.weights import resolve

    try:
        _, sidecar = resolve(name_or_path)
        names = json.loads(sidecar.read_text()).get("detection_classes")
    except (UserFacingError, OSError, ValueError) as exc:
        raise ConfigError(f"pipeline.detector: cannot read the class names of '{name_or_path}': {exc}") from exc
    if not names:
        raise ConfigError(
            f"pipeline.detector: {sidecar} lists no 'detection_classes'; a detector's sidecar must name "
            "its classes (see ivif_ros/weights/detector_coco.json)"
        )
    return list(names)


@dataclass
class FusionResult:
    fused_rgb: np.ndarray  # HxWx3 uint8 (fused luma with the visible chroma)
    fused_y: np.ndarray  # HxW uint8
    mask: np.ndarray  # HxW uint8 semantic class ids
    detections: post.Detections  # the detector's boxes in frame pixels; class ids index FusionPipeline.class_names
    timings: dict[str, float]  # pre_ms, infer_ms, post_ms, total_ms; detect_ms: the detector's share of the three
    palette: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 3), np.uint8))
    overlay_alpha: float = 0.5

    # The colour images are made on first use: the fusion node publishes the class mask and
    # leaves colouring to the overlay node, so a frame does not pay for them there.
    @functools.cached_property
    def color_mask(self) -> np.ndarray:
        """HxWx3 uint8 class colours."""
        return post.colorize(self.mask, self.palette)

    @functools.cached_property
    def overlay(self) -> np.ndarray:
        """HxWx3 uint8 class colours blended over ``fused_rgb``."""
        return post.overlay(self.fused_rgb, self.mask, self.color_mask, self.overlay_alpha)


class FusionPipeline:
    """Pre-process, fuse, post-process, detect. One call at a time (a lock guards the engines)."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        model=None,
        engine: Engine | None = None,
        detector_engine: Engine | None = None,
    ):
        """Build the engines from ``config`` unless ``engine`` (or an ``nn.Module`` ``model``) and
        ``detector_engine`` are given. The detector engine uses the fusion engine's backend, precision,
        threads and cache, at the detector's input size."""
        self.config = config or PipelineConfig()
        self.engine = engine or create_engine(model if model is not None else self.config.model, self.config.engine)
        self.detector_engine = detector_engine
        if detector_engine is None and self.config.detector:
            self.detector_engine = create_engine(self.config.detector, self.detector_engine_config())
        self._class_map: tuple[tuple, det.ClassMap] | None = None
        self._palette: np.ndarray | None = None
        self._lock = threading.Lock()

    def detector_engine_config(self) -> EngineConfig:
        """The fusion engine's settings at the detector's input size (fixed unless ``detector_size`` is [0, 0])."""
        cfg = self.config
        h, w = cfg.detector_hw((cfg.engine.height, cfg.engine.width))
        backend = self.engine.name if cfg.engine.backend == "auto" else cfg.engine.backend
        return dataclasses.replace(
            cfg.engine, backend=backend, width=w, height=h, dynamic=cfg.engine.dynamic and not cfg.detector_size[0]
        )

    @property
    def class_map(self) -> det.ClassMap | None:
        """The published classes (re-parsed when ``config.class_map`` changes); None without a detector."""
        if not self.config.detector:
            return None
        key = (self.config.detector, tuple(self.config.class_map))
        if self._class_map is None or self._class_map[0] != key:
            self._class_map = (key, self.config.detector_classes())
        return self._class_map[1]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the published detection classes (``FusionResult.detections.class_ids`` index them)."""
        classes = self.class_map
        return classes.names if classes is not None else ()

    def process(self, ir: np.ndarray, vis: np.ndarray) -> FusionResult:
        """``ir``: registered ``HxW`` (uint8/uint16/float); ``vis``: ``HxWx3`` RGB or ``HxW`` grey, same size."""
        with self._lock:
            return self._add_detections(self._fuse(ir, vis))

    def fuse(self, ir: np.ndarray, vis: np.ndarray) -> FusionResult:
        """``process`` without the detector: the fused image and mask, no boxes yet. The node publishes
        them at once and then calls ``add_detections``, so the image does not wait for the detector."""
        with self._lock:
            return self._fuse(ir, vis)

    def add_detections(self, result: FusionResult) -> FusionResult:
        """Run the detector on ``result.fused_rgb``; fills ``result.detections`` and adds its timings."""
        with self._lock:
            return self._add_detections(result)

    def _fuse(self, ir: np.ndarray, vis: np.ndarray) -> FusionResult:
        cfg = self.config
        t0 = time.perf_counter()
        inputs = preprocess(ir, vis)
        t1 = time.perf_counter()
        fused, seg_logits = self.engine.infer(inputs.ir, inputs.vis_y)
        t2 = time.perf_counter()

        h, w = inputs.height, inputs.width
        y = post.fused_luma(fused, h, w)
        fused_rgb = post.restore_rgb8(y, inputs.cb, inputs.cr)
        mask = post.seg_mask(seg_logits, h, w, cfg.seg_upsample)
        if self._palette is None or len(self._palette) != seg_logits.shape[1]:
            self._palette = post.palette_for(seg_logits.shape[1], cfg.palette)
        fused_y = post.to_uint8(y)
        t3 = time.perf_counter()
        return FusionResult(
            fused_rgb=fused_rgb,
            fused_y=fused_y,
            mask=mask,
            detections=post.Detections(),
            timings={
                "pre_ms": (t1 - t0) * 1e3,
                "infer_ms": (t2 - t1) * 1e3,
                "post_ms": (t3 - t2) * 1e3,
                "detect_ms": 0.0,
                "total_ms": (t3 - t0) * 1e3,
            },
            palette=self._palette,
            overlay_alpha=cfg.overlay_alpha,
        )

    def _add_detections(self, result: FusionResult) -> FusionResult:
        t0 = time.perf_counter()
        result.detections, (blob_s, detector_s, decode_s) = self.detect(result.fused_rgb)
        detect_ms = (time.perf_counter() - t0) * 1e3
        # Stages as FusionStatus names them: the detector's input blob counts as pre-processing, its
        # inference as inference and its decoding as post-processing; detect_ms is their sum.
        timings = result.timings
        timings["pre_ms"] += blob_s * 1e3
        timings["infer_ms"] += detector_s * 1e3
        timings["post_ms"] += decode_s * 1e3
        timings["detect_ms"] = detect_ms
        timings["total_ms"] += detect_ms
        return result

    def detect(self, rgb: np.ndarray) -> tuple[post.Detections, tuple[float, float, float]]:
        """The detector alone on an ``HxWx3`` uint8 RGB frame (``process`` passes the fused one) -> boxes in
        frame pixels, and the seconds spent on the input blob, the inference and the decoding."""
        if self.detector_engine is None:
            return post.Detections(), (0.0, 0.0, 0.0)
        cfg = self.config
        frame_hw = rgb.shape[:2]
        t0 = time.perf_counter()
        blob = det.detector_blob(rgb, cfg.detector_hw(frame_hw))
        t1 = time.perf_counter()
        (pred,) = self.detector_engine.infer(blob)
        t2 = time.perf_counter()
        boxes = det.decode(pred, self.class_map, frame_hw, cfg.score_threshold, cfg.nms_iou, cfg.top_k)
        return boxes, (t1 - t0, t2 - t1, time.perf_counter() - t2)
