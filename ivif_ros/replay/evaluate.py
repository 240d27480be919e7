"""Score a replay from its output bag: one evaluation for offline and live mode alike.

Both modes end with an output bag holding what the pipeline published. Reading that bag
back (rather than using in-memory results) means the numbers describe the messages a
consumer would get, the bag is proven to read back with rosbags, and offline and live
runs are measured by the same code.

Nothing image-sized is held: the output bag's small messages are read first, then the
scored frames' images are read, inputs and outputs side by side in stamp order, and let go.

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
from ivif_ros.replay.inputs import BagInputs, stream_pairs
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
    """Output messages by topic and header stamp (only the topics read in full), and the
    stamps present on every output topic."""

    by_stamp: dict[str, dict[int, object]] = field(default_factory=dict)
    stamps: dict[str, set[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def get(self, topic: str, stamp_ns: int):
        return self.by_stamp.get(topic, {}).get(stamp_ns)

    def is_fused(self, topics: "OutputTopics", stamp_ns: int) -> bool:
        """A fused image with this stamp that came from a pair: a single-camera frame
        (``ir_only``/``visible_only`` after a camera dropout) carries the same stamp."""
        status = self.get(topics.status, stamp_ns)
        return stamp_ns in self.stamps.get(topics.fused, ()) and (status is None or status.mode == FUSED)

    def single_camera_frames(self, topics: "OutputTopics") -> dict[str, int]:
        """Output frames per FusionStatus mode other than ``fused``."""
        modes: dict[str, int] = {}
        for status in self.by_stamp.get(topics.status, {}).values():
            if status.mode != FUSED:
                modes[status.mode] = modes.get(status.mode, 0) + 1
        return modes


def read_outputs(path: Path, topics: OutputTopics, keep: tuple[str, ...] | None = None) -> Outputs:
    """The output bag's stamps per topic, and the messages of the ``keep`` topics (all when None).
    The replay keeps only the small ones (status, detections); images are streamed when scored."""
    out = Outputs()
    with BagReader(path) as reader:
        present = [t for t in topics.all() if t in reader.topics]
        for m in reader.messages(present, strict=False):
            stamp = im.stamp_ns(m.msg.header)
            out.stamps.setdefault(m.topic, set()).add(stamp)
            if keep is None or m.topic in keep:
                out.by_stamp.setdefault(m.topic, {})[stamp] = m.msg
        out.errors = list(reader.errors)
    return out


MAX_HELD = 32  # output frames read ahead of the evaluation at most (a topic that stops early)


class OutputImages:
    """The fused image and mask of chosen stamps, read from the output bag as the evaluation
    asks for them in stamp order; at most the frames the bag holds out of order are kept."""

    def __init__(self, path: Path, topics: OutputTopics, wanted: set[int]):
        self.topics, self.wanted = topics, wanted
        self._held: dict[int, dict[str, object]] = {}
        self._reader = BagReader(path)
        self._reader.open()
        present = [t for t in (topics.fused, topics.mask) if t in self._reader.topics]
        self._newest = {t: -1 for t in present}  # per topic: the newest stamp read so far
        self._messages = self._reader.messages(present, strict=False) if present else None

    def get(self, stamp_ns: int) -> tuple[object | None, object | None]:
        """``(fused, mask)`` messages of ``stamp_ns`` (None when absent). Stamps must be asked in
        increasing order: frames older than ``stamp_ns`` are let go. Each topic is read until it
        is past ``stamp_ns`` (a topic's messages come in stamp order; topics may interleave)."""
        while self._messages is not None and min(self._newest.values()) <= stamp_ns and len(self._held) < MAX_HELD:
            m = next(self._messages, None)
            if m is None:
                self._messages = None
                break
            stamp = im.stamp_ns(m.msg.header)
            self._newest[m.topic] = max(self._newest[m.topic], stamp)
            if stamp in self.wanted and stamp >= stamp_ns:
                self._held.setdefault(stamp, {})[m.topic] = m.msg
        frame = self._held.pop(stamp_ns, {})
        for old in [s for s in self._held if s < stamp_ns]:
            del self._held[old]
        return frame.get(self.topics.fused), frame.get(self.topics.mask)

    def close(self) -> None:
        if self._messages is not None:
            self._messages.close()
        self._reader.close()


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
    out_bag: Path,
    topics: OutputTopics,
    cfg,
    *,
    metrics_every: int,
    n_samples: int,
    missing_reason: str,
    receive_ns: dict[int, int] | None = None,
    publish_ns: dict[int, int] | None = None,
    progress=None,
    stop=None,
) -> tuple[list[FrameRecord], dict | None, list[SampleFrame], Outputs]:
    """Mark every pair fused or dropped in ``ledger`` and score the fused ones.

    Two passes, neither holding images: the output bag's small messages (status, detections)
    give every frame's record and the mAP inputs; then the scored frames' images are read,
    inputs and outputs side by side in stamp order, scored and let go (a sample frame's are
    kept for the report). ``receive_ns`` (fused stamp -> recorder receive time) and
    ``publish_ns`` (input message id -> publish time), both monotonic ns of one process, give
    end-to-end latency in live mode. A raised ``stop`` ends the scoring early (partial).
    """
    outputs = read_outputs(out_bag, topics, keep=(topics.status, topics.detections))
    fused_pairs = []
    for pid, p in enumerate(ledger.pairs):
        if outputs.is_fused(topics, p.stamp_ns):
            fused_pairs.append(pid)
            ledger.fused(pid)
        else:
            ledger.drop_pair(pid, missing_reason)
    frames: list[FrameRecord] = []
    boxes: dict[int, tuple] = {}  # fused index -> (xyxy, scores, cls) of the sample frames
    preds, gts, union_preds, union_gts = [], [], [], []
    for index, pid in enumerate(fused_pairs):
        p = ledger.pairs[pid]
        vis_item = inputs.items[p.vis]  # ledger ids are item positions
        rec = FrameRecord(index, p.stamp_ns, name=inputs.frame_names.get(vis_item.stamp_ns, ""))
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
        frames.append(rec)
        boxes[index] = (xyxy, scores, cls)
    wanted_samples = sample_indices(len(fused_pairs), n_samples)
    boxes = {i: b for i, b in boxes.items() if i in wanted_samples}
    samples = score_images(
        inputs, ledger, fused_pairs, frames, out_bag, topics, cfg, metrics_every, wanted_samples, boxes, progress, stop
    )
    if stop is not None and stop.requested:
        scored = sum(bool(f.metrics) for f in frames)
        outputs.errors.append(f"interrupted by {stop.signal_name} while scoring: {scored} frame(s) scored")
    detection = detection_summary(preds, gts, inputs.class_names)
    if detection is not None:
        # a bag with a union topic beside its ground truth carries the fusion labels (ivif make-bag)
        detection["ground_truth"] = "fusion labels" if inputs.union_topic else "bag ground truth"
        detection["union"] = detection_summary(union_preds, union_gts, inputs.class_names)
    return frames, detection, samples, outputs


