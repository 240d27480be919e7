"""Score fusion methods over a paired dataset (the engine behind ``ivif eval``; no ROS).

A *fusion method* is any callable ``method(ir_u8 HxW, vis_u8 HxWx3 RGB or HxW) -> fused_y_u8
HxW``. Baselines and learned models look the same to the evaluator; a method that also has
``fuse_and_detect(ir, vis) -> (fused_y, Detections)`` (a learned model with a detector)
is additionally scored for detection mAP against the dataset's YOLO boxes: by default the
boxes drawn on fused images (``labels_det/fusion``), and, as a second column comparable with
earlier figures, the union of the IR and visible boxes.

Method names: a key of ``core.baselines.BASELINES``, or ``model:<name or path>`` for trained
weights run through ``core.pipeline.FusionPipeline`` (resolved lazily by
``load_learned_method``, so evaluating baselines never imports torch).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ivif_ros.core.baselines import BASELINES
from ivif_ros.core.color import restore_color, rgb_to_y_u8
from ivif_ros.errors import ConfigError, InputError, UserFacingError
from ivif_ros.metrics.contrast import CONTRAST, contrast_retention
from ivif_ros.metrics.detection import evaluate_detections
from ivif_ros.metrics.fusion import METRIC_NAMES, fusion_metrics

FusionMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]
MODEL_PREFIX = "model:"
#: Detection classes of the YOLO labels (contracts.md default: person, bicycle, car = ids 0, 1, 2),
#: which are also the pipeline's default published classes (``pipeline.class_map``).
DETECTION_CLASSES = ("person", "bicycle", "car")
#: Score floor of the boxes that mAP ranks: low, so that the precision-recall curve is complete
#: (the published boxes use ``pipeline.score_threshold``, 0.3).
MAP_SCORE_FLOOR = 0.05
#: Per-image columns of an evaluation: the nine fusion metrics and the contrast retention
#: against the visible image (``metrics.contrast``).
SCORE_NAMES = (*METRIC_NAMES, CONTRAST)


def baseline_method(name: str) -> FusionMethod:
    """A baseline as a fusion method: fuse the infrared with the visible luma."""
    fuse = BASELINES[name]

    def method(ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        return fuse(ir, rgb_to_y_u8(vis))

    method.__name__ = f"baseline_{name}"
    return method


class LearnedMethod:
    """A trained model behind ``FusionPipeline``: fused luma, and the detector's boxes on the fused image for mAP."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def __call__(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        return self.pipeline.process(ir, vis).fused_y

    def fuse_and_detect(self, ir: np.ndarray, vis: np.ndarray):
        result = self.pipeline.process(ir, vis)
        return result.fused_y, result.detections


def load_learned_method(model: str, backend: str = "torch", frame_hw: tuple[int, int] = (480, 640)) -> LearnedMethod:
    """``model:<model>`` -> a ``LearnedMethod``. The one place that imports the model stack.

    ``backend`` defaults to eager PyTorch: it needs no export step; pass ``auto``,
    ``onnxruntime`` or ``openvino`` to score an exported engine. The engine is built dynamic
    around ``frame_hw`` (the first pair's size) because TNO/VIFB frame sizes vary per pair.
    """
    try:
        from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
        from ivif_ros.engines import EngineConfig
    except ImportError as exc:
        raise ConfigError(
            f"method 'model:{model}' needs the inference pipeline (ivif_ros.core.pipeline, torch), which cannot be "
            f"imported here: {exc}. Install the full environment (scripts/setup.sh) or evaluate baselines only"
        ) from exc
    try:
        # fp32: scores are the model's own, comparable across backends (the node defaults to bf16)
        engine = EngineConfig(
            backend=backend,
            precision="fp32",
            height=frame_hw[0],
            width=frame_hw[1],
            dynamic=True,
            min_size=(32, 32),
            max_size=(2048, 2048),
        )
        config = PipelineConfig(
            model=model, engine=engine, score_threshold=MAP_SCORE_FLOOR, class_map=list(DETECTION_CLASSES)
        )
        return LearnedMethod(FusionPipeline(config))
    except UserFacingError as exc:
        raise ConfigError(f"method 'model:{model}': {exc}") from exc


