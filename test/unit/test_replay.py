"""Offline ``ivif replay`` on real bags made by the sample generator (mcap, sqlite3,
CompressedImage, truncated), read back with rosbags."""

import json
import re
import shutil

import numpy as np
import pytest

from replay_support import FRAMES, check_accounting, make_config, make_sample

from ivif_ros.cli import main
from ivif_ros.errors import InputError
from ivif_ros.replay.run import ReplayOptions, run_replay


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("replay")
    return root, make_sample(root / "sample"), make_config(root / "model")


@pytest.fixture(scope="module")
def offline(workdir):
    root, bag, config = workdir
    return run_replay(ReplayOptions(bag=bag, out=root / "offline", config=config))


def test_offline_replay_writes_bag_report_and_consistent_summary(offline):
    s = json.loads(offline.summary_path.read_text())
    c = s["counts"]
    check_accounting(c)
    assert c["inputs_by_topic"]["/ir/image_raw"]["received"] == FRAMES
    assert c["inputs_by_topic"]["/visible/image_raw"]["received"] == FRAMES
    # a bag of N aligned pairs gives N fused frames: the last pair is not left pending at the end
    assert c["pairs"] == FRAMES and c["fused"] == c["pairs"]
    assert c["message_drops_by_reason"] == {}
    assert s["topics"]["ir"] == "/ir/image_raw" and s["topics"]["vis"] == "/visible/image_raw"  # auto-detected
    assert s["metrics"]["frames_scored"] == c["fused"]
    assert all(np.isfinite(v) for v in s["metrics"]["mean"].values())
    assert 0 < s["metrics"]["mean"]["contrast"] < 3  # the visible frames have well-exposed texture
    assert s["detection"]["frames"] == c["fused"] and s["detection"]["ground_truth_boxes"] > 0
    for stage in ("infer", "total"):
        assert 0 < s["latency_ms"][stage]["p50"] <= s["latency_ms"][stage]["p99"] <= s["latency_ms"][stage]["max"]
    assert not s["partial"] and s["throughput_fps"] > 0

    out = offline.report.parent
    text = offline.report.read_text()
    assert "| /ir/image_raw | 30 | 30 | 30 | 0 |" in text and "| EN | SD |" in text and "mAP@0.5" in text
    pngs = ["metric_trends.png", "latency.png"] + [
        p.relative_to(out).as_posix() for p in (out / "samples").glob("*.png")
    ]
    assert len(pngs) == 2 + 4
    for png in pngs:
        assert f"]({png})" in text and (out / png).stat().st_size > 5000
    rows = (out / "frames.csv").read_text().splitlines()
    assert len(rows) == c["fused"] + 1
    assert rows[1].split(",")[2] == "000000"  # the pair name the sample bag carries


def test_output_bag_reads_back_with_rosbags(offline):
    from rosbags.highlevel import AnyReader

    from ivif_ros.bag.typestore import make_typestore

    with AnyReader([offline.output_bag], default_typestore=make_typestore()) as reader:
        counts = {t: i.msgcount for t, i in reader.topics.items()}
        fused = next(c for c in reader.connections if c.topic == "/fused/image")
        _, _, raw = next(reader.messages([fused]))
        img = reader.deserialize(raw, fused.msgtype)
    n = offline.summary["counts"]["fused"]
    assert counts == {"/fused/image": n, "/semantic/mask": n, "/detections": n, "/fusion/status": n}
    assert (img.encoding, img.width, img.height) == ("rgb8", 320, 240)


def test_output_bag_opens_with_plain_rosbags_under_every_distro(offline):
    from rosbags_interop import DISTROS, read_every_message

    n = offline.summary["counts"]["fused"]
    for distro in DISTROS:
        assert read_every_message(offline.output_bag, distro) == {
            "/fused/image": n,
            "/semantic/mask": n,
            "/detections": n,
            "/fusion/status": n,
        }, distro


