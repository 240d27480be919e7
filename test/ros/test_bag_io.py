"""rosbag2 I/O with rosbags: typed round trips, raw CDR from rclpy, distros, errors, damaged bags."""

import re
from pathlib import Path

import numpy as np
import pytest

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.reader import BagDamagedError, BagReader
from ivif_ros.bag.writer import BagWriter
from ivif_ros.core.image_codec import encoding_layout, to_rgb
from ivif_ros.errors import ConfigError, InputError

T0 = 1_700_000_000_000_000_000
ENCODINGS = ["mono8", "mono16", "rgb8", "bgr8", "rgba8", "bgra8", "32FC1", "16UC1", "8UC1", "8UC3"]


def _image(encoding: str, seed: int = 0, h: int = 6, w: int = 10) -> np.ndarray:
    dtype, ch = encoding_layout(encoding)
    rng = np.random.default_rng(seed)
    shape = (h, w) if ch == 1 else (h, w, ch)
    if dtype.kind == "f":
        return rng.normal(size=shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_encoding_round_trips_through_a_bag(tmp_path, storage):
    cases = [(enc, False, None) for enc in ENCODINGS]
    cases += [("mono16", True, None), ("32FC1", True, None), ("rgb8", False, 10 * 3 + 2), ("mono16", True, 24)]
    with BagWriter(tmp_path / "b", storage=storage) as bag:
        for i, (enc, big, step) in enumerate(cases):
            bag.add_topic(f"/img{i}", im.IMAGE)
            bag.write(
                f"/img{i}",
                T0 + i,
                im.make_image(bag.typestore, _image(enc, i), enc, T0, "cam", bigendian=big, step=step),
            )
    with BagReader(tmp_path / "b") as bag:
        got = {m.topic: m.msg for m in bag.messages()}
    for i, (enc, big, step) in enumerate(cases):
        msg = got[f"/img{i}"]
        assert (msg.encoding, bool(msg.is_bigendian)) == (enc, big and enc not in ("rgb8",))
        if step is not None:
            assert msg.step == step
        arr, arr_enc = im.decode_image(msg, im.IMAGE, f"/img{i}")
        assert arr_enc == enc and arr.dtype.isnative
        np.testing.assert_array_equal(arr, _image(enc, i))


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_image_decodes(tmp_path, fmt):
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :24] = (200, 40, 10)  # large flat areas so jpeg stays close
    with BagWriter(tmp_path / "b") as bag:
        bag.add_topic("/c", im.COMPRESSED_IMAGE)
        bag.write("/c", T0, im.make_compressed_image(bag.typestore, rgb, fmt, T0, "cam"))
    with BagReader(tmp_path / "b") as bag:
        msg = next(bag.messages(["/c"])).msg
    arr, enc = im.decode_image(msg, im.COMPRESSED_IMAGE, "/c")
    assert enc == "bgr8" and arr.shape == rgb.shape
    err = np.abs(to_rgb(arr, enc).astype(int) - rgb)
    if fmt == "png":
        assert err.max() == 0
    else:  # lossy: compare away from the colour edge, where chroma subsampling smears
        assert err[:, np.r_[0:16, 32:48]].max() <= 8


def test_corrupt_compressed_image_names_topic_and_field():
    from types import SimpleNamespace

    msg = SimpleNamespace(format="jpeg", data=np.frombuffer(b"\xff\xd8 not really a jpeg", np.uint8))
    with pytest.raises(InputError, match=r"topic /cam/compressed: field 'data' .* not a decodable"):
        im.compressed_to_array(msg, "/cam/compressed")


