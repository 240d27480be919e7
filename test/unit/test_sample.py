"""The synthetic sample: bag contents and timing, pairs, calibration, determinism, storage variants."""

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ivif_ros.bag.image_msgs import decode_image, detections_to_arrays, stamp_ns
from ivif_ros.bag.reader import BagReader
from ivif_ros.bag.sample import IR_FRAME, TOPICS, VIS_FRAME, SampleOptions, generate_sample
from ivif_ros.bag.synthetic_sensors import ThermalCounts
from ivif_ros.bag.timing import TimingConfig
from ivif_ros.cli import main
from ivif_ros.datasets.paired import PairedDataset

os.environ.setdefault("OMP_NUM_THREADS", "1")
cv2.setNumThreads(1)

SMALL = dict(width=320, height=240, ir_width=320, ir_height=256)
FRAMES = 12


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "s"
    generate_sample(out, SampleOptions(seed=3, frames=FRAMES, **SMALL), progress=False)
    return out


def test_bag_has_every_topic_with_one_message_per_frame(sample):
    with BagReader(sample / "bag") as bag:
        topics = bag.topics
    assert {t: (i.msgtype, i.count) for t, i in topics.items()} == {
        TOPICS["ir"]: ("sensor_msgs/msg/Image", FRAMES),
        TOPICS["ir_info"]: ("sensor_msgs/msg/CameraInfo", FRAMES),
        TOPICS["vis"]: ("sensor_msgs/msg/Image", FRAMES),
        TOPICS["vis_info"]: ("sensor_msgs/msg/CameraInfo", FRAMES),
        TOPICS["detections"]: ("ivif_ros/msg/DetectionArray", FRAMES),
        TOPICS["name"]: ("std_msgs/msg/Header", FRAMES),
    }


def test_stamps_are_30hz_within_jitter_and_monotonic(sample):
    cfg = TimingConfig()
    stamps, log_times, frames = {}, {}, {}
    with BagReader(sample / "bag") as bag:
        for topic, t_ns, msg in bag.messages([TOPICS["ir"], TOPICS["vis"]]):
            stamps.setdefault(topic, []).append(stamp_ns(msg.header))
            log_times.setdefault(topic, []).append(t_ns)
            frames.setdefault(topic, set()).add(msg.header.frame_id)
    assert frames == {TOPICS["ir"]: {IR_FRAME}, TOPICS["vis"]: {VIS_FRAME}}
    nominal = cfg.start_ns + np.round(np.arange(FRAMES) * 1e9 / cfg.rate_hz)
    for topic, offset_ms in ((TOPICS["vis"], 0.0), (TOPICS["ir"], cfg.ir_offset_ms)):
        s, t = np.array(stamps[topic]), np.array(log_times[topic])
        err_ms = (s - nominal) / 1e6 - offset_ms
        assert np.abs(err_ms).max() <= cfg.jitter_ms + 1e-3
        assert np.abs(err_ms).max() > 0.1  # really jittered, not on the nominal grid
        assert np.all(np.diff(s) > 0) and np.all(np.diff(t) > 0)
        latency_ms = (t - s) / 1e6  # the recorder logs after the camera stamps
        assert latency_ms.min() >= cfg.latency_ms[0] - 1e-3 and latency_ms.max() <= cfg.latency_ms[1] + 1e-3
    skew = (np.array(stamps[TOPICS["ir"]]) - np.array(stamps[TOPICS["vis"]])) / 1e6
    assert abs(skew.mean() - cfg.ir_offset_ms) < cfg.jitter_ms


