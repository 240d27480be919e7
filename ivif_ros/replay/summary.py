"""Per-frame records of a replay and the ``summary.json`` built from them.

``summary.json`` schema (``schema: "ivif_ros.replay/1"``), every key always present::

    bag, mode ("offline" | "live"), rate, graph_input_qos (live), topics {ir, vis, ...},
    partial, errors [str]
    counts          MessageLedger.counts(): inputs, inputs_by_topic, paired_messages,
                    dropped_messages, message_drops_by_reason, pairs, fused,
                    dropped_pairs, pair_drops_by_reason, unaccounted_*
    metrics         {mean: {EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM, contrast}, frames_scored,
                    every}; contrast is ``ivif_ros.metrics.contrast`` (fused local contrast over
                    the visible image's in its well-exposed regions, below 1 = haze)
    detection       {mAP50, mAP50_95, frames, ground_truth_boxes, detections, per_class,
                    ground_truth ("fusion labels" | "bag ground truth"), union} or null
                    (null when the bag has no ground-truth boxes); ``union`` is the same
                    scored against the IR/visible union boxes when the bag has them
                    (``ivif make-bag`` with fusion labels), else null
    latency_ms      {<stage>: {p50, p90, p99, max, mean, n}} for each pipeline stage, plus
                    "end_to_end" in live mode (receive wall time - input publish wall time)
    throughput_fps  fused frames / wall time of the replay
    wall_time_s
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivif_ros.metrics.contrast import CONTRAST
from ivif_ros.metrics.fusion import METRIC_NAMES as FUSION_METRIC_NAMES

SCHEMA = "ivif_ros.replay/1"
#: Per-frame scores: the nine fusion metrics and the contrast retention against the visible image.
METRIC_NAMES = (*FUSION_METRIC_NAMES, CONTRAST)
PERCENTILES = (50, 90, 99)
END_TO_END = "end_to_end"


@dataclass
class FrameRecord:
    """One fused frame of the replay."""

    index: int  # position among fused frames
    stamp_ns: int  # header stamp of the fused frame
    metrics: dict[str, float] = field(default_factory=dict)  # empty when not scored (--metrics-every)
    stage_ms: dict[str, float] = field(default_factory=dict)  # pipeline stages, incl. "total"
    end_to_end_ms: float | None = None  # live mode only
    detections: int = 0
    ground_truth: int | None = None  # None: the bag has no ground truth for this frame
    name: str = ""  # dataset pair name when the bag carries one (``ivif make-bag``)


def latency_stats(values) -> dict:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
    if v.size == 0:
        return {**{f"p{p}": None for p in PERCENTILES}, "max": None, "mean": None, "n": 0}
    pct = np.percentile(v, PERCENTILES)
    return {
        **{f"p{p}": float(x) for p, x in zip(PERCENTILES, pct)},
        "max": float(v.max()),
        "mean": float(v.mean()),
        "n": int(v.size),
    }


def latency_table(frames: list[FrameRecord]) -> dict[str, dict]:
    stages = list(dict.fromkeys(s for f in frames for s in f.stage_ms))  # pipeline order, as recorded
    table = {s: latency_stats(f.stage_ms.get(s) for f in frames) for s in stages}
    if any(f.end_to_end_ms is not None for f in frames):
        table[END_TO_END] = latency_stats(f.end_to_end_ms for f in frames)
    return table


def mean_metrics(frames: list[FrameRecord]) -> dict[str, float | None]:
    """Mean of each metric over the scored frames; NaN scores (undefined metric) are skipped."""
    out = {}
    for name in METRIC_NAMES:
        v = np.asarray([f.metrics[name] for f in frames if name in f.metrics], np.float64)
        v = v[np.isfinite(v)]
        out[name] = float(v.mean()) if v.size else None
    return out


def build_summary(
    *,
    bag: str,
    mode: str,
    rate: float | None,
    graph_input_qos: str | None,
    topics: dict,
    counts: dict,
    frames: list[FrameRecord],
    metrics_every: int,
    detection: dict | None,
    wall_time_s: float,
    errors: list[str],
) -> dict:
    scored = sum(bool(f.metrics) for f in frames)
    return {
        "schema": SCHEMA,
        "bag": bag,
        "mode": mode,
        "rate": rate,
        "graph_input_qos": graph_input_qos,
        "topics": topics,
        "partial": bool(errors),
        "errors": errors,
        "counts": counts,
        "metrics": {"mean": mean_metrics(frames), "frames_scored": scored, "every": metrics_every},
        "detection": detection,
        "latency_ms": latency_table(frames),
        "throughput_fps": (counts["fused"] / wall_time_s) if wall_time_s > 0 else None,
        "wall_time_s": wall_time_s,
    }


def write_json(path: Path, obj) -> None:
    """Write ``obj`` atomically: readers see the previous file or the whole new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