def test_raw_cdr_from_rclpy_is_written_as_is(tmp_path):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from ivif_ros.core.image_codec import array_to_image_fields, fill_image_msg

    arr = _image("mono16", 5)
    msg = fill_image_msg(Image(), array_to_image_fields(arr, "mono16"))
    msg.header.frame_id = "ir_camera_optical_frame"
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345
    with BagWriter(tmp_path / "b") as bag:
        bag.add_topic("/ir/image_raw", im.IMAGE)
        bag.write("/ir/image_raw", T0, serialize_message(msg))
    with BagReader(tmp_path / "b") as bag:
        ((topic, t_ns, got),) = list(bag.messages(["/ir/image_raw"]))
    assert (topic, t_ns, got.header.frame_id, im.stamp_ns(got.header)) == (
        "/ir/image_raw",
        T0,
        "ir_camera_optical_frame",
        12_000_000_345,
    )
    np.testing.assert_array_equal(im.decode_image(got, im.IMAGE)[0], arr)


def test_messages_come_in_time_order_across_topics(tmp_path):
    with BagWriter(tmp_path / "b") as bag:
        for topic in ("/a", "/b"):
            bag.add_topic(topic, im.HEADER)
        for t in (5, 1, 3):  # written out of order on purpose
            bag.write("/a", T0 + t, im.header(bag.typestore, t, "a"))
        for t in (2, 4):
            bag.write("/b", T0 + t, im.header(bag.typestore, t, "b"))
    with BagReader(tmp_path / "b") as bag:
        got = [(m.topic, m.t_ns - T0) for m in bag.messages()]
        window = [m.t_ns - T0 for m in bag.messages(["/a"], start=T0 + 2, stop=T0 + 5)]
    assert got == [("/a", 1), ("/b", 2), ("/a", 3), ("/b", 4), ("/a", 5)]
    assert window == [3]


@pytest.mark.parametrize("distro", ["humble", "jazzy"])
def test_bags_of_other_distros_decode_with_their_own_definitions(tmp_path, distro):
    with BagWriter(tmp_path / "b", distro=distro) as bag:
        bag.add_topic("/info", im.CAMERA_INFO)
        bag.add_topic("/det", im.DETECTION_ARRAY)
        bag.write("/info", T0, im.make_camera_info(bag.typestore, T0, "cam", 4, 3, np.eye(3)))
        bag.write(
            "/det",
            T0,
            im.make_detection_array(bag.typestore, T0, "cam", [[1, 2, 3, 4]], [2], ["person", "bicycle", "car"]),
        )
    with BagReader(tmp_path / "b") as bag:  # default (kilted) reader
        got = {m.topic: m.msg for m in bag.messages()}
    assert (got["/info"].width, got["/info"].height) == (4, 3)
    xyxy, cls, score = im.detections_to_arrays(got["/det"])
    assert cls.tolist() == [2] and xyxy.tolist() == [[1, 2, 3, 4]] and got["/det"].detections[0].class_name == "car"


def test_every_ivif_ros_message_in_msg_folder_is_writable(tmp_path):
    """The typestore picks up msg/*.msg generically (incl. constants), e.g. FusionStatus."""
    with BagWriter(tmp_path / "b") as bag:
        FusionStatus = bag.typestore.types["ivif_ros/msg/FusionStatus"]
        assert FusionStatus.MODE_FUSED == "fused"
        fields = {name: 0.5 for name in FusionStatus.__dataclass_fields__ if name.endswith("_ms")}
        msg = FusionStatus(
            header=im.header(bag.typestore, T0, "vis"),
            frame_index=7,
            mode=FusionStatus.MODE_FUSED,
            ir_present=True,
            visible_present=True,
            backend="onnxruntime",
            **fields,
        )
        bag.add_topic("/fusion/status", "ivif_ros/msg/FusionStatus")
        bag.write("/fusion/status", T0, msg)
    with BagReader(tmp_path / "b") as bag:
        got = next(bag.messages()).msg
    assert (got.frame_index, got.mode, got.backend, got.infer_ms) == (7, "fused", "onnxruntime", 0.5)


