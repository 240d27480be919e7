"""The inputs of a replay: which topics, every IR/visible message, and the ground truth.

Only what describes a message is kept (topic, times, size): its CDR bytes are read again
from the bag, one pair at a time, when the pipeline, the player or the evaluation needs
them (:meth:`BagInputs.stream`, :func:`stream_pairs`), so memory does not grow with the
bag. A message larger than ``max_message_bytes`` is refused before it is decoded or copied
(``message_too_large``). Topic choice, in order:

1. ``--ir-topic`` / ``--vis-topic`` when given (checked against the bag, whose contents
   the error lists);
2. otherwise the image topics (``sensor_msgs/Image`` or ``CompressedImage``) are told
   apart by the encoding of their first message: exactly one mono and one colour topic
   is unambiguous;
3. otherwise by name (``ir``/``thermal``/``lwir`` vs ``vis``/``rgb``/``color``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.make_bag import UNION_SUFFIX, union_topic_of
from ivif_ros.bag.reader import BagReader
from ivif_ros.core.image_codec import MAX_IMAGE_BYTES, to_rgb
from ivif_ros.errors import InputError

# Largest raw message replayed: the largest image the decoder accepts plus room for the header.
DEFAULT_MAX_MESSAGE_BYTES = MAX_IMAGE_BYTES + (1 << 20)
MESSAGE_TOO_LARGE = "message_too_large"  # drop reason: refused unread (--max-message-mb)

IMAGE_TYPES = (im.IMAGE, im.COMPRESSED_IMAGE)
MONO_ENCODINGS = re.compile(r"^(mono8|mono16|8UC1|8SC1|16UC1|16SC1|32SC1|32FC1|64FC1)$")
IR_NAME = re.compile(r"(^|[/_])(ir|thermal|lwir|infrared|flir)([/_]|$)", re.I)
DEFAULT_CLASSES = ("person", "bicycle", "car")  # docs/contracts.md, when the bag names none
VIS_NAME = re.compile(r"(^|[/_])(vis|visible|rgb|color|colour)([/_]|$)", re.I)


@dataclass
class InputItem:
    msg_id: int  # id in the MessageLedger (set by the caller)
    topic: str
    msgtype: str
    log_ns: int  # bag receive time
    stamp_ns: int  # header stamp (0 when refused unread)
    ordinal: int  # position among the bag's messages on ``topic``: finds it again in the bag
    size: int  # bytes of CDR
    refused: str | None = None  # drop reason decided on reading (``message_too_large``), else None


@dataclass
class GroundTruth:
    xyxy: np.ndarray  # (N, 4) float32, visible-frame pixels
    cls: np.ndarray  # (N,) int64


@dataclass
class BagInputs:
    path: Path
    ir_topic: str
    vis_topic: str
    gt_topic: str | None
    items: list[InputItem]  # IR and visible messages in bag (receive) order
    ground_truth: dict[int, GroundTruth]  # header stamp -> boxes
    class_names: list[str]  # detection class id -> name (the ground truth's, else the default)
    camera_k: dict[str, np.ndarray]  # "ir"/"vis" -> 3x3 intrinsics from camera_info, when in the bag
    info_topics: dict[str, str]  # "ir"/"vis" -> the camera's CameraInfo topic in the bag (live plays it)
    frame_names: dict[int, str]  # visible stamp -> dataset pair name (``ivif make-bag``'s name topic)
    errors: list[str] = field(default_factory=list)  # damage found while reading
    typestore: object = None
    #: ``<gt_topic>_union`` (``ivif make-bag`` with fusion labels): the IR/visible union boxes, a
    #: second ground truth comparable with figures scored before the fusion labels existed
    union_topic: str | None = None
    union_truth: dict[int, GroundTruth] = field(default_factory=dict)  # header stamp -> boxes
    topic_counts: dict[str, int] = field(default_factory=dict)  # every topic -> messages (bag index)

    def decode_msg(self, item: InputItem, data: bytes) -> tuple[object, np.ndarray]:
        """The message and its image: IR as it comes (any depth; colour as RGB), visible as
        RGB uint8 (or HxW grey), which is what the fusion node makes of them."""
        msg = self.typestore.deserialize_cdr(data, item.msgtype)
        arr, encoding = im.decode_image(msg, item.msgtype, item.topic)
        return msg, (np.ascontiguousarray(to_rgb(arr, encoding)) if arr.ndim == 3 else arr)

    def decode(self, item: InputItem, data: bytes) -> np.ndarray:
        return self.decode_msg(item, data)[1]

    def stream(
        self, wanted: Callable[[InputItem], bool] | None = None, extra_topics: tuple[str, ...] = ()
    ) -> Iterator[tuple[str, int, bytes, str, InputItem | None]]:
        """Read the bag again, in bag order: ``(topic, receive ns, CDR, type, item)`` for the IR and
        visible messages that ``wanted`` accepts (all readable, not refused, when None) and every
        message of ``extra_topics`` (item None). A message is read, handed on and let go."""
        by_key = {(i.topic, i.ordinal): i for i in self.items}
        seen: dict[str, int] = {}
        with BagReader(self.path) as reader:
            for topic, t_ns, raw, msgtype in reader.raw_messages([self.ir_topic, self.vis_topic, *extra_topics]):
                if topic not in (self.ir_topic, self.vis_topic):
                    yield topic, t_ns, raw, msgtype, None
                    continue
                ordinal = seen[topic] = seen.get(topic, -1) + 1
                item = by_key.get((topic, ordinal))
                if item is None or item.refused or item.log_ns != t_ns or (wanted is not None and not wanted(item)):
                    continue
                yield topic, t_ns, raw, msgtype, item

    def first_image(self, topic: str) -> np.ndarray:
        """The first readable image on ``topic`` (e.g. to size the engine)."""
        for _, _, raw, _, item in self.stream(lambda i: i.topic == topic):
            return self.decode(item, raw)
        raise InputError(f"bag {self.path}: no readable message on {topic}, nothing to fuse")


def stream_pairs(inputs: BagInputs, pairs: list) -> Iterator[tuple[int, InputItem, bytes, InputItem, bytes]]:
    """``(position in pairs, IR item, IR CDR, visible item, visible CDR)`` for each ledger pair in
    ``pairs``, in that order, reading the bag once. A message is held only until its pair is
    complete and the pairs before it are out: a few messages, the pairing policy's window."""
    need = {m: k for k, p in enumerate(pairs) for m in (p.ir, p.vis)}
    held: dict[int, bytes] = {}
    next_pair = 0
    for _, _, raw, _, item in inputs.stream(lambda i: i.msg_id in need):
        held[item.msg_id] = raw
        while next_pair < len(pairs) and pairs[next_pair].ir in held and pairs[next_pair].vis in held:
            p = pairs[next_pair]
            yield next_pair, inputs.items[p.ir], held.pop(p.ir), inputs.items[p.vis], held.pop(p.vis)
            next_pair += 1


