"""COCO-style mAP on hand-computed cases."""

import json
import math

import numpy as np
import pytest

from ivif_ros.errors import InputError
from ivif_ros.metrics.detection import evaluate_detections, match_detections

GT_A = [0.0, 0.0, 10.0, 10.0]
GT_B = [20.0, 20.0, 40.0, 40.0]
FAR = [100.0, 100.0, 110.0, 110.0]


def pred(boxes, scores, cls):
    return np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(cls, int)


def gt(boxes, cls):
    return np.array(boxes, float).reshape(-1, 4), np.array(cls, int)


def test_perfect_predictions_score_one():
    gts = [gt([GT_A, GT_B], [0, 1]), gt([GT_B], [2])]
    preds = [pred([GT_A, GT_B], [0.9, 0.8], [0, 1]), pred([GT_B], [0.7], [2])]
    r = evaluate_detections(preds, gts, 3, ["person", "bicycle", "car"])
    assert r["map50"] == 1.0 and r["map50_95"] == 1.0
    assert r["per_class"]["car"] == {"ap50": 1.0, "ap50_95": 1.0, "num_gt": 1, "num_pred": 1}


def test_false_positive_ranked_first_halves_precision():
    # ranked: FP (0.9), TP (0.8): precision at recall 1 is 1/2, and the envelope makes it 1/2 everywhere
    r = evaluate_detections([pred([FAR, GT_A], [0.9, 0.8], [0, 0])], [gt([GT_A], [0])], 1)
    assert r["map50"] == pytest.approx(0.5)


def test_false_positive_ranked_last_costs_nothing():
    r = evaluate_detections([pred([FAR, GT_A], [0.1, 0.8], [0, 0])], [gt([GT_A], [0])], 1)
    assert r["map50"] == pytest.approx(1.0)


def test_half_recall_gives_51_of_101_points():
    r = evaluate_detections([pred([GT_A], [0.9], [0])], [gt([GT_A, GT_B], [0, 0])], 1)
    assert r["map50"] == pytest.approx(51 / 101)


def test_iou_072_counts_at_five_of_ten_thresholds():
    loose = [0.0, 0.0, 10.0, 7.2]  # IoU 0.72 with GT_A: a hit at 0.50, 0.55, 0.60, 0.65, 0.70
    r = evaluate_detections([pred([loose], [0.9], [0])], [gt([GT_A], [0])], 1)
    assert r["map50"] == pytest.approx(1.0)
    assert r["map50_95"] == pytest.approx(0.5)


def test_duplicate_detection_is_a_false_positive():
    tp = match_detections(np.array([[1.0], [1.0]]))
    assert tp[:, 0].all() and not tp[:, 1].any()


def test_greedy_matching_takes_the_best_free_box():
    # detection 0 overlaps both boxes, best with box 1; detection 1 only overlaps box 1
    iou = np.array([[0.6, 0.9], [0.0, 0.8]])
    tp = match_detections(iou, np.array([0.5]))
    assert tp.tolist() == [[True, False]]


def test_wrong_class_is_a_miss_and_a_false_positive():
    r = evaluate_detections([pred([GT_A], [0.9], [1])], [gt([GT_A], [0])], 2)
    assert r["per_class"]["0"]["ap50"] == 0.0
    assert math.isnan(r["per_class"]["1"]["ap50"])  # no ground truth: left out of the mean
    assert r["map50"] == 0.0


def test_empty_cases():
    nothing = evaluate_detections([pred([], [], [])], [gt([], [])], 2)
    assert math.isnan(nothing["map50"]) and math.isnan(nothing["map50_95"])
    missed = evaluate_detections([pred([], [], [])], [gt([GT_A], [0])], 1)
    assert missed["map50"] == 0.0
    assert evaluate_detections([], [], 1)["per_class"]["0"]["num_gt"] == 0


def test_ranking_is_across_images():
    # image 0: a FP at 0.95; image 1: a TP at 0.9 -> same as FP-first in one image
    preds = [pred([FAR], [0.95], [0]), pred([GT_A], [0.9], [0])]
    gts = [gt([], []), gt([GT_A], [0])]
    assert evaluate_detections(preds, gts, 1)["map50"] == pytest.approx(0.5)


def test_order_of_detections_within_an_image_does_not_matter():
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(0, 50, (12, 2)), rng.uniform(55, 90, (12, 2))], 1)
    scores, cls = rng.uniform(size=12), rng.integers(0, 2, 12)
    gts = [gt(boxes[::2] + rng.normal(0, 3, (6, 4)), cls[::2])]
    perm = rng.permutation(12)
    a = evaluate_detections([pred(boxes, scores, cls)], gts, 2)
    b = evaluate_detections([pred(boxes[perm], scores[perm], cls[perm])], gts, 2)
    assert json.dumps(a) == json.dumps(b)  # NaN-aware equality of the whole result
    assert 0 < a["map50_95"] < 1


def test_bad_inputs_are_explained():
    with pytest.raises(InputError, match="outside 0..1"):
        evaluate_detections([pred([GT_A], [0.5], [3])], [gt([], [])], 2)
    with pytest.raises(InputError, match="one of each per image"):
        evaluate_detections([], [gt([], [])], 1)