@pytest.mark.parametrize("name", ["Detection", "DetectionArray", "FusionStatus"])
def test_ivif_ros_types_match_the_ros_build(name):
    """Bags we write carry the same type hash as the rosidl-generated messages, and rclpy's bytes
    decode with our typestore: recorded and generated bags are interchangeable."""
    import json
    import sys

    msg_module = pytest.importorskip("ivif_ros.msg", reason="ivif_ros messages are not built in this environment")
    from rclpy.serialization import serialize_message

    from ivif_ros.bag.typestore import make_typestore

    description = Path(sys.prefix) / "share" / "ivif_ros" / "msg" / f"{name}.json"
    if not description.is_file():
        pytest.skip(f"{description} not installed")
    hashes = json.loads(description.read_text())["type_hashes"]
    ros_hash = next(h["hash_string"] for h in hashes if h["type_name"] == f"ivif_ros/msg/{name}")
    store = make_typestore()
    assert store.hash_rihs01(f"ivif_ros/msg/{name}") == ros_hash
    decoded = store.deserialize_cdr(serialize_message(getattr(msg_module, name)()), f"ivif_ros/msg/{name}")
    assert decoded.__msgtype__ == f"ivif_ros/msg/{name}"


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bags_without_definitions_decode_with_the_distro_types(tmp_path, storage):
    from rosbags.rosbag2 import StoragePlugin, Writer

    from ivif_ros.bag.typestore import make_typestore

    store = make_typestore("humble")
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(tmp_path / "b", version=9, storage_plugin=plugin) as raw:  # a recorder that stores no msgdef
        conn = raw.add_connection("/img", im.IMAGE, msgdef="", rihs01="RIHS01_" + "0" * 64)
        raw.write(conn, T0, store.serialize_cdr(im.make_image(store, _image("mono16"), "mono16", T0, "c"), im.IMAGE))
    with BagReader(tmp_path / "b", distro="humble") as bag:
        msg = next(bag.messages(["/img"])).msg
    assert msg.header.frame_id == "c"
    np.testing.assert_array_equal(im.decode_image(msg, im.IMAGE)[0], _image("mono16"))


def test_unknown_distro_and_type_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="unknown ROS distro 'rolling'"):
        BagWriter(tmp_path / "x", distro="rolling")
    with BagWriter(tmp_path / "b") as bag:
        with pytest.raises(InputError, match="my_pkg/msg/Thing is unknown"):
            bag.add_topic("/t", "my_pkg/msg/Thing")


@pytest.fixture
def two_topic_bag(tmp_path) -> Path:
    with BagWriter(tmp_path / "b") as bag:
        bag.add_topic("/ir/image_raw", im.IMAGE)
        bag.add_topic("/ground_truth/name", im.HEADER)
        for i in range(3):
            bag.write("/ir/image_raw", T0 + i, im.make_image(bag.typestore, _image("mono8", i), "mono8", T0, "ir"))
            bag.write("/ground_truth/name", T0 + i, im.header(bag.typestore, T0, f"n{i}"))
    return tmp_path / "b"


def test_wrong_topic_or_type_lists_the_bag_contents(two_topic_bag):
    with BagReader(two_topic_bag) as bag:
        with pytest.raises(InputError) as err:
            list(bag.messages(["/visible/image_raw"]))
        text = str(err.value)
        assert "topic /visible/image_raw is not in the bag" in text
        assert re.search(r"/ir/image_raw +sensor_msgs/msg/Image +\(3 msgs\)", text)
        assert re.search(r"/ground_truth/name +std_msgs/msg/Header +\(3 msgs\)", text)
        with pytest.raises(InputError, match=r"has type std_msgs/msg/Header, expected sensor_msgs/msg/Image"):
            bag.require("/ground_truth/name", (im.IMAGE, im.COMPRESSED_IMAGE))


def test_single_mcap_file_and_folder_without_metadata(two_topic_bag):
    mcap = two_topic_bag / "b.mcap"
    with BagReader(mcap) as bag:
        assert bag.topics["/ir/image_raw"].count == 3 and not bag.damaged
    (two_topic_bag / "metadata.yaml").unlink()
    with BagReader(two_topic_bag) as bag:
        assert len(list(bag.messages())) == 6
        assert any("metadata.yaml is missing" in e for e in bag.errors)


