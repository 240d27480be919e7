"""Offline replay: the fusion node's per-frame work, run over the bag's pairs as fast as it can.

Each pair goes through the same steps, in the same order and with the same core objects,
as ``FusionNode._process``: IR normalisation (stateful, so frame order matters), registration
onto the visible grid, ``FusionPipeline.process``, then the node's four outputs (the detections
are the detector's boxes, named by ``pipeline.class_map`` as the node names them). The output
bag is written with rosbags (no ROS runtime needed), each message at its visible input's
receive time so the output lines up with the input bag.

The pairs' messages are read from the bag as the loop reaches them and each output is
written as it is made, so memory holds a pair at a time; the output bag is written in
finished files (:class:`SegmentedBagWriter`), so an interruption leaves a readable bag.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.segmented_writer import DEFAULT_SEGMENT_S, SegmentedBagWriter
from ivif_ros.core.ir_normalize import IrNormalizer
from ivif_ros.core.registration import Registration
from ivif_ros.core.sync import FUSED
from ivif_ros.errors import UserFacingError
from ivif_ros.replay.accounting import MessageLedger
from ivif_ros.replay.evaluate import FUSION_STATUS, OutputTopics
from ivif_ros.replay.inputs import BagInputs, stream_pairs
from ivif_ros.replay.interrupt import Interrupted, StopFlag


def run_offline(
    inputs: BagInputs,
    ledger: MessageLedger,
    cfg,
    topics: OutputTopics,
    out_bag: Path,
    storage: str,
    segment_s: float = DEFAULT_SEGMENT_S,
    stop: StopFlag | None = None,
) -> tuple[list[str], float]:
    """Fuse every pair of ``ledger`` and write the output bag. Returns the per-frame errors
    (a pair that fails is left without output; evaluation drops it as ``pipeline_error``) and
    the seconds the frame loop took (throughput excludes building the engine). A raised
    ``stop`` (SIGINT/SIGTERM) ends the loop between pairs: the bag is closed with what was
    fused and the interruption is one of the errors."""
    from tqdm import tqdm

    from ivif_ros.core.pipeline import FusionPipeline

    stop = stop or StopFlag()
    pipeline = FusionPipeline(cfg.pipeline)
    normalizer, registration = IrNormalizer(cfg.ir_normalize), Registration(cfg.registration)
    k_ir, k_vis = inputs.camera_k.get("ir"), inputs.camera_k.get("vis")
    errors: list[str] = []
    started = time.monotonic()
    done = 0
    with SegmentedBagWriter(out_bag, storage=storage, segment_s=segment_s, overwrite=True) as bag:
        store = bag.typestore
        Status = store.types[FUSION_STATUS]
        bag.add_topic(topics.fused, im.IMAGE)
        bag.add_topic(topics.mask, im.IMAGE)
        bag.add_topic(topics.detections, im.DETECTION_ARRAY)
        bag.add_topic(topics.status, FUSION_STATUS)
        pairs = stream_pairs(inputs, ledger.pairs)
        try:
            for frame_index, ir_item, ir_cdr, vis_item, vis_cdr in tqdm(
                pairs, total=len(ledger.pairs), desc="fuse (offline)", unit="pair"
            ):
                done = frame_index
                stop.check()
                try:
                    t0 = time.monotonic_ns()
                    ir_msg, ir_raw = inputs.decode_msg(ir_item, ir_cdr)
                    vis_msg, vis = inputs.decode_msg(vis_item, vis_cdr)
                    ir_u8 = normalizer(ir_raw)
                    t1 = time.monotonic_ns()
                    ir = registration(ir_u8, (vis.shape[1], vis.shape[0]), k_ir, k_vis)
                    t2 = time.monotonic_ns()
                    result = pipeline.process(ir, vis)
                    t3 = time.monotonic_ns()
                except UserFacingError as exc:
                    errors.append(f"pair at stamp {ledger.pairs[frame_index].stamp_ns}: not fused: {exc}")
                    continue
                hdr_ns, frame_id = im.stamp_ns(vis_msg.header), vis_msg.header.frame_id
                log_ns = vis_item.log_ns
                bag.write(topics.fused, log_ns, im.make_image(store, result.fused_rgb, "rgb8", hdr_ns, frame_id))
                bag.write(topics.mask, log_ns, im.make_image(store, result.mask, "mono8", hdr_ns, frame_id))
                d = result.detections
                bag.write(
                    topics.detections,
                    log_ns,
                    im.make_detection_array(
                        store, hdr_ns, frame_id, d.xyxy, d.class_ids, list(pipeline.class_names), d.scores
                    ),
                )
                t4 = time.monotonic_ns()
                bag.write(
                    topics.status,
                    log_ns,
                    Status(
                        header=im.header(store, hdr_ns, frame_id),
                        frame_index=frame_index,
                        mode=FUSED,
                        ir_present=True,
                        visible_present=True,
                        ir_age_ms=math.nan,
                        visible_age_ms=math.nan,
                        pair_skew_ms=abs(ir_item.stamp_ns - vis_item.stamp_ns) / 1e6,
                        backend=pipeline.engine.name,
                        sync_wait_ms=0.0,  # offline: both images are at hand, nothing waits
                        register_ms=(t2 - t1) / 1e6,
                        preprocess_ms=(t1 - t0) / 1e6 + result.timings["pre_ms"],
                        infer_ms=result.timings["infer_ms"],
                        postprocess_ms=result.timings["post_ms"],
                        publish_ms=(t4 - t3) / 1e6,
                        total_ms=(t4 - t0) / 1e6,
                    ),
                )
        except Interrupted as exc:
            errors.append(f"{exc}: stopped after {done} of {len(ledger.pairs)} pairs")
        finally:
            pairs.close()
    return errors, time.monotonic() - started