def test_images_and_ground_truth_in_bag_match_the_pairs(sample):
    ds = PairedDataset(sample / "pairs")
    assert len(ds) == FRAMES
    cal = yaml.safe_load((sample / "calibration.yaml").read_text())
    h = np.array(cal["homography"], np.float64)
    counts = ThermalCounts()
    with BagReader(sample / "bag") as bag:
        msgs = list(bag.messages([TOPICS["ir"], TOPICS["vis"], TOPICS["detections"], TOPICS["name"]]))
    by_topic = {}
    for m in msgs:
        by_topic.setdefault(m.topic, []).append(m.msg)
    for i, pair in enumerate(ds):
        assert by_topic[TOPICS["name"]][i].frame_id == pair.name
        vis, enc = decode_image(by_topic[TOPICS["vis"]][i], "sensor_msgs/msg/Image")
        assert enc == "rgb8" and np.array_equal(vis, pair.vis)
        ir, enc = decode_image(by_topic[TOPICS["ir"]][i], "sensor_msgs/msg/Image")
        assert enc == "mono16" and ir.shape == (SMALL["ir_height"], SMALL["ir_width"])
        # the calibration homography registers the raw IR onto the visible grid of the pair
        registered = cv2.warpPerspective(ir.astype(np.float32), h, (SMALL["width"], SMALL["height"]))
        diff = np.abs(counts.to_8bit(registered).astype(int) - pair.ir.astype(int))
        assert np.median(diff) <= 1 and diff.mean() < 1.0
        xyxy, cls, score = detections_to_arrays(by_topic[TOPICS["detections"]][i])
        order = np.lexsort((xyxy[:, 0], cls))
        ref = pair.boxes
        ref_order = np.lexsort((ref.xyxy[:, 0], ref.cls))
        np.testing.assert_array_equal(cls[order], ref.cls[ref_order])
        np.testing.assert_allclose(xyxy[order], ref.xyxy[ref_order], atol=0.01)
        assert np.all(score == 1.0)


def test_camera_info_carries_the_calibrated_intrinsics(sample):
    cal = yaml.safe_load((sample / "calibration.yaml").read_text())
    with BagReader(sample / "bag") as bag:
        infos = {m.topic: m.msg for m in bag.messages([TOPICS["ir_info"], TOPICS["vis_info"]])}
    ir, vis = infos[TOPICS["ir_info"]], infos[TOPICS["vis_info"]]
    assert (ir.width, ir.height, vis.width, vis.height) == (320, 256, 320, 240)
    k_ir, k_vis = ir.k.reshape(3, 3), vis.k.reshape(3, 3)
    np.testing.assert_allclose(k_ir, cal["ir"]["K"])
    r = np.array(cal["ir"]["R"])
    h = k_vis @ r @ np.linalg.inv(k_ir)
    np.testing.assert_allclose(h / h[2, 2], cal["homography"], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("ir_size", [(640, 512), (320, 256), (160, 120)])
def test_ir_field_of_view_covers_every_visible_pixel(ir_size):
    from ivif_ros.bag.synthetic_sensors import make_rig

    for seed in range(5):
        rig = make_rig(np.random.default_rng(seed), 640, 480, *ir_size)
        ones = np.ones(ir_size[::-1], np.float32)
        covered = cv2.warpPerspective(ones, rig.ir_to_visible, (640, 480), flags=cv2.INTER_NEAREST, borderValue=0)
        assert covered.min() == 1.0
        canvas, margin = rig.canvas()  # and the render canvas contains the whole IR view
        w, h = ir_size
        corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [-0.5, h - 0.5, 1], [w - 0.5, h - 0.5, 1]]).T
        p = rig.ir_to_visible @ corners
        xy = p[:2] / p[2]
        assert np.all(xy >= -margin) and np.all(xy <= [[640 - 1 + margin], [480 - 1 + margin]])
        assert (canvas.width, canvas.height) == (640 + 2 * margin, 480 + 2 * margin) and margin < 100