def test_truncated_mcap_yields_the_readable_part_then_raises(tmp_path):
    with BagWriter(tmp_path / "b") as bag:
        bag.add_topic("/img", im.IMAGE)
        for i in range(40):  # ~0.3 MB each: the rosbags writer closes a 1 MiB chunk every 4 images
            bag.write(
                "/img", T0 + i, im.make_image(bag.typestore, np.full((480, 640), i, np.uint8), "mono8", T0 + i, "c")
            )
    mcap = tmp_path / "b" / "b.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.55)])

    with BagReader(tmp_path / "b") as bag:
        assert bag.damaged
        n = bag.topics["/img"].count
        assert 15 <= n < 40  # complete messages only, including those of the cut chunk
        got = []
        with pytest.raises(BagDamagedError) as err:
            for m in bag.messages(["/img"]):
                got.append(int(m.msg.data[0]))
        assert err.value.yielded == n == len(got)
        assert got == list(range(n))  # the readable prefix, intact and in order
        assert "truncated" in str(err.value)
        # callers that want the partial result without an exception
        assert len(list(bag.messages(["/img"], strict=False))) == n
        assert any("truncated" in e for e in bag.errors)


def test_compressed_mcap_reads_back_and_salvages_its_complete_chunks(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 40, (480, 640), dtype=np.uint8) for i in range(24)]
    for name, compress in (("raw", False), ("zstd", True)):
        with BagWriter(tmp_path / name, compress=compress) as bag:
            bag.add_topic("/img", im.IMAGE)
            for i, f in enumerate(frames):
                bag.write("/img", T0 + i, im.make_image(bag.typestore, f, "mono8", T0 + i, "c"))
    raw, packed = (tmp_path / "raw" / "raw.mcap").stat().st_size, (tmp_path / "zstd" / "zstd.mcap").stat().st_size
    assert packed < 0.8 * raw
    with BagReader(tmp_path / "zstd") as bag:
        got = [im.decode_image(m.msg, im.IMAGE)[0] for m in bag.messages(["/img"])]
    assert len(got) == 24 and all(np.array_equal(a, b) for a, b in zip(got, frames))

    mcap = tmp_path / "zstd" / "zstd.mcap"
    mcap.write_bytes(mcap.read_bytes()[: packed // 2])
    with BagReader(tmp_path / "zstd") as bag:
        salvaged = [m.msg for m in bag.messages(["/img"], strict=False)]
        assert bag.damaged and any("truncated" in e for e in bag.errors)
    assert 4 <= len(salvaged) < 24  # whole compressed chunks only: the cut one cannot be decompressed
    assert all(np.array_equal(im.decode_image(m, im.IMAGE)[0], frames[i]) for i, m in enumerate(salvaged))
    with pytest.raises(ConfigError, match="--compress needs --storage mcap"):
        BagWriter(tmp_path / "s", storage="sqlite3", compress=True)


def test_garbage_files_give_input_error(tmp_path):
    (tmp_path / "x.mcap").write_bytes(b"not an mcap file at all")
    with pytest.raises(InputError, match="cannot be read"):
        BagReader(tmp_path / "x.mcap").open()
    (tmp_path / "y.db3").write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)
    with pytest.raises(InputError, match="cannot be read"):
        BagReader(tmp_path / "y.db3").open()
    with pytest.raises(InputError, match="does not exist"):
        BagReader(tmp_path / "nope")


def test_writer_refuses_to_clobber(tmp_path, two_topic_bag):
    with pytest.raises(InputError, match="already exists"):
        BagWriter(two_topic_bag)
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a rosbag2 folder"):
        BagWriter(tmp_path / "plain", overwrite=True)
    with BagWriter(two_topic_bag, overwrite=True) as bag:
        bag.add_topic("/x", im.HEADER)
    with BagReader(two_topic_bag) as bag:
        assert list(bag.topics) == ["/x"]
