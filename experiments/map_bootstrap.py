"""Paired bootstrap of a mAP@0.5 difference between two groups of detectors on the same images.

Why: on ~100 images a mAP@0.5 gap of 0.01 between two students is often noise (one more
pedestrian found moves a class's AP). Resampling the *images* with replacement, and scoring
every detector on the same resample, gives the spread of the gap that another draw of images
from the same scenes would show, with the per-image correlation between the detectors kept.

AP per class is the COCO definition of ``ivif_ros.metrics.detection`` at IoU 0.5: each image's
detections are matched once, then a resample is a vector of per-image counts, and an image drawn
k times weighs k in the cumulative true/false-positive sums and in the ground-truth count. With
all counts 1 this is ``evaluate_detections(...)["map50"]`` exactly (tested); copies of an image
drawn twice sit next to each other in the ranking, as they would if the lists were duplicated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ivif_ros.datasets.paired import box_iou
from ivif_ros.errors import InputError
from mean_bootstrap import bootstrap_summary
from ivif_ros.metrics.detection import RECALL_POINTS, GroundTruth, Prediction, match_detections, validate_detections


@dataclass
class MatchedDetections:
    """One detector's detections on a list of images, matched at IoU 0.5, per class."""

    tp: list[np.ndarray]  # per class: bool (D,), ranked by descending score over all images
    image: list[np.ndarray]  # per class: int (D,), the image each ranked detection came from
    gt_per_image: np.ndarray  # (images, classes) ground-truth boxes


def match_at_50(
    preds: Sequence[Prediction], gts: Sequence[GroundTruth], num_classes: int, max_detections: int = 100
) -> MatchedDetections:
    validate_detections(preds, gts, num_classes)  # the checks and messages of evaluate_detections
    tps, scores, images = ([[] for _ in range(num_classes)] for _ in range(3))
    gt_per_image = np.zeros((len(gts), num_classes), int)
    for i, ((p_xyxy, p_scores, p_cls), (g_xyxy, g_cls)) in enumerate(zip(preds, gts)):
        p_xyxy, p_scores = np.asarray(p_xyxy, np.float64).reshape(-1, 4), np.asarray(p_scores, np.float64)
        p_cls, g_cls = np.asarray(p_cls).astype(int), np.asarray(g_cls).astype(int)
        g_xyxy = np.asarray(g_xyxy, np.float64).reshape(-1, 4)
        gt_per_image[i] = np.bincount(g_cls, minlength=num_classes)
        for c in np.unique(p_cls):
            det = np.flatnonzero(p_cls == c)
            det = det[np.argsort(-p_scores[det], kind="mergesort")][:max_detections]
            gt = g_cls == c
            iou = box_iou(p_xyxy[det], g_xyxy[gt]).reshape(len(det), int(gt.sum()))
            tps[c].append(match_detections(iou, np.array([0.5]))[0])
            scores[c].append(p_scores[det])
            images[c].append(np.full(len(det), i))
    tp_ranked, image_ranked = [], []
    for c in range(num_classes):
        tp = np.concatenate(tps[c]) if tps[c] else np.zeros(0, bool)
        sc = np.concatenate(scores[c]) if scores[c] else np.zeros(0)
        im = np.concatenate(images[c]) if images[c] else np.zeros(0, int)
        order = np.argsort(-sc, kind="mergesort")  # the ranking evaluate_detections uses
        tp_ranked.append(tp[order])
        image_ranked.append(im[order])
    return MatchedDetections(tp_ranked, image_ranked, gt_per_image)


def weighted_map50(m: MatchedDetections, counts: np.ndarray) -> float:
    """mAP@0.5 with image i counted ``counts[i]`` times (classes without ground truth left out)."""
    aps = []
    for c, (tp, image) in enumerate(zip(m.tp, m.image)):
        num_gt = float(counts @ m.gt_per_image[:, c])
        if num_gt == 0:
            continue
        if len(tp) == 0:
            aps.append(0.0)
            continue
        w = counts[image].astype(np.float64)
        tp_cum = np.cumsum(w * tp)
        fp_cum = np.cumsum(w * ~tp)
        seen = tp_cum + fp_cum
        precision = np.divide(tp_cum, seen, out=np.zeros_like(tp_cum), where=seen > 0)
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        recall = tp_cum / num_gt
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        reached = idx < len(recall)
        aps.append(float(np.where(reached, precision[np.minimum(idx, len(recall) - 1)], 0.0).mean()))
    return float(np.mean(aps)) if aps else math.nan


def paired_map_bootstrap(
    group_a: Sequence[MatchedDetections], group_b: Sequence[MatchedDetections], resamples: int = 2000, seed: int = 0
) -> dict:
    """Bootstrap of mean mAP@0.5 of ``group_a`` minus that of ``group_b`` (e.g. two seeds each).

    Returns ``{"observed", "ci95": [lo, hi], "p_a_better", "resamples", "images"}``:
    ``observed`` is the gap on the images as given, ``ci95`` the 2.5 and 97.5 percentiles of the
    resampled gaps, ``p_a_better`` the fraction of resamples where group A is ahead.
    """
    models = [*group_a, *group_b]
    if not group_a or not group_b:
        raise InputError("paired_map_bootstrap needs at least one detector in each group")
    n = len(models[0].gt_per_image)
    if any(len(m.gt_per_image) != n for m in models):
        raise InputError("every detector must be scored on the same images; the image counts differ")
    if n == 0 or resamples < 1:
        raise InputError(f"need images and resamples >= 1 (got {n} images, {resamples} resamples)")

    def gap(counts):
        maps = [weighted_map50(m, counts) for m in models]
        return float(np.mean(maps[: len(group_a)]) - np.mean(maps[len(group_a) :]))

    rng = np.random.default_rng(seed)
    gaps = np.array([gap(np.bincount(rng.integers(0, n, n), minlength=n)) for _ in range(resamples)])
    return bootstrap_summary(gap(np.ones(n, int)), gaps, n)
