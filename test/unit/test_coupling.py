"""Semantic coupling (training/coupling.py): the frozen shipped detector's loss on the student's
fused image trains the student only, on the pipeline's colour path."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.errors import ConfigError
from ivif_ros.training.config import load_config
from ivif_ros.training.coupling import DetectorCoupling, fused_rgb, load_frames
from ivif_ros.training.loop import train

torch.set_num_threads(1)
SPEC = {"weights": "detector", "weight": 0.3, "size": [64, 64], "batch_size": 2, "data": {"root": "."}}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """3 colour pairs of 64x96 with one car box drawn on the fused image."""
    root = tmp_path_factory.mktemp("coupling")
    rng = np.random.default_rng(1)
    for sub in ("ir", "vi", "labels_det/ir", "labels_det/vi", "labels_det/fusion"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        ir = np.full((64, 96), 40, np.uint8)
        ir[20:44, 10:60] = 200
        vis = cv2.GaussianBlur(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), (7, 7), 2)
        cv2.imwrite(str(root / "ir" / f"{i}.png"), ir)
        cv2.imwrite(str(root / "vi" / f"{i}.png"), vis)
        for labels in ("ir", "vi", "fusion"):
            (root / "labels_det" / labels / f"{i}.txt").write_text("2 0.364583 0.5 0.520833 0.375\n")
    return root


def test_the_fused_rgb_is_the_pipelines_colour_path(labelled):
    """Fused luma + visible chroma as core.postprocess.restore_rgb8 builds the published image:
    within rounding (the pipeline rounds to 8 bits, the coupling stays differentiable) wherever
    no channel saturates; there the pipeline keeps the luma and the coupling clips the channel."""
    from ivif_ros.core.postprocess import restore_rgb8
    from ivif_ros.core.preprocess import preprocess
    from ivif_ros.datasets.paired import PairedDataset

    pair = next(iter(PairedDataset(labelled)))
    frame = load_frames(labelled, None)[0]
    y = np.random.default_rng(2).random((64, 96), dtype=np.float32)
    inputs = preprocess(pair.ir, pair.vis)
    published = restore_rgb8(y, inputs.cb, inputs.cr).astype(np.float32)
    ours = fused_rgb(torch.from_numpy(y)[None, None], torch.from_numpy(frame.chroma)[None])[0]
    diff = np.abs(ours.permute(1, 2, 0).numpy() * 255 - published)
    inside = ((published > 0) & (published < 255)).all(axis=2)
    assert inside.mean() > 0.5 and diff[inside].max() < 1.5, (inside.mean(), diff[inside].max())
    assert diff.mean() < 0.6
    assert frame.boxes.shape == (1, 5) and frame.boxes[0].tolist() == pytest.approx(
        [2, 0.364583, 0.5, 0.520833, 0.375], abs=1e-5
    )


def test_the_detector_is_frozen_and_only_the_student_learns(labelled):
    from ivif_ros.models import build_student

    coupling = DetectorCoupling(SPEC, labelled, seed=0, device=torch.device("cpu"))
    detector = coupling.detector
    before = {k: v.clone() for k, v in detector.state_dict().items()}  # BN running statistics included
    student = build_student({"num_seg": 4}).train()
    loss = coupling.loss(student, step=0)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert not detector.training and all(p.grad is None and not p.requires_grad for p in detector.parameters())
    assert all(torch.equal(v, before[k]) for k, v in detector.state_dict().items())
    assert student.fusion_maps.weight.grad.abs().sum() > 0  # the detector's loss reaches the fusion path
    a, b = coupling.batch(5), coupling.batch(5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))  # frames and flips are a function of the step


def test_training_with_coupling_logs_the_detector_term_and_records_it(tmp_path, labelled):
    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(
        json.dumps(
            {
                "data_root": str(labelled),
                "data": [{"root": "."}],
                "crop": 32,
                "batch_size": 2,
                "steps": 2,
                "warmup_steps": 1,
                "log_every": 1,
                "detector_coupling": {k: v for k, v in SPEC.items() if k != "batch_size"},
            }
        )
    )
    cfg = load_config(cfg_path)
    assert cfg.detector_coupling["batch_size"] == 2 and cfg.weight("detector") == 0.3
    out = train(cfg, "student", tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["detector"]) and r["detector"] > 0 for r in log)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["training"]["config"]["detector_coupling"]["weight"] == 0.3
    with pytest.raises(ConfigError, match="not a teacher"):
        train(cfg, "teacher", tmp_path / "teacher")


@pytest.mark.parametrize(
    "change,message",
    [
        ({"weight": 0}, "weight must be a positive number"),
        ({"size": [480, 350]}, "multiples of 32"),
        ({"data": None}, "must name the labelled frames"),
        ({"lambda": 1.0}, "unknown detector_coupling keys"),
    ],
)
def test_a_bad_coupling_config_is_refused_by_key(tmp_path, labelled, change, message):
    spec = {k: v for k, v in {**SPEC, **change}.items() if v is not None}
    (tmp_path / "t.yaml").write_text(
        json.dumps({"data_root": str(labelled), "data": [{"root": "."}], "detector_coupling": spec})
    )
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "t.yaml")
