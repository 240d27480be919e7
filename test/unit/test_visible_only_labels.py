"""Boxes only the visible annotation holds: which they are, and crops centred on them."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.datasets.paired import Boxes, merge_boxes, visible_only_boxes
from ivif_ros.errors import ConfigError
from ivif_ros.training.data import CropDataset, load_samples


def boxes(*rows) -> Boxes:
    """Boxes from (cls, x1, y1, x2, y2) rows."""
    a = np.array(rows, np.float32).reshape(-1, 5)
    return Boxes(a[:, 1:], a[:, 0].astype(np.int64))


def test_visible_only_marks_the_kept_visible_boxes_no_same_class_ir_box_touches():
    ir = boxes((0, 0, 0, 10, 10), (2, 50, 50, 70, 70))
    vis = boxes(
        (0, 0, 0, 10, 10),  # the same person: dropped by the union
        (0, 5, 0, 15, 10),  # IoU 1/3 with the IR person: kept, but IR-seen
        (1, 0, 0, 10, 10),  # a bicycle where IR boxed a person: no same-class IR box
        (2, 100, 100, 120, 120),
    )  # a car far from the IR car
    union = merge_boxes(ir, vis)
    flags = visible_only_boxes(ir, vis)
    assert len(flags) == len(union) == 5
    assert flags.tolist() == [False, False, False, True, True]
    np.testing.assert_array_equal(union.xyxy[flags], vis.xyxy[2:])  # the same order as the union
    assert visible_only_boxes(Boxes(), vis).all()  # nothing boxed in IR: all visible-only
    assert not visible_only_boxes(ir, Boxes()).any()  # nothing boxed in visible
    assert len(visible_only_boxes(Boxes(), Boxes())) == 0


@pytest.fixture(scope="module")
def pairs_with_a_visible_only_car(tmp_path_factory) -> Path:
    """3 pairs of 96x128: a person boxed in IR in each; pair 002 also has a car boxed only in
    the visible labels, in the bottom-right corner."""
    root = tmp_path_factory.mktemp("visonly")
    rng = np.random.default_rng(1)
    for sub in ("ir", "vi", "labels_det/ir", "labels_det/vi"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), np.full((96, 128), 40, np.uint8))
        cv2.imwrite(str(root / "vi" / f"{i:03d}.png"), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
        (root / "labels_det/ir" / f"{i:03d}.txt").write_text("0 0.125 0.2 0.1 0.2\n")  # person near (16, 19)
        (root / "labels_det/vi" / f"{i:03d}.txt").write_text(
            "2 0.875 0.8 0.15 0.2\n" if i == 2 else ""
        )  # car near (112, 77)
    return root


def test_visible_only_crops_centre_on_those_boxes_and_leave_other_crops_alone(pairs_with_a_visible_only_car):
    samples = load_samples([{"root": str(pairs_with_a_visible_only_car)}])
    assert [s.visible_only.tolist() for s in samples] == [[False], [False], [False, True]]
    plain = CropDataset(samples, crop=32, num_det=3, length=300, seed=0, object_crop_prob=0.5)
    focused = CropDataset(
        samples, crop=32, num_det=3, length=300, seed=0, object_crop_prob=0.5, visible_only_crop_prob=0.3
    )
    on_car = changed = 0
    for i in range(300):
        a, b = plain[i], focused[i]
        if all(torch.equal(a[k], b[k]) for k in a):
            continue
        changed += 1
        on_car += int(b["heatmap"][2].max() == 1.0)  # the car is a whole detection target
    assert changed == on_car  # every crop that differs holds the car's centre
    assert 60 <= on_car <= 120  # binomial(300, 0.3) = 90 +- 8; a few draws repeat the plain crop
    twin = load_samples([{"root": str(pairs_with_a_visible_only_car)}], input_mode="ir")
    assert twin[2].visible_only.tolist() == [False, True]  # the IR-only twin trains on the same crops
    with pytest.raises(ConfigError, match="visible_only_crop_prob"):
        CropDataset(samples, crop=32, num_det=3, length=1, visible_only_crop_prob=1.2)
    no_such = [s for s in samples if not s.visible_only.any()]
    with pytest.raises(ConfigError, match="no training image has a box that only the visible"):
        CropDataset(no_such, crop=32, num_det=3, length=1, visible_only_crop_prob=0.1)