def test_output_bag_reads_with_ros2_bag(offline):
    """`ros2 bag info` on the replay output: needs rosbag2_py, which neither PyPI nor
    ../shared/ros-extras provides (rosbag2 is C++ with Python bindings)."""
    pytest.importorskip(
        "rosbag2_py",
        reason="rosbag2_py (`ros2 bag`) is not installed: not on PyPI and not in "
        "../shared/ros-extras; rosbags interop is tested instead",
    )
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ros2 = shutil.which("ros2", path=str(Path(sys.executable).parent)) or shutil.which("ros2")
    assert ros2, "rosbag2_py is installed but the ros2 command is not"
    info = subprocess.run([ros2, "bag", "info", str(offline.output_bag)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    n = offline.summary["counts"]["fused"]
    for topic in ("/fused/image", "/semantic/mask", "/detections", "/fusion/status"):
        assert re.search(rf"Topic: {re.escape(topic)} .*Count: {n}\b", info.stdout), info.stdout


@pytest.mark.parametrize("storage, distro", [("sqlite3", "humble"), ("mcap", "jazzy")])
def test_other_storage_and_distro_with_topic_flags(workdir, tmp_path, storage, distro):
    """The sample's first 8 frames copied into a bag of another storage, carrying another
    distro's message definitions (as `ros2 bag record` on that distro would write them)."""
    from ivif_ros.bag.reader import BagReader
    from ivif_ros.bag.writer import BagWriter

    _, src, config = workdir
    with BagReader(src) as reader, BagWriter(tmp_path / "bag", storage=storage, distro=distro) as out:
        for info in reader.topics.values():
            out.add_topic(info.topic, info.msgtype)
        written: dict[str, int] = {}
        for topic, t_ns, raw, _ in reader.raw_messages(list(reader.topics)):
            if written.setdefault(topic, 0) < 8:
                out.write(topic, t_ns, raw)
                written[topic] += 1
    assert list((tmp_path / "bag").glob("*.db3" if storage == "sqlite3" else "*.mcap"))
    result = run_replay(
        ReplayOptions(
            bag=tmp_path / "bag",
            out=tmp_path / "out",
            config=config,
            metrics_every=3,
            ir_topic="/ir/image_raw",
            vis_topic="/visible/image_raw",
            gt_topic="/ground_truth/detections",
            storage_format=storage,
        )
    )
    assert list((tmp_path / "out" / "output_bag").glob("*.db3" if storage == "sqlite3" else "*.mcap"))
    c = result.summary["counts"]
    check_accounting(c)
    assert c["inputs"] == 16 and c["fused"] == 8
    assert result.summary["metrics"]["frames_scored"] == 3  # frames 0, 3, 6


def test_compressed_images_are_decoded_and_topics_auto_detected(workdir, tmp_path):
    """A bag with jpeg-free (png) CompressedImage topics under other names: found by encoding."""
    from ivif_ros.bag import image_msgs as im
    from ivif_ros.bag.reader import BagReader
    from ivif_ros.bag.writer import BagWriter

    _, src, config = workdir
    names = {"/ir/image_raw": "/thermal/compressed", "/visible/image_raw": "/front/compressed"}
    with BagReader(src) as reader, BagWriter(tmp_path / "bag") as out:
        for topic in names.values():
            out.add_topic(topic, im.COMPRESSED_IMAGE)
        for m in reader.messages(list(names), strict=False):
            arr, enc = im.decode_image(m.msg, im.IMAGE, m.topic)
            out.write(
                names[m.topic],
                m.t_ns,
                im.make_compressed_image(out.typestore, arr, "png", im.stamp_ns(m.msg.header), m.msg.header.frame_id),
            )
    result = run_replay(
        ReplayOptions(bag=tmp_path / "bag", out=tmp_path / "out", config=config, metrics_every=100, samples=0)
    )
    assert result.summary["topics"]["ir"] == "/thermal/compressed"
    assert result.summary["topics"]["vis"] == "/front/compressed"
    assert result.summary["counts"]["fused"] == FRAMES
    assert result.summary["detection"] is None  # no ground-truth topic in this bag


def test_wrong_topic_error_lists_the_bag_contents(workdir, tmp_path):
    _, bag, config = workdir
    with pytest.raises(InputError) as err:
        run_replay(ReplayOptions(bag=bag, out=tmp_path / "out", config=config, ir_topic="/nope/image"))
    msg = str(err.value)
    assert "/nope/image" in msg and "/visible/image_raw" in msg and "sensor_msgs/msg/CameraInfo" in msg
    with pytest.raises(InputError, match="has type sensor_msgs/msg/CameraInfo"):
        run_replay(ReplayOptions(bag=bag, out=tmp_path / "out", config=config, vis_topic="/visible/camera_info"))


def test_truncated_bag_gives_a_partial_report_not_a_traceback(workdir, tmp_path, capsys):
    _, bag, config = workdir
    cut = tmp_path / "cut"
    shutil.copytree(bag, cut)
    mcap = next(cut.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: int(mcap.stat().st_size * 0.6)])  # a recording killed mid-write

    code = main(["replay", str(cut), "--out", str(tmp_path / "out"), "--config", str(config), "--samples", "1"])
    assert code == 1  # partial
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["partial"] and s["errors"]
    check_accounting(s["counts"])
    assert 0 < s["counts"]["fused"] < FRAMES
    assert "Partial report" in (tmp_path / "out" / "report.md").read_text()
    assert "PARTIAL" in capsys.readouterr().out


def test_camera_info_topic_follows_image_transport_naming():
    from ivif_ros.replay.inputs import camera_info_topic

    assert camera_info_topic("/ir/image_raw") == "/ir/camera_info"
    assert camera_info_topic("/car/front/image_rect/compressed") == "/car/front/camera_info"
