"""COCO-style detection AP from YOLO-format ground truth (no pycocotools needed).

Definitions (those of ``pycocotools.COCOeval`` for bounding boxes, without crowd/area ranges):

- IoU thresholds 0.50:0.05:0.95. At each threshold, detections of one class in one image are
  taken in descending score order (at most ``max_detections``, COCO's 100) and each is matched
  greedily to the unmatched ground-truth box of that class with the highest IoU >= threshold;
  a matched detection is a true positive, any other a false positive (duplicates included).
- Per class, detections of all images are ranked by score; precision is made monotone
  (the running maximum from the right) and read at the 101 recall points 0, 0.01, ..., 1
  (0 where that recall is never reached). AP is the mean of those 101 values.
- ``map50`` is the mean AP at IoU 0.5 over classes that have ground truth; ``map50_95`` the mean
  over the ten thresholds as well. A class without ground truth has AP ``nan`` and is left out,
  as in COCO; if no class has ground truth the mAPs are ``nan``.

Boxes are ``xyxy`` in pixels. ``ivif_ros.datasets.paired.Boxes`` gives them from YOLO labels.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ivif_ros.datasets.paired import box_iou
from ivif_ros.errors import InputError

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)

Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (N,4), scores (N,), cls (N,)
GroundTruth = tuple[np.ndarray, np.ndarray]  # xyxy (M,4), cls (M,)


def match_detections(iou: np.ndarray, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """Greedy COCO matching for one image and class.

    ``iou`` is (D, G) with detections already in descending score order. Returns a (T, D)
    boolean array: detection d is a true positive at threshold t.
    """
    n_det, n_gt = iou.shape
    tp = np.zeros((len(thresholds), n_det), bool)
    if n_det == 0 or n_gt == 0:
        return tp
    matched = np.zeros((len(thresholds), n_gt), bool)
    rows = np.arange(len(thresholds))
    for d in range(n_det):  # sequential by nature: a match removes a ground-truth box
        candidates = (iou[d][None, :] >= thresholds[:, None]) & ~matched
        best = np.where(candidates, iou[d][None, :], -1.0).argmax(1)
        hit = candidates[rows, best]
        tp[hit, d] = True
        matched[rows[hit], best[hit]] = True
    return tp


def average_precision(tp: np.ndarray, scores: np.ndarray, num_gt: int) -> np.ndarray:
    """101-point interpolated AP per threshold from (T, D) true-positive flags of one class."""
    if num_gt == 0:
        return np.full(tp.shape[0], math.nan)
    if tp.shape[1] == 0:
        return np.zeros(tp.shape[0])
    order = np.argsort(-scores, kind="mergesort")
    tp = tp[:, order]
    tp_cum = np.cumsum(tp, axis=1)
    fp_cum = np.cumsum(~tp, axis=1)
    recall = tp_cum / num_gt
    precision = tp_cum / (tp_cum + fp_cum)
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    ap = np.empty(tp.shape[0])
    for t in range(tp.shape[0]):
        idx = np.searchsorted(recall[t], RECALL_POINTS, side="left")
        reached = idx < recall.shape[1]
        ap[t] = np.where(reached, precision[t, np.minimum(idx, recall.shape[1] - 1)], 0.0).mean()
    return ap


def validate_detections(preds: Sequence[Prediction], gts: Sequence[GroundTruth], num_classes: int) -> None:
    """One prediction list per ground-truth list, and every class id within 0..num_classes-1."""
    if len(preds) != len(gts):
        raise InputError(f"{len(preds)} prediction lists for {len(gts)} ground-truth lists; give one of each per image")
    for i, ((_, _, p_cls), (_, g_cls)) in enumerate(zip(preds, gts)):
        _check_classes(np.asarray(p_cls).astype(int), num_classes, "prediction", i)
        _check_classes(np.asarray(g_cls).astype(int), num_classes, "ground truth", i)


def _check_classes(cls: np.ndarray, num_classes: int, what: str, image: int) -> None:
    if len(cls) and (cls.min() < 0 or cls.max() >= num_classes):
        raise InputError(
            f"{what} of image {image} has class ids {sorted(set(cls.tolist()))} outside 0..{num_classes - 1}; "
            "check the label files against the class list"
        )


def evaluate_detections(
    preds: Sequence[Prediction],
    gts: Sequence[GroundTruth],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    max_detections: int = 100,
) -> dict:
    """COCO mAP@0.5 and mAP@0.5:0.95 over a list of images.

    ``preds[i] = (xyxy (N,4), scores (N,), cls (N,))`` and ``gts[i] = (xyxy (M,4), cls (M,))``
    for image i. Returns ``{"map50", "map50_95", "per_class": {name: {"ap50", "ap50_95",
    "num_gt", "num_pred"}}, "iou_thresholds"}``.
    """
    validate_detections(preds, gts, num_classes)
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise InputError(f"{len(names)} class names for num_classes={num_classes}")

    tps = [[] for _ in range(num_classes)]
    scores = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, int)
    for i, ((p_xyxy, p_scores, p_cls), (g_xyxy, g_cls)) in enumerate(zip(preds, gts)):
        p_xyxy, p_scores, p_cls = (
            np.asarray(p_xyxy, np.float64).reshape(-1, 4),
            np.asarray(p_scores, np.float64),
            np.asarray(p_cls).astype(int),
        )
        g_xyxy, g_cls = np.asarray(g_xyxy, np.float64).reshape(-1, 4), np.asarray(g_cls).astype(int)
        num_gt += np.bincount(g_cls, minlength=num_classes)
        for c in np.unique(p_cls):
            det = np.flatnonzero(p_cls == c)
            det = det[np.argsort(-p_scores[det], kind="mergesort")][:max_detections]
            gt = g_cls == c
            tps[c].append(match_detections(box_iou(p_xyxy[det], g_xyxy[gt]).reshape(len(det), int(gt.sum()))))
            scores[c].append(p_scores[det])

    ap = np.empty((len(IOU_THRESHOLDS), num_classes))
    per_class = {}
    for c, name in enumerate(names):
        tp = np.concatenate(tps[c], axis=1) if tps[c] else np.zeros((len(IOU_THRESHOLDS), 0), bool)
        sc = np.concatenate(scores[c]) if scores[c] else np.zeros(0)
        ap[:, c] = average_precision(tp, sc, int(num_gt[c]))
        per_class[name] = {
            "ap50": float(ap[0, c]),
            "ap50_95": float(ap[:, c].mean()),
            "num_gt": int(num_gt[c]),
            "num_pred": int(len(sc)),
        }
    has_gt = num_gt > 0
    return {
        "map50": float(ap[0, has_gt].mean()) if has_gt.any() else math.nan,
        "map50_95": float(ap[:, has_gt].mean()) if has_gt.any() else math.nan,
        "per_class": per_class,
        "iou_thresholds": IOU_THRESHOLDS.round(2).tolist(),
    }
