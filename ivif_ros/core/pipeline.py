"""The fusion pipeline: registered IR + visible frame -> fused image, semantic mask, detections.

The ROS node and offline replay both call ``FusionPipeline.process``, so live
and offline results come from one code path. Registration happens before
(``core.registration``); this module sees an IR frame already of the visible size.
Works for the student and the teacher alike: the model is whatever
``config.model`` names (or the module/engine passed in), behind an ``Engine``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ivif_ros.core import postprocess as post
from ivif_ros.core.preprocess import preprocess
from ivif_ros.engines import Engine, EngineConfig, create_engine
from ivif_ros.errors import ConfigError


@dataclass
class PipelineConfig:
    #: ``student``, ``teacher`` or a weights path (``ivif_ros.weights.load_model``).
    model: str = "student"
    engine: EngineConfig = field(default_factory=EngineConfig)
    score_threshold: float = 0.3
    nms_iou: float = 0.5
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


@dataclass
class FusionResult:
    fused_rgb: np.ndarray  # HxWx3 uint8 (fused luma with the visible chroma)
    fused_y: np.ndarray  # HxW uint8
    mask: np.ndarray  # HxW uint8 semantic class ids
    color_mask: np.ndarray  # HxWx3 uint8 class colours
    overlay: np.ndarray  # HxWx3 uint8 class colours blended over fused_rgb
    detections: post.Detections  # boxes in frame pixels (the visible/fused frame)
    timings: dict[str, float]  # pre_ms, infer_ms, post_ms, total_ms


class FusionPipeline:
    """Pre-process, infer, post-process. One call at a time (a lock guards the engine)."""

    def __init__(self, config: PipelineConfig | None = None, *, model=None, engine: Engine | None = None):
        """Build the engine from ``config`` unless ``engine`` (or an ``nn.Module`` ``model``) is given."""
        self.config = config or PipelineConfig()
        self.engine = engine or create_engine(model if model is not None else self.config.model, self.config.engine)
        self._palette: np.ndarray | None = None
        self._lock = threading.Lock()

    def process(self, ir: np.ndarray, vis: np.ndarray) -> FusionResult:
        """``ir``: registered ``HxW`` (uint8/uint16/float); ``vis``: ``HxWx3`` RGB or ``HxW`` grey, same size."""
        with self._lock:
            return self._process(ir, vis)

    def _process(self, ir: np.ndarray, vis: np.ndarray) -> FusionResult:
        cfg = self.config
        t0 = time.perf_counter()
        inputs = preprocess(ir, vis)
        t1 = time.perf_counter()
        fused, seg_logits, det_heatmap, det_box = self.engine.infer(inputs.ir, inputs.vis_y)
        t2 = time.perf_counter()

        h, w = inputs.height, inputs.width
        y = post.fused_luma(fused, h, w)
        fused_rgb = post.restore_rgb8(y, inputs.cb, inputs.cr)
        mask = post.seg_mask(seg_logits, h, w, cfg.seg_upsample)
        if self._palette is None or len(self._palette) != seg_logits.shape[1]:
            self._palette = post.palette_for(seg_logits.shape[1], cfg.palette)
        color_mask = post.colorize(mask, self._palette)
        candidates = post.decode_centernet(det_heatmap, det_box, cfg.score_threshold, cfg.top_k)
        detections = post.classwise_nms(post.clip_boxes(candidates, h, w), cfg.nms_iou)
        result = FusionResult(
            fused_rgb=fused_rgb,
            fused_y=post.to_uint8(y),
            mask=mask,
            color_mask=color_mask,
            overlay=post.overlay(fused_rgb, mask, color_mask, cfg.overlay_alpha),
            detections=detections,
            timings={},
        )
        t3 = time.perf_counter()
        result.timings = {
            "pre_ms": (t1 - t0) * 1e3,
            "infer_ms": (t2 - t1) * 1e3,
            "post_ms": (t3 - t2) * 1e3,
            "total_ms": (t3 - t0) * 1e3,
        }
        return result