def _is_mono(reader: BagReader, topic: str, msgtype: str) -> bool | None:
    """Whether the first message of an image topic is single-channel (None: unreadable)."""
    for m in reader.messages([topic], strict=False):
        if msgtype == im.IMAGE:
            return bool(MONO_ENCODINGS.match(m.msg.encoding))
        arr, _ = im.compressed_to_array(m.msg, topic)
        return arr.ndim == 2
    return None


def choose_image_topics(reader: BagReader, ir_topic: str | None, vis_topic: str | None) -> tuple[str, str]:
    if ir_topic:
        reader.require(ir_topic, IMAGE_TYPES)
    if vis_topic:
        reader.require(vis_topic, IMAGE_TYPES)
    if ir_topic and vis_topic:
        if ir_topic == vis_topic:
            raise InputError(f"--ir-topic and --vis-topic are both {ir_topic}; give two different topics")
        return ir_topic, vis_topic
    images = {t: i.msgtype for t, i in reader.topics.items() if i.msgtype in IMAGE_TYPES and i.count > 0}
    images.pop(ir_topic or "", None)
    images.pop(vis_topic or "", None)
    mono = {t: _is_mono(reader, t, ty) for t, ty in images.items()}
    ir_cands = [t for t, m in mono.items() if m]
    vis_cands = [t for t, m in mono.items() if m is False]
    if len(ir_cands) > 1:
        ir_cands = [t for t in ir_cands if IR_NAME.search(t)] or ir_cands
    if len(vis_cands) > 1:
        vis_cands = [t for t in vis_cands if VIS_NAME.search(t)] or vis_cands
    ir = ir_topic or (ir_cands[0] if len(ir_cands) == 1 else None)
    vis = vis_topic or (vis_cands[0] if len(vis_cands) == 1 else None)
    if not ir or not vis:
        which = " and ".join(n for n, t in (("--ir-topic", ir), ("--vis-topic", vis)) if not t)
        raise InputError(
            f"cannot tell which image topics are infrared and visible (looking for exactly one mono and one "
            f"colour Image/CompressedImage topic); pass {which}. {reader.describe()}"
        )
    return ir, vis


def choose_gt_topic(reader: BagReader, gt_topic: str | None) -> str | None:
    if gt_topic:
        reader.require(gt_topic, im.DETECTION_ARRAY)
        return gt_topic
    cands = [
        t
        for t, i in reader.topics.items()
        if i.msgtype == im.DETECTION_ARRAY
        and i.count > 0
        and re.search(r"ground_?truth|(^|/)gt(/|$)", t)
        and not t.endswith(UNION_SUFFIX)
    ]
    return cands[0] if len(cands) == 1 else None