def resolve_methods(
    specs: Sequence[str], backend: str = "torch", frame_hw: tuple[int, int] = (480, 640)
) -> dict[str, FusionMethod]:
    """Method names (``max``, ``gff``, ``model:student``, ...) -> fusion methods, in order."""
    methods: dict[str, FusionMethod] = {}
    for spec in (s.strip() for s in specs):
        if not spec:
            continue
        if spec in methods:
            raise ConfigError(f"method '{spec}' is listed twice")
        if spec.startswith(MODEL_PREFIX) and len(spec) > len(MODEL_PREFIX):
            methods[spec] = load_learned_method(spec[len(MODEL_PREFIX) :], backend, frame_hw)
        elif spec in BASELINES:
            methods[spec] = baseline_method(spec)
        else:
            raise ConfigError(
                f"unknown fusion method '{spec}'; use one of {', '.join(BASELINES)} or model:<name or weights path>"
            )
    if not methods:
        raise ConfigError("no fusion method given; e.g. --method max,gff")
    return methods


@dataclass
class Sample:
    """The images of one pair kept for the report's sample panels."""

    name: str
    ir: np.ndarray
    vis: np.ndarray
    fused_rgb: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class EvalResult:
    variant: str
    methods: list[str]
    images: list[str]
    #: method -> one ``{metric: value}`` per image, in ``images`` order
    per_image: dict[str, list[dict[str, float]]]
    #: method -> fusion time per image in milliseconds (the method call only)
    fuse_ms: dict[str, list[float]]
    samples: list[Sample]
    #: method -> ``evaluate_detections`` result against the default ground truth (``Pair.ground_truth``:
    #: the fusion labels when the dataset has them, else the IR/visible union), for methods that
    #: detect, when labels exist
    detection: dict[str, dict] = field(default_factory=dict)
    #: which boxes ``detection`` was scored against: ``fusion`` or ``union``
    ground_truth: str = "union"
    #: method -> result against the IR/visible union, when ``detection`` used the fusion labels
    detection_union: dict[str, dict] = field(default_factory=dict)

    def means(self) -> dict[str, dict[str, float]]:
        """Mean of each score (``SCORE_NAMES``) per method over the images where it is defined
        (NaN-skipping: SCD is undefined when the fused image equals a source, contrast when the
        visible image has no well-exposed texture)."""
        out = {}
        for m in self.methods:
            table = np.array([[row[k] for k in SCORE_NAMES] for row in self.per_image[m]], float)
            out[m] = {}
            for k, column in zip(SCORE_NAMES, table.T):
                finite = column[np.isfinite(column)]
                out[m][k] = float(finite.mean()) if finite.size else float("nan")
        return out


