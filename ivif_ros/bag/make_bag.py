"""Turn a paired-folder image dataset into a rosbag2 bag that plays like two live cameras.

Each pair becomes one IR image (mono8) and one visible image (rgb8, or mono8 for grey
datasets) stamped like free-running cameras (rate, jitter, IR offset: see
``ivif_ros.bag.timing``), plus, when the dataset has boxes, its ground truth for detection
on the fused image as ``ivif_ros/msg/DetectionArray`` (the boxes drawn on fused images,
``labels_det/fusion``, when present, else the union of the IR and visible boxes; with fusion
labels the union goes on a second topic, ``<detections topic>_union``), and the pair name as a
``std_msgs/msg/Header`` (frame_id = name) so replay can match outputs to dataset frames.
The pairs are already registered, so no CameraInfo is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.sample import IR_FRAME, TOPICS, VIS_FRAME
from ivif_ros.bag.timing import TimingConfig, camera_times
from ivif_ros.bag.writer import BagWriter
from ivif_ros.datasets.paired import PairedDataset
from ivif_ros.errors import ConfigError

DEFAULT_CLASSES = ("person", "bicycle", "car")
UNION_SUFFIX = "_union"


def union_topic_of(detections_topic: str) -> str:
    """The topic of the IR/visible union boxes beside a ground-truth topic of fusion labels."""
    return detections_topic + UNION_SUFFIX


@dataclass(frozen=True)
class MakeBagOptions:
    split: str | Path | None = None
    storage: str = "mcap"
    compress: bool = False  # zstd MCAP chunks
    timing: TimingConfig = field(default_factory=TimingConfig)
    limit: int | None = None
    ir_topic: str = TOPICS["ir"]
    vis_topic: str = TOPICS["vis"]
    detections_topic: str = TOPICS["detections"]
    name_topic: str = TOPICS["name"]
    class_names: tuple[str, ...] = DEFAULT_CLASSES
    seed: int = 0  # timing jitter and drops

    def validate(self) -> None:
        if self.compress and self.storage != "mcap":
            raise ConfigError("--compress needs --storage mcap (chunk compression); sqlite3 bags are stored raw")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit {self.limit}: must be at least 1")
        topics = [self.ir_topic, self.vis_topic, self.detections_topic, self.name_topic]
        if len(set(topics)) != len(topics):
            raise ConfigError(f"topics must differ, got {topics}")
        bad = [t for t in topics if not t.startswith("/")]
        if bad:
            raise ConfigError(f"topic names must be absolute (start with '/'): {bad}")
        self.timing.validate()


@dataclass
class MakeBagResult:
    bag: Path
    pairs: int
    seconds: float
    bytes: int
    messages: dict[str, int]


def make_bag(
    data: str | Path,
    out: str | Path,
    opts: MakeBagOptions = MakeBagOptions(),
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> MakeBagResult:
    """Write the pairs of the dataset at ``data`` (optionally a ``split``) into the bag ``out``."""
    from tqdm import tqdm

    opts.validate()
    started = time.perf_counter()
    ds = PairedDataset(data, opts.split)
    n = len(ds) if opts.limit is None else min(len(ds), opts.limit)
    vis_times, ir_times = camera_times(n, opts.timing, np.random.default_rng(opts.seed))
    written = {t: 0 for t in (opts.ir_topic, opts.vis_topic, opts.detections_topic, opts.name_topic)}
    with BagWriter(out, storage=opts.storage, overwrite=overwrite, compress=opts.compress) as bag:
        ts = bag.typestore
        bag.set_custom_data("ivif_ros.source", str(Path(data).resolve()))
        if opts.split is not None:
            bag.set_custom_data("ivif_ros.split", str(Path(opts.split).resolve()))
        bag.add_topic(opts.ir_topic, im.IMAGE)
        bag.add_topic(opts.vis_topic, im.IMAGE)
        bag.add_topic(opts.name_topic, im.HEADER)
        union_topic = union_topic_of(opts.detections_topic) if ds.has_fusion_boxes else None
        if ds.has_boxes:
            bag.add_topic(opts.detections_topic, im.DETECTION_ARRAY)
            bag.set_custom_data("ivif_ros.ground_truth", "fusion" if ds.has_fusion_boxes else "union")
        if union_topic:
            bag.add_topic(union_topic, im.DETECTION_ARRAY)
            written[union_topic] = 0

        def put(topic, t_ns, msg):
            bag.write(topic, t_ns, msg)
            written[topic] += 1

        for i in tqdm(range(n), desc="ivif make-bag", unit="pair", disable=not progress):
            pair = ds[i]
            if ir_times.kept[i]:
                stamp = int(ir_times.stamp_ns[i])
                put(opts.ir_topic, int(ir_times.receive_ns[i]), im.make_image(ts, pair.ir, "mono8", stamp, IR_FRAME))
            if not vis_times.kept[i]:
                continue
            stamp, recv = int(vis_times.stamp_ns[i]), int(vis_times.receive_ns[i])
            encoding = "rgb8" if pair.vis.ndim == 3 else "mono8"
            put(opts.vis_topic, recv, im.make_image(ts, pair.vis, encoding, stamp, VIS_FRAME))
            put(opts.name_topic, recv, im.header(ts, stamp, pair.name))
            boxes = pair.ground_truth
            if boxes is not None:
                put(
                    opts.detections_topic,
                    recv,
                    im.make_detection_array(ts, stamp, VIS_FRAME, boxes.xyxy, boxes.cls, list(opts.class_names)),
                )
            if union_topic and pair.boxes is not None:
                put(
                    union_topic,
                    recv,
                    im.make_detection_array(
                        ts, stamp, VIS_FRAME, pair.boxes.xyxy, pair.boxes.cls, list(opts.class_names)
                    ),
                )
    out = Path(out)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    return MakeBagResult(out, n, time.perf_counter() - started, size, {t: c for t, c in written.items() if c})