def score_images(
    inputs, ledger, fused_pairs, frames, out_bag, topics, cfg, metrics_every, wanted_samples, boxes, progress, stop
) -> list[SampleFrame]:
    """Fusion metrics of every ``metrics_every``-th fused frame and the sample frames' images.

    The IR is rebuilt exactly as the pipeline saw it: normalised in frame order (the normaliser
    smooths its window across frames, so every fused pair's IR passes through it), then warped
    onto the visible grid.
    """
    from ivif_ros.metrics.contrast import CONTRAST, contrast_retention
    from ivif_ros.metrics.fusion import fusion_metrics

    normalizer, registration = IrNormalizer(cfg.ir_normalize), Registration(cfg.registration)
    scored = {i for i in range(len(fused_pairs)) if i % metrics_every == 0}
    wanted = scored | wanted_samples
    if progress is not None:
        progress.reset(total=len(fused_pairs))
    samples: list[SampleFrame] = []
    images = OutputImages(out_bag, topics, {ledger.pairs[fused_pairs[i]].stamp_ns for i in wanted})
    pairs = stream_pairs(inputs, [ledger.pairs[pid] for pid in fused_pairs])
    try:
        for index, ir_item, ir_cdr, vis_item, vis_cdr in pairs:
            if stop is not None and stop.requested:
                break
            ir_u8 = normalizer(inputs.decode(ir_item, ir_cdr))
            if progress is not None:
                progress.update(1)
            if index not in wanted:
                continue
            rec = frames[index]
            fused_msg, mask_msg = images.get(rec.stamp_ns)
            if fused_msg is None:  # the output bag lost it after the first pass read it
                continue
            fused_rgb = to_rgb(im.image_to_array(fused_msg, topics.fused), fused_msg.encoding)
            vis = inputs.decode(vis_item, vis_cdr)
            ir = registration(
                ir_u8, (vis.shape[1], vis.shape[0]), inputs.camera_k.get("ir"), inputs.camera_k.get("vis")
            )
            if index in scored:
                fused_y, vis_y = rgb_to_y_u8(fused_rgb), rgb_to_y_u8(vis)
                rec.metrics = fusion_metrics(fused_y, ir, vis_y)
                rec.metrics[CONTRAST] = contrast_retention(fused_y, vis_y)
            if index in wanted_samples:
                mask = im.image_to_array(mask_msg, topics.mask).copy() if mask_msg is not None else None
                xyxy, scores, cls = boxes[index]
                names = inputs.class_names
                labels = [f"{names[c] if c < len(names) else c} {s:.2f}" for c, s in zip(cls, scores)]
                gt = inputs.ground_truth.get(vis_item.stamp_ns) if inputs.gt_topic else None
                samples.append(
                    SampleFrame(
                        rec.stamp_ns,
                        ir,
                        vis,
                        np.ascontiguousarray(fused_rgb),
                        mask,
                        xyxy,
                        labels,
                        gt.xyxy if gt is not None else None,
                        rec.name,
                    )
                )
    finally:
        pairs.close()
        images.close()
    return samples


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