def _check_fused(method: str, name: str, fused: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    fused = np.asarray(fused)
    if fused.shape != shape or fused.dtype != np.uint8:
        raise InputError(
            f"method '{method}' returned a {fused.dtype} {fused.shape} image for pair {name}; "
            f"a fusion method must return the fused luma as uint8 {shape}"
        )
    return fused


def _sample_indices(n: int, count: int) -> set[int]:
    if count <= 0 or n == 0:
        return set()
    return {int(i) for i in np.linspace(0, n - 1, min(count, n)).round()}


def evaluate(
    dataset,
    methods: dict[str, FusionMethod],
    variant: str = "cddfuse",
    limit: int | None = None,
    sample_count: int = 3,
    progress: bool = True,
) -> EvalResult:
    """Fuse and score every pair of ``dataset`` (a ``PairedDataset``) with every method."""
    from tqdm import tqdm

    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise InputError("the dataset (or split) is empty; nothing to evaluate")
    keep = _sample_indices(n, sample_count)
    names = list(methods)
    per_image = {m: [] for m in names}
    fuse_ms = {m: [] for m in names}
    detections = {m: ([], [], []) for m in names if hasattr(methods[m], "fuse_and_detect")}
    samples, images = [], []
    with_boxes = bool(getattr(dataset, "has_boxes", False))
    with_fusion = with_boxes and bool(getattr(dataset, "has_fusion_boxes", False))

    for i in tqdm(range(n), desc="eval", unit="pair", disable=not progress):
        pair = dataset[i]
        images.append(pair.name)
        vis_y = rgb_to_y_u8(pair.vis)
        sample = Sample(pair.name, pair.ir, pair.vis) if i in keep else None
        for m in names:
            t0 = time.perf_counter()
            if m in detections:
                fused, dets = methods[m].fuse_and_detect(pair.ir, pair.vis)
            else:
                fused = methods[m](pair.ir, pair.vis)
            fuse_ms[m].append((time.perf_counter() - t0) * 1e3)
            fused = _check_fused(m, pair.name, fused, pair.ir.shape)
            scores = fusion_metrics(fused, pair.ir, vis_y, variant)
            scores[CONTRAST] = contrast_retention(fused, vis_y)
            per_image[m].append(scores)
            if m in detections and with_boxes:
                gt, union = pair.ground_truth, pair.boxes
                detections[m][0].append((dets.xyxy, dets.scores, dets.class_ids))
                detections[m][1].append((gt.xyxy, gt.cls))
                detections[m][2].append((union.xyxy, union.cls))
            if sample is not None:
                sample.fused_rgb[m] = restore_color(fused, pair.vis)
        if sample is not None:
            samples.append(sample)

    def score(column: int) -> dict[str, dict]:
        return {
            m: evaluate_detections(lists[0], lists[column], len(DETECTION_CLASSES), DETECTION_CLASSES)
            for m, lists in detections.items()
            if with_boxes
        }

    return EvalResult(
        variant,
        names,
        images,
        per_image,
        fuse_ms,
        samples,
        score(1),
        "fusion" if with_fusion else "union",
        score(2) if with_fusion else {},
    )


def _json_safe(value):
    """NaN/inf -> None so the files are strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


GROUND_TRUTH_LABELS = {"fusion": "fusion labels", "union": "IR∪VIS union"}


def detection_tables(result: EvalResult) -> dict:
    """``{"ground_truth": "fusion"|"union", "<method>": result, ..., "union": {<method>: result}}``
    (the ``union`` key only when the default ground truth is the fusion labels)."""
    out = {"ground_truth": result.ground_truth, **result.detection}
    if result.detection_union:
        out["union"] = result.detection_union
    return out


def write_tables(result: EvalResult, out_dir: Path) -> dict[str, Path]:
    """``per_image.csv``/``.json`` (one row per method and image), ``summary.json`` (method ->
    mean scores, exactly ``SCORE_NAMES``), ``summary.csv`` (the same plus mean fusion time) and
    ``detection.json`` when a method was scored for detection."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        k: out_dir / f
        for k, f in [
            ("per_image_csv", "per_image.csv"),
            ("per_image_json", "per_image.json"),
            ("summary_json", "summary.json"),
            ("summary_csv", "summary.csv"),
        ]
    }
    rows = [
        {"method": m, "image": name, **result.per_image[m][i], "fuse_ms": result.fuse_ms[m][i]}
        for m in result.methods
        for i, name in enumerate(result.images)
    ]
    columns = ["method", "image", *SCORE_NAMES, "fuse_ms"]
    with open(paths["per_image_csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    paths["per_image_json"].write_text(json.dumps(_json_safe(rows), indent=1) + "\n")

    means = result.means()
    paths["summary_json"].write_text(json.dumps(_json_safe(means), indent=2) + "\n")
    with open(paths["summary_csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", *SCORE_NAMES, "fuse_ms", "images", "variant"])
        for m in result.methods:
            writer.writerow(
                [
                    m,
                    *(means[m][k] for k in SCORE_NAMES),
                    float(np.mean(result.fuse_ms[m])),
                    len(result.images),
                    result.variant,
                ]
            )
    if result.detection:
        paths["detection_json"] = out_dir / "detection.json"
        paths["detection_json"].write_text(json.dumps(_json_safe(detection_tables(result)), indent=2) + "\n")
    return paths