def _contrast(img: np.ndarray, box) -> float:
    """Mean inside the box minus the mean of a ring around it, over the ring's std."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    w, h = x1 - x0, y1 - y0
    X0, Y0, X1, Y1 = max(x0 - w, 0), max(y0 - h // 2, 0), min(x1 + w, img.shape[1]), min(y1 + h // 2, img.shape[0])
    ring = np.ones((Y1 - Y0, X1 - X0), bool)
    ring[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0] = False
    patch = img[Y0:Y1, X0:X1].astype(np.float64)
    return abs(patch[~ring].mean() - patch[ring].mean()) / (patch[ring].std() + 1.0)


def test_people_stand_out_in_ir_more_than_in_visible(sample):
    """The point of the sample: warm people are salient in IR, hard to see at night in visible."""
    ir_c, vis_c = [], []
    for pair in PairedDataset(sample / "pairs"):
        gray = cv2.cvtColor(pair.vis, cv2.COLOR_RGB2GRAY)
        for box, cls in zip(pair.boxes.xyxy, pair.boxes.cls):
            if cls == 0 and box[3] - box[1] >= 12:
                ir_c.append(_contrast(pair.ir, box))
                vis_c.append(_contrast(gray, box))
    assert len(ir_c) >= FRAMES  # about one usable person per frame at least
    assert np.median(ir_c) > 2 * np.median(vis_c)
    assert min(ir_c) > 0.5  # every labelled person shows in IR: hidden ones are not labelled
    assert np.mean(pair.vis) < 80  # a night image: dark overall


def test_some_objects_are_salient_only_in_visible(sample):
    """E.g. the cold parked car (engine off) under a streetlight: visible wins, so fusion needs both."""
    wins = 0
    for pair in PairedDataset(sample / "pairs"):
        gray = cv2.cvtColor(pair.vis, cv2.COLOR_RGB2GRAY)
        for box, cls in zip(pair.boxes.xyxy, pair.boxes.cls):
            if box[3] - box[1] >= 8:
                wins += _contrast(gray, box) > 1.2 * _contrast(pair.ir, box)
    assert wins >= FRAMES // 2


def test_preview_plot_is_drawn_from_the_bag(sample, tmp_path):
    from ivif_ros.bag.preview import write_sample_preview
    from ivif_ros.errors import InputError

    path = write_sample_preview(sample, frame=5, out=tmp_path / "p.png")
    img = cv2.imread(str(path))
    assert img.shape == (720, 1280, 3) and img.std() > 20
    with pytest.raises(InputError, match=f"frame {FRAMES} is not in the bag"):
        write_sample_preview(sample, frame=FRAMES, out=tmp_path / "q.png")


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_bytes(tmp_path):
    opts = SampleOptions(seed=7, frames=3, width=96, height=64, ir_width=80, ir_height=64)
    generate_sample(tmp_path / "a", opts, progress=False)
    generate_sample(tmp_path / "b", opts, progress=False)
    generate_sample(tmp_path / "c", SampleOptions(**{**opts.__dict__, "seed": 8}), progress=False)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert len(a) == 3 * 4 + 3 and a == b  # 12 pair files + calibration + mcap + metadata
    assert a["bag/bag.mcap"] != c["bag/bag.mcap"] and a["pairs/vi/000000.png"] != c["pairs/vi/000000.png"]


def test_sqlite3_storage_with_drops_and_bgr8(tmp_path):
    opts = SampleOptions(
        seed=1,
        frames=20,
        width=96,
        height=64,
        ir_width=80,
        ir_height=64,
        storage="sqlite3",
        vis_encoding="bgr8",
        ir_encoding="mono8",
        write_pairs=False,
        timing=TimingConfig(drop_prob=0.3),
    )
    result = generate_sample(tmp_path / "s", opts, progress=False)
    assert (tmp_path / "s" / "bag" / "bag.db3").is_file() and not (tmp_path / "s" / "pairs").exists()
    with BagReader(tmp_path / "s" / "bag") as bag:
        counts = {t: i.count for t, i in bag.topics.items()}
        vis = next(m.msg for m in bag.messages([TOPICS["vis"]]))
        ir = next(m.msg for m in bag.messages([TOPICS["ir"]]))
    assert counts == result.messages
    assert 5 <= counts[TOPICS["vis"]] < 20 and 5 <= counts[TOPICS["ir"]] < 20
    assert counts[TOPICS["vis"]] == counts[TOPICS["detections"]] == counts[TOPICS["vis_info"]]
    assert (vis.encoding, ir.encoding) == ("bgr8", "mono8")


def test_an_interrupted_sample_leaves_no_finished_bag(tmp_path, monkeypatch):
    import ivif_ros.bag.sample as sample_module

    real = sample_module.visible_sensor
    calls = []

    def interrupt_at_third_frame(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sample_module, "visible_sensor", interrupt_at_third_frame)
    opts = SampleOptions(frames=5, width=96, height=64, ir_width=80, ir_height=64)
    with pytest.raises(KeyboardInterrupt):
        generate_sample(tmp_path / "s", opts, progress=False)
    assert not (tmp_path / "s" / "bag" / "metadata.yaml").exists()
    assert len(list((tmp_path / "s" / "pairs" / "vi").glob("*.png"))) == 2
    monkeypatch.undo()
    result = generate_sample(tmp_path / "s", opts, overwrite=True, progress=False)  # a rerun replaces it
    assert result.messages[TOPICS["vis"]] == 5


def test_cli_writes_and_refuses_to_clobber(tmp_path, capsys):
    args = [
        "sample",
        "--out",
        str(tmp_path / "s"),
        "--frames",
        "2",
        "--width",
        "96",
        "--height",
        "64",
        "--ir-width",
        "80",
        "--ir-height",
        "64",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 frames" in printed and (tmp_path / "s" / "preview.png").is_file()
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--no-preview"]) == 0
    assert main(["sample", "--out", str(tmp_path / "t"), "--jitter-ms", "20"]) == 2
    assert "--jitter-ms 20" in capsys.readouterr().err
