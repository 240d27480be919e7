"""``ivif train detector``: the COCO head cut to three classes, FastestDet's loss, a short
fine-tuning on a tiny synthetic set (the loss falls; a resumed run equals an uninterrupted
one), and config errors that name their field."""

import csv
import math

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ivif_ros.errors import ConfigError  # noqa: E402
from ivif_ros.training.detector_config import data_root, load_detector_config  # noqa: E402
from ivif_ros.training.detector_loss import assign, detector_loss, siou  # noqa: E402

NAMES = [f"{i:05d}D" for i in range(4)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """msrs/test with 4 pairs: a bright 'person' block and a wide 'car' block on a dark road."""
    root = tmp_path_factory.mktemp("det_data")
    test = root / "msrs" / "test"
    for sub in ("ir", "vi", "labels_det/fusion"):
        (test / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(NAMES):
        h, w = 96, 128
        ir = rng.integers(10, 40, (h, w), dtype=np.uint8)
        vis = rng.integers(20, 60, (h, w, 3), dtype=np.uint8)
        px, py = 20 + 15 * i, 30
        ir[py : py + 40, px : px + 14] = 230
        vis[py : py + 40, px : px + 14] = (200, 120, 90)
        cx, cy = 70, 60 + 5 * (i % 2)
        vis[cy : cy + 20, cx : cx + 44] = (40, 40, 220)
        ir[cy : cy + 20, cx : cx + 44] = 150
        cv2.imwrite(str(test / "ir" / f"{name}.png"), ir)
        cv2.imwrite(str(test / "vi" / f"{name}.png"), vis)
        lines = [
            f"0 {(px + 7) / w} {(py + 20) / h} {14 / w} {40 / h}",
            f"2 {(cx + 22) / w} {(cy + 10) / h} {44 / w} {20 / h}",
        ]
        (test / "labels_det/fusion" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("\n".join(NAMES) + "\n")
    return root


def write_config(path, **overrides):
    import yaml

    cfg = {
        "classes": ["person", "bicycle", "car"],
        "data": [{"root": "msrs/test", "split": "splits/train.txt"}],
        "input_mode": "visible",
        "input_size": [128, 96],
        "batch_size": 2,
        "epochs": 6,
        "lr": 0.01,
        "warmup_epochs": 0.5,
        "log_every": 1,
        "checkpoint_every": 2,
        "seed": 3,
    }
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_three_class_head_is_coco_renormalised_over_person_bicycle_car():
    from ivif_ros.models.fastestdet import activate
    from ivif_ros.training.detector_init import coco_detector
    from ivif_ros.weights import load_model

    coco, meta = load_model("detector_coco")
    model, _ = coco_detector(["person", "bicycle", "car"])
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        full = coco(x)
        cut = activate(model.eval().forward_logits(x))
    torch.testing.assert_close(cut[:, :5], full[:, :5])
    rows = [meta["detection_classes"].index(c) for c in ("person", "bicycle", "car")]
    kept = full[:, [5 + r for r in rows]]
    torch.testing.assert_close(cut[:, 5:], kept / kept.sum(1, keepdim=True), rtol=1e-4, atol=1e-6)
    with pytest.raises(ConfigError, match=r"\['lorry'\] are not classes"):
        coco_detector(["person", "lorry"])


def test_siou_and_target_assignment():
    box = torch.tensor([[3.3, 2.6, 2.0, 4.0]])
    assert siou(box, box).item() == pytest.approx(1.0, abs=1e-5)
    assert (
        siou(box + torch.tensor([[1.0, 0, 0, 0]]), box).item() < siou(box + torch.tensor([[0.2, 0, 0, 0]]), box).item()
    )
    # centre (3.3, 2.6) in cells: candidates (3,2), (4,2), (3,3), (4,3); a centre on the map's
    # last cell keeps only in-map candidates
    targets = torch.tensor([[0, 1, 3.3 / 8, 2.6 / 6, 0.25, 0.5], [1, 0, 7.5 / 8, 5.5 / 6, 0.1, 0.1]])
    idx, b, gx, gy, _ = assign(targets, 6, 8)
    cells = sorted(zip(idx.tolist(), b.tolist(), gx.tolist(), gy.tolist()))
    assert cells == [(0, 0, 3, 2), (0, 0, 3, 3), (0, 0, 4, 2), (0, 0, 4, 3), (1, 1, 7, 5)]


def test_loss_is_finite_without_boxes_and_pulls_objectness_down():
    preds = torch.zeros(2, 8, 4, 4, requires_grad=True)
    parts = detector_loss(preds, torch.zeros((0, 6)))
    parts.total.backward()
    assert parts.box.item() == 0 and parts.cls.item() == 0 and math.isfinite(parts.total.item())
    assert (preds.grad[:, 0] > 0).all()  # gradient descent lowers every objectness logit


def read_log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_short_fine_tuning_lowers_the_loss_and_resumes_exactly(data, tmp_path):
    from ivif_ros.training.detector_loop import train_detector
    from ivif_ros.weights import load_model

    cfg = load_detector_config(write_config(tmp_path / "c.yaml"))
    path = train_detector(cfg, data, tmp_path / "whole", progress=False, command="test")
    rows = read_log(tmp_path / "whole" / "losses.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    first, last = np.mean([float(r["total"]) for r in rows[:3]]), np.mean([float(r["total"]) for r in rows[-3:]])
    assert last < first, (first, last)

    model, meta = load_model(path)
    assert meta["architecture"] == "fastestdet" and meta["detection_classes"] == ["person", "bicycle", "car"]
    assert (
        meta["input"]["native_hw"] == [96, 128]
        and "BSD-3-Clause" in meta["licence"]
        and meta["training"]["command"] == "test"
    )
    assert model.num_classes == 3

    # the same run stopped after 5 steps and resumed: identical losses and weights
    assert train_detector(cfg, data, tmp_path / "split", progress=False, stop_after=5, command="test") is None
    with pytest.raises(ConfigError, match="--resume"):
        train_detector(cfg, data, tmp_path / "split", progress=False)
    resumed = train_detector(cfg, data, tmp_path / "split", progress=False, resume=True, command="test")
    assert read_log(tmp_path / "split" / "losses.csv") == rows
    a, b = model.state_dict(), load_model(resumed)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "override, field",
    [
        ({"input_mode": "thermal"}, "'input_mode'"),
        ({"input_size": [100, 96]}, "'input_size'"),
        ({"input_size": [640]}, "'input_size'"),
        ({"epochs": 0}, "'epochs'"),
        ({"data": []}, "'data'"),
        ({"data": [{"root": "/abs/msrs"}]}, "'data[0].root'"),
        ({"augment": {"flip": 0.5, "rotate": 10}}, "'augment'"),
        ({"batchsize": 4}, "unknown keys ['batchsize']"),
    ],
)
def test_config_errors_name_the_field(tmp_path, override, field):
    with pytest.raises(ConfigError) as err:
        load_detector_config(write_config(tmp_path / "bad.yaml", **override))
    assert field in str(err.value) and "bad.yaml" in str(err.value)


def test_data_root_comes_from_the_flag_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("IVIF_DATA", raising=False)
    with pytest.raises(ConfigError, match="--data .* or set IVIF_DATA"):
        data_root(None)
    monkeypatch.setenv("IVIF_DATA", str(tmp_path))
    assert data_root(None) == tmp_path
    with pytest.raises(ConfigError, match="does not exist"):
        data_root(str(tmp_path / "nope"))


def test_cli_prints_the_config_and_rejects_student_flags(tmp_path, capsys):
    from ivif_ros.cli import main

    cfg = write_config(tmp_path / "c.yaml")
    assert main(["train", "detector", "--config", str(cfg), "--print-config", "--input-mode", "ir"]) == 0
    out = capsys.readouterr().out
    assert "input_mode: ir" in out and "input_size:" in out
    assert main(["train", "detector", "--config", str(cfg), "--teacher", "x"]) == 2
    assert "do not apply" in capsys.readouterr().err