def read_boxes(reader: BagReader, topic: str, names: dict[int, str]) -> dict[int, GroundTruth]:
    """Header stamp -> boxes of a DetectionArray topic; class names found are added to ``names``."""
    out = {}
    for m in reader.messages([topic], strict=False):
        xyxy, cls, _ = im.detections_to_arrays(m.msg)
        out[im.stamp_ns(m.msg.header)] = GroundTruth(xyxy, cls)
        names.update((d.class_id, d.class_name) for d in m.msg.detections)
    return out


def camera_info_topic(image_topic: str) -> str:
    """``/ns/image_raw`` (or its ``/ns/image_raw/compressed`` transport) -> ``/ns/camera_info``,
    image_transport's convention."""
    base = image_topic[: -len("/compressed")] if image_topic.endswith("/compressed") else image_topic
    return base.rsplit("/", 1)[0] + "/camera_info"


def read_inputs(
    path: Path,
    ir_topic: str | None,
    vis_topic: str | None,
    gt_topic: str | None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> BagInputs:
    """Read what the replay needs to know from the bag: every IR/visible message's topic, times
    and size, the ground truth and the camera intrinsics. A damaged bag yields what is readable
    and the damage in ``errors`` (the report is then marked partial)."""
    from tqdm import tqdm

    with BagReader(path) as reader:
        ir, vis = choose_image_topics(reader, ir_topic, vis_topic)
        gt = choose_gt_topic(reader, gt_topic)
        info_topics = {k: camera_info_topic(t) for k, t in (("ir", ir), ("vis", vis))}
        info_topics = {
            k: t
            for k, t in info_topics.items()
            if t in reader.topics and reader.topics[t].msgtype == im.CAMERA_INFO and reader.topics[t].count > 0
        }
        total = sum(reader.topics[t].count for t in (ir, vis))
        items: list[InputItem] = []
        stored = {ir: 0, vis: 0}
        too_large: dict[str, int] = {}
        with tqdm(total=total, desc="read bag", unit="msg") as bar:
            for topic, t_ns, raw, msgtype in reader.raw_messages([ir, vis]):
                ordinal = stored[topic]
                stored[topic] += 1
                bar.update(1)
                if len(raw) > max_message_bytes:  # refused before anything is decoded or copied
                    items.append(InputItem(-1, topic, msgtype, t_ns, 0, ordinal, len(raw), MESSAGE_TOO_LARGE))
                    too_large[topic] = too_large.get(topic, 0) + 1
                    continue
                try:
                    hdr = reader.typestore.deserialize_cdr(raw, msgtype).header
                except Exception as exc:  # malformed CDR: rosbags raises several types
                    reader.errors.append(f"topic {topic}: message at t={t_ns} ns cannot be decoded: {exc}")
                    continue
                items.append(InputItem(-1, topic, msgtype, t_ns, im.stamp_ns(hdr), ordinal, len(raw)))
        for topic, n in too_large.items():
            reader.errors.append(
                f"topic {topic}: {n} message(s) larger than {max_message_bytes} bytes dropped unread "
                f"({MESSAGE_TOO_LARGE}); raise --max-message-mb if such images are expected"
            )
        for topic, n in stored.items():
            if n != reader.topics[topic].count:
                note = (
                    f"{path}: the bag's index (metadata.yaml) lists {reader.topics[topic].count} messages on "
                    f"{topic} but {n} were read; the bag is incomplete or its metadata.yaml belongs to "
                    "another recording (`ros2 bag reindex` rewrites it)"
                )
                print(f"ivif replay: warning: {note}", file=sys.stderr)
                reader.errors.append(note)
        names = dict(enumerate(DEFAULT_CLASSES))
        ground_truth = read_boxes(reader, gt, names) if gt else {}
        union = union_topic_of(gt) if gt else None
        if union not in reader.topics or reader.topics[union].msgtype != im.DETECTION_ARRAY:
            union = None
        union_truth = read_boxes(reader, union, names) if union else {}
        # Pair names: std_msgs/Header on a ".../name" topic, frame_id = name, stamp = the visible stamp.
        name_topics = [t for t, i in reader.topics.items() if i.msgtype == im.HEADER and t.endswith("/name")]
        frame_names = {}
        if len(name_topics) == 1:
            frame_names = {im.stamp_ns(m.msg): m.msg.frame_id for m in reader.messages(name_topics, strict=False)}
        camera_k = {}
        for key, topic in info_topics.items():
            for _, _, raw, _ in reader.raw_messages([topic]):
                msg = reader.typestore.deserialize_cdr(raw, im.CAMERA_INFO)
                camera_k[key] = np.asarray(msg.k, np.float64).reshape(3, 3)
                break
        return BagInputs(
            Path(path),
            ir,
            vis,
            gt,
            items,
            ground_truth,
            [names.get(i, str(i)) for i in range(max(names) + 1)],
            camera_k,
            info_topics,
            frame_names,
            list(dict.fromkeys(reader.errors)),
            reader.typestore,
            union,
            union_truth,
            {t: i.count for t, i in reader.topics.items()},
        )
