"""The oracle of experiments/visible_headroom.py, which bounds what the boxes only the visible
annotation holds could add to detection, and its count of found boxes by origin."""

import numpy as np
import pytest

from ivif_ros.metrics.detection import evaluate_detections
from visible_headroom import ORIGINS, found_by_origin, with_oracle


def test_the_oracle_adds_exactly_the_chosen_boxes_as_top_ranked_hits():
    """One image, two person boxes from IR and one visible-only car: a student that finds one
    person (score 0.9) plus a false car (0.8) has person AP 0.5 and car AP 0; the oracle of
    visible-only boxes lifts car AP to 1 and leaves person AP alone."""
    gts = [(np.array([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 70, 70]], float), np.array([0, 0, 2]))]
    origins = [np.array([ORIGINS.index("ir"), ORIGINS.index("ir"), ORIGINS.index("vis_only")])]
    preds = [(np.array([[0, 0, 10, 10], [80, 80, 90, 90]], float), np.array([0.9, 0.8]), np.array([0, 2]))]
    names = ["person", "bicycle", "car"]
    base = evaluate_detections(preds, gts, 3, names)["per_class"]
    oracle = evaluate_detections(with_oracle(preds, gts, origins, ("vis_only",)), gts, 3, names)["per_class"]
    assert base["person"]["ap50"] == pytest.approx(0.5, abs=0.01) and base["car"]["ap50"] == 0.0
    assert oracle["person"]["ap50"] == base["person"]["ap50"]
    assert oracle["car"]["ap50"] == pytest.approx(1.0)
    assert oracle["car"]["num_pred"] == 2  # the false car stays, ranked below the oracle's hit


def test_found_by_origin_matches_one_to_one_above_the_score():
    gts = [(np.array([[0, 0, 10, 10], [50, 50, 70, 70]], float), np.array([0, 2]))]
    origins = [np.array([ORIGINS.index("ir"), ORIGINS.index("vis_only")])]
    preds = [
        (
            np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 70, 70], [50, 50, 70, 70]], float),
            np.array([0.9, 0.8, 0.2, 0.35]),
            np.array([0, 0, 2, 1]),
        )
    ]  # a duplicate, a low car, a bicycle
    assert found_by_origin(preds, gts, origins, score=0.3) == {"ir": [1, 1], "vis_near": [0, 0], "vis_only": [0, 1]}
    assert found_by_origin(preds, gts, origins, score=0.1)["vis_only"] == [1, 1]
