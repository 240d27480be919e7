"""make-bag: a paired image dataset becomes a bag with stamped images, names and merged boxes."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.make_bag import MakeBagOptions, make_bag
from ivif_ros.bag.reader import BagReader
from ivif_ros.bag.timing import TimingConfig
from ivif_ros.cli import main
from ivif_ros.errors import ConfigError, InputError

W, H = 40, 30


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Four pairs; IR and visible labels overlap on one object and each has one of its own."""
    root = tmp_path / "data"
    for sub in ("ir", "vi", "labels_det/ir", "labels_det/vi"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        name = f"{i:05d}N"
        cv2.imwrite(str(root / "ir" / f"{name}.png"), rng.integers(0, 256, (H, W), dtype=np.uint8))
        cv2.imwrite(str(root / "vi" / f"{name}.png"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        if i == 3:
            continue  # no label files: an empty detection message
        (root / "labels_det/ir" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.4\n2 0.2 0.2 0.1 0.1\n")
        (root / "labels_det/vi" / f"{name}.txt").write_text("0 0.51 0.5 0.2 0.4\n1 0.8 0.8 0.1 0.2\n")
    return root


def _read(bag_path: Path):
    with BagReader(bag_path) as bag:
        topics = {t: i.count for t, i in bag.topics.items()}
        msgs = list(bag.messages())
    return topics, msgs


def test_pairs_become_stamped_images_names_and_merged_boxes(dataset, tmp_path):
    result = make_bag(dataset, tmp_path / "bag", progress=False)
    topics, msgs = _read(tmp_path / "bag")
    assert topics == {
        "/ir/image_raw": 4,
        "/visible/image_raw": 4,
        "/ground_truth/name": 4,
        "/ground_truth/detections": 4,
    }
    assert result.pairs == 4 and result.messages == topics and result.bytes > 4 * W * H * 4

    by_topic = {}
    for m in msgs:
        by_topic.setdefault(m.topic, []).append(m)
    names = [m.msg.frame_id for m in by_topic["/ground_truth/name"]]
    assert names == ["00000N", "00001N", "00002N", "00003N"]
    for i, name in enumerate(names):
        ir, enc = im.decode_image(by_topic["/ir/image_raw"][i].msg, im.IMAGE)
        assert enc == "mono8" and np.array_equal(ir, cv2.imread(str(dataset / "ir" / f"{name}.png"), 0))
        vis, enc = im.decode_image(by_topic["/visible/image_raw"][i].msg, im.IMAGE)
        bgr = cv2.imread(str(dataset / "vi" / f"{name}.png"))
        assert enc == "rgb8" and np.array_equal(vis, bgr[:, :, ::-1])
        # the name and the boxes carry the visible image's stamp: replay joins on it
        vis_stamp = im.stamp_ns(by_topic["/visible/image_raw"][i].msg.header)
        assert im.stamp_ns(by_topic["/ground_truth/name"][i].msg) == vis_stamp
        assert im.stamp_ns(by_topic["/ground_truth/detections"][i].msg.header) == vis_stamp

    xyxy, cls, _ = im.detections_to_arrays(by_topic["/ground_truth/detections"][0].msg)
    assert sorted(cls.tolist()) == [0, 1, 2]  # the person labelled in both is kept once
    person = xyxy[cls == 0][0]
    np.testing.assert_allclose(person, [0.4 * W, 0.3 * H, 0.6 * W, 0.7 * H], atol=1e-4)  # the IR box wins
    assert len(by_topic["/ground_truth/detections"][3].msg.detections) == 0

    stamps = {
        t: np.array([im.stamp_ns(m.msg.header) for m in by_topic[t]]) for t in ("/ir/image_raw", "/visible/image_raw")
    }
    period = np.diff(stamps["/visible/image_raw"]) / 1e6
    assert np.all(np.abs(period - 1000 / 30) <= 2 * 3.0 + 1e-3)
    skew = (stamps["/ir/image_raw"] - stamps["/visible/image_raw"]) / 1e6
    assert np.all(np.abs(skew - 4.0) <= 6.0 + 1e-3)


def test_split_limit_topics_and_rate(dataset, tmp_path):
    split = tmp_path / "split.txt"
    split.write_text("00002N\n00000N\n00001N\n")
    opts = MakeBagOptions(
        split=split,
        limit=2,
        ir_topic="/thermal/image",
        vis_topic="/rgb/image",
        storage="sqlite3",
        timing=TimingConfig(rate_hz=10.0, jitter_ms=0.0),
    )
    make_bag(dataset, tmp_path / "bag", opts, progress=False)
    topics, msgs = _read(tmp_path / "bag")
    assert topics["/thermal/image"] == 2 and topics["/rgb/image"] == 2
    names = [m.msg.frame_id for m in msgs if m.topic == "/ground_truth/name"]
    assert names == ["00002N", "00000N"]  # split order
    vis_stamps = [im.stamp_ns(m.msg.header) for m in msgs if m.topic == "/rgb/image"]
    assert vis_stamps[1] - vis_stamps[0] == 100_000_000


def test_dataset_without_labels_has_no_detection_topic(dataset, tmp_path):
    import shutil

    shutil.rmtree(dataset / "labels_det")
    make_bag(dataset, tmp_path / "bag", progress=False)
    topics, _ = _read(tmp_path / "bag")
    assert "/ground_truth/detections" not in topics and topics["/ground_truth/name"] == 4


def test_bad_inputs_are_explained(dataset, tmp_path):
    with pytest.raises(InputError, match="dataset folder .* does not exist"):
        make_bag(tmp_path / "missing", tmp_path / "bag", progress=False)
    with pytest.raises(ConfigError, match="must be absolute"):
        make_bag(dataset, tmp_path / "bag", MakeBagOptions(ir_topic="ir"), progress=False)
    with pytest.raises(ConfigError, match="topics must differ"):
        make_bag(dataset, tmp_path / "bag", MakeBagOptions(ir_topic="/x", vis_topic="/x"), progress=False)


def test_cli(dataset, tmp_path, capsys):
    out = tmp_path / "bag"
    assert (
        main(["make-bag", "--data", str(dataset), "--out", str(out), "--limit", "3", "--jitter-ms", "2", "--compress"])
        == 0
    )
    assert "wrote 3 pairs" in capsys.readouterr().out
    assert _read(out)[0]["/ir/image_raw"] == 3
    assert (
        main(["make-bag", "--data", str(dataset), "--out", str(tmp_path / "b2"), "--compress", "--storage", "sqlite3"])
        == 2
    )
    assert "--compress needs --storage mcap" in capsys.readouterr().err
    assert main(["make-bag", "--data", str(dataset), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_made_bags_open_with_plain_rosbags_under_every_distro(dataset, tmp_path, storage):
    from rosbags_interop import DISTROS, read_every_message

    make_bag(dataset, tmp_path / "bag", MakeBagOptions(storage=storage), progress=False)
    for distro in DISTROS:
        assert read_every_message(tmp_path / "bag", distro) == {
            "/ir/image_raw": 4,
            "/visible/image_raw": 4,
            "/ground_truth/name": 4,
            "/ground_truth/detections": 4,
        }, distro
