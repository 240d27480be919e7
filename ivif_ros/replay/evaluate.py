"""Score a replay from its output bag: one evaluation for offline and live mode alike.

Both modes end with an output bag holding what the pipeline published. Reading that bag
back (rather than using in-memory results) means the numbers describe the messages a
consumer would get, the bag is proven to read back with rosbags, and offline and live
runs are measured by the same code.

Outputs are matched to input pairs by header stamp (the fused frame carries the visible
image's stamp, see ``FusionStatus.msg``). A pair with no fused frame is dropped with the
reason the caller gives (``no_output`` live, ``pipeline_error`` offline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.reader import BagReader
from ivif_ros.core.color import rgb_to_y_u8
from ivif_ros.core.image_codec import to_rgb
from ivif_ros.core.ir_normalize import IrNormalizer
from ivif_ros.core.registration import Registration
from ivif_ros.core.sync import FUSED
from ivif_ros.replay.accounting import MessageLedger
from ivif_ros.replay.inputs import BagInputs
from ivif_ros.replay.summary import FrameRecord
from ivif_ros.report.replay_report import SampleFrame

FUSION_STATUS = "ivif_ros/msg/FusionStatus"
DIAGNOSTICS = "/diagnostics"
# FusionStatus timing fields -> stage names in summary.json / frames.csv.
STATUS_STAGES = ("sync_wait", "register", "preprocess", "infer", "postprocess", "publish", "total")


@dataclass(frozen=True)
class OutputTopics:
    """Topics of the node graph that a replay records (names relative to the graph's namespace)."""

    fused: str = "/fused/image"
    mask: str = "/semantic/mask"
    detections: str = "/detections"
    status: str = "/fusion/status"

    def all(self) -> list[str]:
        return [self.fused, self.mask, self.detections, self.status]


@dataclass
class Outputs:
    """Output messages by topic and header stamp; ``log_ns`` is when they were recorded."""

    by_stamp: dict[str, dict[int, object]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def get(self, topic: str, stamp_ns: int):
        return self.by_stamp.get(topic, {}).get(stamp_ns)

    def is_fused(self, topics: "OutputTopics", stamp_ns: int) -> bool:
        """A fused image with this stamp that came from a pair: a single-camera frame
        (``ir_only``/``visible_only`` after a camera dropout) carries the same stamp."""
        status = self.get(topics.status, stamp_ns)
        return self.get(topics.fused, stamp_ns) is not None and (status is None or status.mode == FUSED)

    def single_camera_frames(self, topics: "OutputTopics") -> dict[str, int]:
        """Output frames per FusionStatus mode other than ``fused``."""
        modes: dict[str, int] = {}
        for status in self.by_stamp.get(topics.status, {}).values():
            if status.mode != FUSED:
                modes[status.mode] = modes.get(status.mode, 0) + 1
        return modes


def read_outputs(path: Path, topics: OutputTopics) -> Outputs:
    out = Outputs()
    with BagReader(path) as reader:
        present = [t for t in topics.all() if t in reader.topics]
        for m in reader.messages(present, strict=False):
            out.by_stamp.setdefault(m.topic, {})[im.stamp_ns(m.msg.header)] = m.msg
        out.errors = list(reader.errors)
    return out


def node_counters(path: Path, topic: str = DIAGNOSTICS) -> dict[str, int]:
    """The graph's own counters (received, matched, fused, dropped by reason) from the last
    ``/diagnostics`` message recorded (live mode; cumulative since the graph started). They
    say whether every published image arrived, and why a pair got no output, e.g.
    ``pipeline_busy`` when inference was slower than the cameras."""
    counters: dict[str, int] = {}
    with BagReader(path) as reader:
        if topic not in reader.topics:
            return counters
        last = None
        for m in reader.messages([topic], strict=False):
            last = m.msg
    for status in last.status if last is not None else []:
        for kv in status.values:
            if kv.value.isdigit() and not kv.key.startswith(("median", "pending")):
                counters[kv.key] = int(kv.value)
    return counters


def auto_metrics_every(pairs: int, target: int = 200) -> int:
    """Every frame for small bags; about ``target`` scored frames for large ones."""
    return max(1, -(-pairs // target))


def sample_indices(n: int, k: int) -> set[int]:
    return set(np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist()) if n and k else set()


def evaluate(
    inputs: BagInputs,
    ledger: MessageLedger,
    outputs: Outputs,
    topics: OutputTopics,
    cfg,
    *,
    metrics_every: int,
    n_samples: int,
    missing_reason: str,
    receive_ns: dict[int, int] | None = None,
    publish_ns: dict[int, int] | None = None,
    progress=None,
) -> tuple[list[FrameRecord], dict | None, list[SampleFrame]]:
    """Mark every pair fused or dropped in ``ledger`` and score the fused ones.

    ``receive_ns`` (fused stamp -> recorder receive time) and ``publish_ns`` (input message
    id -> publish time), both monotonic ns of one process, give end-to-end latency in live mode.
    """
    from ivif_ros.metrics.contrast import CONTRAST, contrast_retention
    from ivif_ros.metrics.fusion import fusion_metrics

    normalizer, registration = IrNormalizer(cfg.ir_normalize), Registration(cfg.registration)
    fused_pairs = []
    for pid, p in enumerate(ledger.pairs):
        if outputs.is_fused(topics, p.stamp_ns):
            fused_pairs.append(pid)
        else:
            ledger.drop_pair(pid, missing_reason)
    if progress is not None:
        progress.reset(total=len(fused_pairs))
    wanted_samples = sample_indices(len(fused_pairs), n_samples)
    frames: list[FrameRecord] = []
    samples: list[SampleFrame] = []
    preds, gts, union_preds, union_gts = [], [], [], []
    for index, pid in enumerate(fused_pairs):
        p = ledger.pairs[pid]
        ledger.fused(pid)
        ir_item, vis_item = inputs.items[p.ir], inputs.items[p.vis]  # ledger ids are item positions
        fused_msg = outputs.get(topics.fused, p.stamp_ns)
        fused_rgb = to_rgb(im.image_to_array(fused_msg, topics.fused), fused_msg.encoding)
        rec = FrameRecord(index, p.stamp_ns, name=inputs.frame_names.get(vis_item.stamp_ns, ""))
        vis = inputs.decode(vis_item)
        # Registered IR exactly as the pipeline saw it: normalised in frame order (the
        # normaliser smooths its window across frames), then warped onto the visible grid.
        ir = registration(
            normalizer(inputs.decode(ir_item)),
            (vis.shape[1], vis.shape[0]),
            inputs.camera_k.get("ir"),
            inputs.camera_k.get("vis"),
        )
        if index % metrics_every == 0:
            fused_y, vis_y = rgb_to_y_u8(fused_rgb), rgb_to_y_u8(vis)
            rec.metrics = fusion_metrics(fused_y, ir, vis_y)
            rec.metrics[CONTRAST] = contrast_retention(fused_y, vis_y)
        status = outputs.get(topics.status, p.stamp_ns)
        if status is not None:
            rec.stage_ms = {s: float(getattr(status, f"{s}_ms")) for s in STATUS_STAGES}
        if receive_ns is not None and publish_ns is not None and p.stamp_ns in receive_ns:
            sent = max(publish_ns.get(p.ir, 0), publish_ns.get(p.vis, 0))
            rec.end_to_end_ms = (receive_ns[p.stamp_ns] - sent) / 1e6
        det = outputs.get(topics.detections, p.stamp_ns)
        xyxy, cls, scores = (
            im.detections_to_arrays(det)
            if det is not None
            else (np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
        )
        rec.detections = len(cls)
        gt = inputs.ground_truth.get(vis_item.stamp_ns) if inputs.gt_topic else None
        if gt is not None:
            rec.ground_truth = len(gt.cls)
            preds.append((xyxy, scores, cls))
            gts.append((gt.xyxy, gt.cls))
        union = inputs.union_truth.get(vis_item.stamp_ns) if inputs.union_topic else None
        if union is not None:
            union_preds.append((xyxy, scores, cls))
            union_gts.append((union.xyxy, union.cls))
        if index in wanted_samples:
            mask_msg = outputs.get(topics.mask, p.stamp_ns)
            mask = im.image_to_array(mask_msg, topics.mask) if mask_msg is not None else None
            names = inputs.class_names
            labels = [f"{names[c] if c < len(names) else c} {s:.2f}" for c, s in zip(cls, scores)]
            samples.append(
                SampleFrame(
                    p.stamp_ns, ir, vis, fused_rgb, mask, xyxy, labels, gt.xyxy if gt is not None else None, rec.name
                )
            )
        frames.append(rec)
        if progress is not None:
            progress.update(1)
    detection = detection_summary(preds, gts, inputs.class_names)
    if detection is not None:
        # a bag with a union topic beside its ground truth carries the fusion labels (ivif make-bag)
        detection["ground_truth"] = "fusion labels" if inputs.union_topic else "bag ground truth"
        detection["union"] = detection_summary(union_preds, union_gts, inputs.class_names)
    return frames, detection, samples


def detection_summary(preds, gts, class_names: list[str]) -> dict | None:
    """COCO-style mAP over the frames that have ground truth (None when the bag has none)."""
    if not gts:
        return None
    from ivif_ros.metrics.detection import evaluate_detections

    top = max(
        [len(class_names) - 1]
        + [int(c.max()) for _, _, c in preds if len(c)]
        + [int(c.max()) for _, c in gts if len(c)]
    )
    names = list(class_names) + [str(i) for i in range(len(class_names), top + 1)]
    res = evaluate_detections(preds, gts, len(names), names)

    def num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    return {
        "mAP50": num(res["map50"]),
        "mAP50_95": num(res["map50_95"]),
        "frames": len(gts),
        "ground_truth_boxes": int(sum(len(c) for _, c in gts)),
        "detections": int(sum(len(c) for _, _, c in preds)),
        "per_class": {
            k: {"AP50": num(v["ap50"]), "AP50_95": num(v["ap50_95"]), "ground_truth": v["num_gt"]}
            for k, v in res["per_class"].items()
        },
    }
