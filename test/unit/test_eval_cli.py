"""``ivif eval`` and ``ivif metrics`` end to end on a tiny synthetic paired dataset."""

import csv
import json
import re

import cv2
import numpy as np
import pytest

from ivif_ros.cli import main
from ivif_ros.core.baselines import BASELINES
from ivif_ros.core.color import rgb_to_y_u8
from ivif_ros.core.postprocess import Detections
from ivif_ros.datasets.paired import PairedDataset
from ivif_ros.metrics.contrast import contrast_retention
from ivif_ros.metrics.dataset_eval import SCORE_NAMES, LearnedMethod, evaluate, resolve_methods, write_tables
from ivif_ros.metrics.fusion import METRIC_NAMES, fusion_metrics
from metrics_images import natural_pair

NAMES = ["00001D", "00002N", "00003D"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """ir/ + vi/ PNGs (visible in colour) and YOLO labels with one person box per pair."""
    root = tmp_path_factory.mktemp("paired")
    for d in ("ir", "vi", "labels_det/ir", "labels_det/vi"):
        (root / d).mkdir(parents=True)
    for i, name in enumerate(NAMES):
        ir, vis = natural_pair(64, 96, seed=10 + i)
        tint = np.stack([vis, np.clip(vis.astype(int) + 20, 0, 255), vis], -1).astype(np.uint8)
        cv2.imwrite(str(root / "ir" / f"{name}.png"), ir)
        cv2.imwrite(str(root / "vi" / f"{name}.png"), tint[..., ::-1])
        (root / "labels_det/ir" / f"{name}.txt").write_text("0 0.5 0.5 0.25 0.5\n")
        (root / "labels_det/vi" / f"{name}.txt").write_text("")
    (root / "split.txt").write_text("\n".join(NAMES[:2]) + "\n")
    return root


def test_eval_writes_tables_report_and_plots(dataset_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(
        [
            "eval",
            "--data",
            str(dataset_dir),
            "--split",
            str(dataset_dir / "split.txt"),
            "--method",
            "max,gff",
            "--out",
            str(out),
            "--no-progress",
            "--samples",
            "2",
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == ["max", "gff"]
    assert all(list(v) == list(SCORE_NAMES) for v in summary.values())

    # the summary is the mean of the per-image scores of the actual fused images
    ds = PairedDataset(dataset_dir, dataset_dir / "split.txt")
    for method in ("max", "gff"):
        scores = []
        for p in ds:
            vis_y = rgb_to_y_u8(p.vis)
            fused = BASELINES[method](p.ir, vis_y)
            scores.append({**fusion_metrics(fused, p.ir, vis_y), "contrast": contrast_retention(fused, vis_y)})
        for k in SCORE_NAMES:
            assert summary[method][k] == pytest.approx(np.nanmean([s[k] for s in scores]), rel=1e-9), (method, k)

    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["image"]) for r in rows] == [(m, n) for m in ("max", "gff") for n in NAMES[:2]]
    assert len(json.loads((out / "per_image.json").read_text())) == 4

    report = (out / "report.md").read_text()
    assert "| max |" in report and "| gff |" in report
    assert "| contrast | fuse ms |" in report and "`contrast`: local (7x7)" in report
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert "metric_bars.png" in images and "metric_boxes.png" in images
    assert sum(i.startswith("sample_") for i in images) == 2
    assert all((out / i).stat().st_size > 1000 for i in images)
    assert "report:" in capsys.readouterr().out


def test_eval_matlab_variant_and_limit(dataset_dir, tmp_path):
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--data",
                str(dataset_dir),
                "--method",
                "mean",
                "--out",
                str(out),
                "--limit",
                "1",
                "--variant",
                "matlab",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())["mean"]
    assert summary["SSIM"] <= 1.0  # matlab averages the two SSIMs
    with open(out / "per_image.csv") as f:
        assert len(list(csv.DictReader(f))) == 1


@pytest.mark.parametrize(
    "method, message",
    [
        ("max,nope", "unknown fusion method 'nope'"),
        ("model:no_such_weights", "model:no_such_weights"),
    ],
)
def test_eval_explains_bad_methods(dataset_dir, tmp_path, capsys, method, message):
    rc = main(["eval", "--data", str(dataset_dir), "--method", method, "--out", str(tmp_path), "--no-progress"])
    assert rc == 2
    assert message in capsys.readouterr().err


class OracleDetector:
    """A learned-method stand-in that fuses with max and 'detects' the labelled boxes."""

    def __init__(self, dataset):
        self.boxes = {p.ir.tobytes(): p.boxes for p in dataset}

    def __call__(self, ir, vis):
        return np.maximum(ir, rgb_to_y_u8(vis))

    def fuse_and_detect(self, ir, vis):
        gt = self.boxes[ir.tobytes()]
        return self(ir, vis), Detections(gt.xyxy, np.ones(len(gt), np.float32), gt.cls)


def test_methods_that_detect_are_scored_for_map(dataset_dir, tmp_path):
    ds = PairedDataset(dataset_dir)
    result = evaluate(ds, {"oracle": OracleDetector(ds), "max": resolve_methods(["max"])["max"]}, progress=False)
    assert list(result.detection) == ["oracle"]
    det = result.detection["oracle"]
    assert det["map50"] == 1.0 and det["per_class"]["person"]["num_gt"] == len(NAMES)
    paths = write_tables(result, tmp_path)
    assert json.loads(paths["detection_json"].read_text())["oracle"]["map50_95"] == 1.0
    assert result.means()["oracle"] == result.means()["max"]


def test_learned_method_runs_a_real_pipeline(dataset_dir):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
    from ivif_ros.engines import EngineConfig
    from ivif_ros.models import build_student

    engine = EngineConfig(backend="torch", height=64, width=96, dynamic=True, min_size=(32, 32))
    method = LearnedMethod(FusionPipeline(PipelineConfig(engine=engine), model=build_student()))
    result = evaluate(PairedDataset(dataset_dir), {"student": method}, progress=False, sample_count=0)
    assert len(result.per_image["student"]) == len(NAMES)
    assert 0.0 <= result.detection["student"]["map50"] <= 1.0  # untrained: any value, but it is computed


def test_metrics_command_scores_one_triple(dataset_dir, tmp_path, capsys):
    ir_path, vis_path = dataset_dir / "ir" / "00001D.png", dataset_dir / "vi" / "00001D.png"
    ir = cv2.imread(str(ir_path), cv2.IMREAD_GRAYSCALE)
    vis_rgb = cv2.imread(str(vis_path))[..., ::-1]
    fused = np.maximum(ir, rgb_to_y_u8(vis_rgb))
    cv2.imwrite(str(tmp_path / "fused.png"), fused)
    assert (
        main(
            ["metrics", "--ir", str(ir_path), "--vis", str(vis_path), "--fused", str(tmp_path / "fused.png"), "--json"]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    expected = fusion_metrics(fused, ir, rgb_to_y_u8(vis_rgb))
    assert printed["variant"] == "cddfuse"
    for k in METRIC_NAMES:
        assert printed[k] == pytest.approx(expected[k])


def test_metrics_command_names_mismatched_files(dataset_dir, tmp_path, capsys):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((10, 10), np.uint8))
    rc = main(
        [
            "metrics",
            "--ir",
            str(dataset_dir / "ir" / "00001D.png"),
            "--vis",
            str(dataset_dir / "vi" / "00001D.png"),
            "--fused",
            str(small),
        ]
    )
    assert rc == 2
    assert "small.png is 10x10" in capsys.readouterr().err
