"""labels_det/fusion is the default detection ground truth (eval, make-bag, replay), with the
IR/visible union kept as a second column."""

import json

import cv2
import numpy as np
import pytest

from ivif_ros.bag.make_bag import make_bag, union_topic_of
from ivif_ros.bag.reader import BagReader
from ivif_ros.core.color import rgb_to_y_u8
from ivif_ros.core.postprocess import Detections
from ivif_ros.datasets.paired import PairedDataset
from ivif_ros.metrics.dataset_eval import evaluate, write_tables
from ivif_ros.replay.evaluate import detection_summary
from ivif_ros.replay.inputs import read_inputs

W, H = 64, 48
NAMES = ["00001D", "00002N", "00003D"]
# IR holds a person, the visible image a car; the fusion annotators drew the person only,
# slightly larger, and a bicycle neither camera's annotation has.
IR_LINE = "0 0.50 0.50 0.20 0.40\n"
VI_LINE = "2 0.20 0.25 0.20 0.20\n"
FUSION_LINES = "0 0.50 0.50 0.24 0.46\n1 0.80 0.75 0.20 0.30\n"


def write_dataset(root, fusion: bool):
    subs = ["ir", "vi", "labels_det/ir", "labels_det/vi"] + (["labels_det/fusion"] if fusion else [])
    for sub in subs:
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name in NAMES:
        cv2.imwrite(str(root / "ir" / f"{name}.png"), rng.integers(0, 256, (H, W), dtype=np.uint8))
        cv2.imwrite(str(root / "vi" / f"{name}.png"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        (root / "labels_det/ir" / f"{name}.txt").write_text(IR_LINE)
        (root / "labels_det/vi" / f"{name}.txt").write_text(VI_LINE)
        if fusion:
            (root / "labels_det/fusion" / f"{name}.txt").write_text(FUSION_LINES)
    return root


@pytest.fixture
def with_fusion(tmp_path):
    return write_dataset(tmp_path / "fusion_labels", fusion=True)


@pytest.fixture
def without_fusion(tmp_path):
    return write_dataset(tmp_path / "camera_labels", fusion=False)


def test_pair_ground_truth_is_the_fusion_labels_else_the_union(with_fusion, without_fusion):
    pair = PairedDataset(with_fusion)[0]
    assert PairedDataset(with_fusion).has_fusion_boxes
    assert pair.ground_truth is pair.boxes_fusion
    assert pair.ground_truth.cls.tolist() == [0, 1]
    np.testing.assert_allclose(pair.ground_truth.xyxy[0], [W * 0.38, H * 0.27, W * 0.62, H * 0.73], atol=1e-4)
    assert sorted(pair.boxes.cls.tolist()) == [0, 2]  # the union is unchanged
    plain = PairedDataset(without_fusion)
    assert not plain.has_fusion_boxes and plain[0].boxes_fusion is None
    assert sorted(plain[0].ground_truth.cls.tolist()) == [0, 2]


class BoxesDetector:
    """Fuses with max and 'detects' exactly the boxes ``pick(pair)`` gives."""

    def __init__(self, dataset, pick):
        self.boxes = {p.ir.tobytes(): pick(p) for p in dataset}

    def __call__(self, ir, vis):
        return np.maximum(ir, rgb_to_y_u8(vis))

    def fuse_and_detect(self, ir, vis):
        b = self.boxes[ir.tobytes()]
        return self(ir, vis), Detections(b.xyxy, np.ones(len(b), np.float32), b.cls)


def test_eval_scores_fusion_labels_first_and_the_union_second(with_fusion, tmp_path):
    ds = PairedDataset(with_fusion)
    methods = {
        "finds_fusion_boxes": BoxesDetector(ds, lambda p: p.boxes_fusion),
        "finds_union_boxes": BoxesDetector(ds, lambda p: p.boxes),
    }
    result = evaluate(ds, methods, progress=False, sample_count=0)
    assert result.ground_truth == "fusion"
    assert result.detection["finds_fusion_boxes"]["map50"] == 1.0
    assert result.detection_union["finds_union_boxes"]["map50"] == 1.0
    # against the fusion labels the union-finder gets the person (IoU 0.72) but no bicycle
    assert result.detection["finds_union_boxes"]["per_class"]["person"]["ap50"] == 1.0
    assert result.detection["finds_union_boxes"]["per_class"]["bicycle"]["ap50"] == 0.0
    assert result.detection_union["finds_fusion_boxes"]["per_class"]["car"]["ap50"] == 0.0
    table = json.loads(write_tables(result, tmp_path)["detection_json"].read_text())
    assert table["ground_truth"] == "fusion"
    assert table["finds_fusion_boxes"]["map50"] == 1.0 and table["union"]["finds_union_boxes"]["map50"] == 1.0
    from ivif_ros.report.eval_report import write_eval_report

    report = write_eval_report(result, tmp_path / "report").read_text()
    assert "mAP@0.5 (fusion labels)" in report and "mAP@0.5 (IR∪VIS union)" in report


def test_eval_without_fusion_labels_keeps_the_union(without_fusion):
    ds = PairedDataset(without_fusion)
    result = evaluate(ds, {"oracle": BoxesDetector(ds, lambda p: p.boxes)}, progress=False, sample_count=0)
    assert result.ground_truth == "union" and result.detection_union == {}
    assert result.detection["oracle"]["map50"] == 1.0


def test_bag_carries_fusion_labels_and_the_union_and_replay_reads_both(with_fusion, tmp_path):
    make_bag(with_fusion, tmp_path / "bag", progress=False)
    with BagReader(tmp_path / "bag") as bag:
        assert bag.topics["/ground_truth/detections"].count == len(NAMES)
        assert bag.topics[union_topic_of("/ground_truth/detections")].count == len(NAMES)
    inputs = read_inputs(tmp_path / "bag", None, None, None)
    assert inputs.gt_topic == "/ground_truth/detections"  # the union topic is not mistaken for it
    assert inputs.union_topic == "/ground_truth/detections_union"
    ds = PairedDataset(with_fusion)
    truth = sorted(inputs.ground_truth.items())
    union = sorted(inputs.union_truth.items())
    for (_, gt), (_, un), pair in zip(truth, union, ds):
        np.testing.assert_allclose(gt.xyxy, pair.boxes_fusion.xyxy, atol=1e-3)
        assert gt.cls.tolist() == pair.boxes_fusion.cls.tolist()
        assert sorted(un.cls.tolist()) == sorted(pair.boxes.cls.tolist())
    # the replay's summary of a detector finding the fusion boxes: 1.0 on them, less on the union
    preds = [(g.xyxy, np.ones(len(g.cls), np.float32), g.cls) for _, g in truth]
    assert detection_summary(preds, [(g.xyxy, g.cls) for _, g in truth], inputs.class_names)["mAP50"] == 1.0
    assert detection_summary(preds, [(u.xyxy, u.cls) for _, u in union], inputs.class_names)["mAP50"] < 1.0


def test_bag_without_fusion_labels_has_no_union_topic(without_fusion, tmp_path):
    make_bag(without_fusion, tmp_path / "bag", progress=False)
    inputs = read_inputs(tmp_path / "bag", None, None, None)
    assert inputs.gt_topic == "/ground_truth/detections" and inputs.union_topic is None
    assert all(sorted(g.cls.tolist()) == [0, 2] for g in inputs.ground_truth.values())
