"""The fusion node: IR + visible images in; fused image, semantic mask, detections and status out.

Topics (relative: namespace and remap them):
  in   ir/image_raw, visible/image_raw        sensor_msgs/Image (mono8, mono16, rgb8, bgr8, rgba8, bgra8, 32FC1)
       ir/camera_info, visible/camera_info    sensor_msgs/CameraInfo (optional; intrinsics for registration)
  out  fused/image                            sensor_msgs/Image rgb8, stamp and frame_id of the visible image
       semantic/mask                          sensor_msgs/Image mono8, class id per pixel
       detections                             ivif_ros/DetectionArray: the detector's boxes on the fused image
                                              (+ detections_2d, vision_msgs, if installed)
       fusion/status                          ivif_ros/FusionStatus, one per output frame
       /diagnostics                           diagnostic_msgs/DiagnosticArray: rate, stage latency, drops by reason

Threads: subscription and timer callbacks only decode (zero-copy), pair and hand over;
one worker thread runs the pipeline on the waiting complete pairs (``core.sync.BoundedHandover``),
so a slow model costs dropped pairs (counted as ``pipeline_busy``), never a growing
backlog. The logic lives in ``ivif_ros.core``; this file translates and wires.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from ivif_ros.core import sync
from ivif_ros.core.config import FusionConfig
from ivif_ros.core.image_codec import ImageFieldError, check_finite, image_to_array, to_rgb
from ivif_ros.core.ir_normalize import IrNormalizer
from ivif_ros.core.registration import Registration
from ivif_ros.datasets.paired import rgb_to_gray
from ivif_ros.errors import ConfigError, UserFacingError
from ivif_ros.msg import DetectionArray, FusionStatus
from ivif_ros.nodes import diagnostics as diag
from ivif_ros.nodes import messages
from ivif_ros.nodes.message_filters_pairing import POLICIES as MESSAGE_FILTERS_POLICIES
from ivif_ros.nodes.duplicates import DuplicateNameWatch
from ivif_ros.nodes.params import ConfigParameters

NODE_NAME = "ivif_fusion"
SECTIONS = ("sync", "registration", "ir_normalize", "pipeline", "engine", "dropout", "qos", "diagnostics")
CAMERA = {sync.IR: "ir", sync.VISIBLE: "visible"}
VISIBLE_ENCODINGS = ("mono8", "rgb8", "bgr8", "rgba8", "bgra8", "8UC1", "8UC3", "8UC4")


@dataclass(frozen=True)
class Frame:
    """A decoded input image (a zero-copy view of the message data) and when it arrived."""

    topic: str
    msg: Image
    array: np.ndarray
    arrival_ns: int  # steady clock


@dataclass(frozen=True)
class Job:
    mode: str
    ir: Frame | None
    vis: Frame | None
    ready_ns: int  # steady clock: pair complete (or single frame received)


def resolve_implementation(requested: str, policy: str = "approximate") -> str:
    """``auto`` -> ``message_filters`` when that package is importable and has ``policy``, else ``builtin``."""
    if requested != "auto":
        return requested
    if policy not in MESSAGE_FILTERS_POLICIES:
        return "builtin"
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return "builtin"
    return "message_filters"


class FusionNode(Node):
    def __init__(self, pipeline=None, **kwargs):
        """``pipeline``: an already built ``FusionPipeline`` (tests, the graph runner); else built from config."""
        super().__init__(NODE_NAME, **kwargs)
        self.params = ConfigParameters(self, SECTIONS, on_change=self._reconfigure, can_apply=self._can_apply)
        cfg: FusionConfig = self.params.config
        if pipeline is None:
            from ivif_ros.core.pipeline import FusionPipeline

            pipeline = FusionPipeline(cfg.pipeline)
        self.pipeline = pipeline
        self.backend = pipeline.engine.name
        self.registration = Registration(cfg.registration)
        self.ir_normalizer = IrNormalizer(cfg.ir_normalize)
        self.stats = diag.FrameStats()
        self.topics = {cam: self.resolve_topic_name(f"{name}/image_raw") for cam, name in CAMERA.items()}
        self._intrinsics: dict[int, np.ndarray] = {}
        self._visible_geometry: tuple[tuple[int, int], str] | None = None  # ((w, h), frame_id)
        self._frame_index = 0
        self._frame_ids: dict[int, str] = {}  # camera -> header.frame_id of its first valid image
        self._last_reject_log: dict[tuple[int, str], float] = {}  # (camera, field) -> monotonic s

        out_qos = messages.qos(cfg.qos.output_reliability, cfg.qos.output_depth)
        self.pub_fused = self.create_publisher(Image, "fused/image", out_qos)
        self.pub_mask = self.create_publisher(Image, "semantic/mask", out_qos)
        self.pub_dets = self.create_publisher(DetectionArray, "detections", out_qos)
        self.pub_vision = (
            self.create_publisher(messages.Detection2DArray, "detections_2d", out_qos)
            if messages.Detection2DArray is not None
            else None
        )
        self.pub_status = self.create_publisher(FusionStatus, "fusion/status", out_qos)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self.implementation = resolve_implementation(cfg.sync.implementation, cfg.sync.policy)
        self.policy = self._pairing(cfg)
        self.watchdog = sync.CameraWatchdog(int(cfg.dropout.timeout_s * 1e9), self._now_ns())
        self.mode = sync.FUSED
        self._lock = threading.Lock()  # pairing state: subscription callbacks vs the dropout timer
        in_qos = messages.qos(cfg.qos.input_reliability, cfg.qos.input_depth)
        for cam, name in CAMERA.items():
            self.create_subscription(Image, f"{name}/image_raw", lambda m, c=cam: self._on_image(c, m), in_qos)
        for cam, name in CAMERA.items():
            self.create_subscription(CameraInfo, f"{name}/camera_info", lambda m, c=cam: self._on_info(c, m), in_qos)

        self.mailbox = sync.BoundedHandover(cfg.sync.pipeline_depth)
        self._worker = threading.Thread(target=self._work, name="ivif_fusion_pipeline", daemon=True)
        self._worker.start()
        self.create_timer(cfg.dropout.check_period_s, self._check_cameras)
        self.create_timer(cfg.diagnostics.period_s, self._publish_diagnostics)
        choice = getattr(pipeline.engine, "choice", None)  # engines.selection.BackendChoice, when chosen by config
        self.backend_choice = choice.describe() if choice is not None else f"backend '{self.backend}'"
        self.duplicates = DuplicateNameWatch(self)
        self.get_logger().info(
            f"fusion node ready: {self.backend_choice}, precision {pipeline.engine.precision}, "
            f"pairing {self.implementation}/{cfg.sync.policy} "
            f"(slop {cfg.sync.slop_s * 1e3:.0f} ms, queue {cfg.sync.queue_size}), inputs "
            f"{self.topics[sync.IR]} + {self.topics[sync.VISIBLE]}"
        )

    # -- input --------------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _decode(self, cam: int, msg: Image) -> Frame | None:
        """Zero-copy decode; a message the graph cannot use is counted and logged (throttled), not raised."""
        topic = self.topics[cam]
        arrival = time.monotonic_ns()
        self.stats.count(f"received {CAMERA[cam]}")
        try:
            if cam == sync.VISIBLE and msg.encoding not in VISIBLE_ENCODINGS:
                raise ImageFieldError(
                    f"topic {topic}: field 'encoding' is {msg.encoding!r}; the visible camera "
                    f"must publish 8-bit images ({', '.join(VISIBLE_ENCODINGS)})",
                    "encoding",
                )
            array = image_to_array(msg, topic)
            if cam == sync.IR and array.ndim == 3 and (array.dtype != np.uint8 or array.shape[2] < 3):
                # IrNormalizer takes the luma of 8-bit colour; a 2-channel image has none (it crashed the worker)
                raise ImageFieldError(
                    f"topic {topic}: field 'encoding' is {msg.encoding!r}; a multi-channel IR "
                    "image must be 8-bit colour with 3 or 4 channels (publish mono8, mono16 or "
                    "32FC1 for thermal data)",
                    "encoding",
                )
            # Registration and the output frame belong to one camera: a topic that starts carrying
            # another frame_id (a second driver, a wrong remap) must not be fused as if it were the first.
            expected = self._frame_ids.setdefault(cam, msg.header.frame_id)
            if msg.header.frame_id != expected:
                raise ImageFieldError(
                    f"topic {topic}: field 'header.frame_id' is {msg.header.frame_id!r} but this "
                    f"topic carried {expected!r} so far; publish one camera per topic (or restart "
                    "the node after renaming the camera frame)",
                    "frame_id",
                )
        except ImageFieldError as exc:  # every way image_to_array and the checks above refuse a message
            self._reject(cam, exc.field, str(exc))
            return None
        if array.dtype.kind == "f" and not check_finite(array).ok:
            # Accepted: IrNormalizer maps NaN/-inf (dead pixels) to 0 and +inf to 255; counted so a dying sensor shows.
            self.stats.count(f"non-finite pixels {CAMERA[cam]}")
        return Frame(topic, msg, to_rgb(array, msg.encoding), arrival)

    def _reject(self, cam: int, field: str, text: str) -> None:
        """Count a rejected message (total and by field) and log it, at most once per throttle
        period per camera and field: rclpy's own throttle is per call site, so one noisy fault
        would hide every other."""
        name = CAMERA[cam]
        self.stats.count(f"rejected {name}: invalid image")
        self.stats.count(f"invalid {name}: {field}")
        now = time.monotonic()
        if now - self._last_reject_log.get((cam, field), -math.inf) >= self.params.config.diagnostics.log_throttle_s:
            self._last_reject_log[(cam, field)] = now
            self.get_logger().warning(
                f"{text} (message rejected; counted on /diagnostics as 'invalid {name}: {field}')"
            )

    def _on_image(self, cam: int, msg: Image) -> None:
        frame = self._decode(cam, msg)
        if frame is None:
            return
        with self._lock:
            self.watchdog.seen(cam, self._now_ns())
            self._update_mode()
            if self.mode == sync.FUSED:
                events = self.policy.add(cam, messages.stamp_ns(msg.header.stamp), frame)
                self._account(events)
                for ir, vis in events.matches:
                    self._submit(Job(sync.FUSED, ir.item, vis.item, time.monotonic_ns()))
            elif (self.mode, cam) in ((sync.IR_ONLY, sync.IR), (sync.VISIBLE_ONLY, sync.VISIBLE)):
                self._submit(
                    Job(
                        self.mode,
                        frame if cam == sync.IR else None,
                        frame if cam == sync.VISIBLE else None,
                        frame.arrival_ns,
                    )
                )

    def _pairing(self, cfg: FusionConfig):
        """The pairing policy: ``core.sync``'s, or message_filters' wrapped with the same accounting."""
        if self.implementation == "builtin":
            return sync.policy_from_config(cfg.sync)
        from ivif_ros.nodes.message_filters_pairing import FIXED_SETTINGS, pairing_from_config

        if cfg.sync.policy not in MESSAGE_FILTERS_POLICIES:
            raise ConfigError(
                f"sync.policy {cfg.sync.policy!r} needs sync.implementation builtin (or auto): "
                f"message_filters pairs only {' and '.join(MESSAGE_FILTERS_POLICIES)}"
            )
        ignored = [
            f"sync.{name}" for name in FIXED_SETTINGS if getattr(cfg.sync, name) != getattr(FusionConfig().sync, name)
        ]
        if ignored:
            self.get_logger().warning(
                f"{', '.join(ignored)} not used: pairing is message_filters "
                "(set sync.implementation: builtin to use them)"
            )
        return pairing_from_config(cfg.sync)

    def _on_info(self, cam: int, msg: CameraInfo) -> None:
        self._intrinsics[cam] = np.asarray(msg.k, np.float64).reshape(3, 3)
        if cam == sync.VISIBLE and self._visible_geometry is None and msg.width and msg.height:
            self._visible_geometry = ((msg.width, msg.height), msg.header.frame_id)

    def _account(self, events: sync.SyncEvents) -> None:
        self.stats.count("pairs matched", len(events.matches))
        for drop in events.drops:
            self.stats.count(f"drop {CAMERA[drop.entry.topic]}: {drop.reason}")

    def _submit(self, job: Job) -> None:
        displaced = self.mailbox.put(job)
        if displaced is not None:
            self.stats.count(f"dropped {displaced.mode}: {sync.PIPELINE_BUSY}")

    # -- camera dropout -------------------------------------------------------------------------
    def _check_cameras(self) -> None:
        with self._lock:
            self._update_mode()

    def _update_mode(self) -> None:
        """Switch between fused and single-camera output; callers hold ``self._lock``."""
        mode = self.watchdog.mode(self._now_ns())
        if mode == self.mode:
            return
        lost = [self.topics[c] for c in CAMERA if not self.watchdog.alive(c, self._now_ns())]
        if mode == sync.FUSED:
            self.get_logger().info(f"output mode {self.mode} -> {mode}: both cameras publish")
        else:  # rclpy ties a severity to a call site, hence two calls
            self.get_logger().warning(
                f"output mode {self.mode} -> {mode}: silent for more than "
                f"{self.watchdog.timeout_ns / 1e9:.2f} s: {', '.join(lost)}"
            )
        if self.policy is not None:
            self._account(self.policy.reset())
        self.mode = mode

    # -- processing (worker thread) ---------------------------------------------------------------
    def _work(self) -> None:
        while not self.mailbox.closed:
            job = self.mailbox.take()
            if job is None:
                continue
            try:
                self._process(job)
            except UserFacingError as exc:
                self.stats.count(f"failed {job.mode}: invalid input")
                self.get_logger().error(
                    f"frame not fused: {exc}", throttle_duration_sec=self.params.config.diagnostics.log_throttle_s
                )
            except Exception as exc:  # noqa: BLE001 - a bug or an exhausted resource must cost this frame, not
                # the worker: a dead worker leaves a node that subscribes, reports, and never publishes again.
                self.stats.count(f"failed {job.mode}: internal error")
                self.get_logger().error(
                    f"frame not fused: internal error {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                    throttle_duration_sec=self.params.config.diagnostics.log_throttle_s,
                )

    def _output_geometry(self, job: Job) -> tuple[tuple[int, int], str]:
        """Output size and frame: the visible image's; without one, the last known visible camera's."""
        if job.vis is not None:
            h, w = job.vis.array.shape[:2]
            self._visible_geometry = ((w, h), job.vis.msg.header.frame_id)
        if self._visible_geometry is not None:
            return self._visible_geometry
        h, w = job.ir.array.shape[:2]
        return (w, h), job.ir.msg.header.frame_id

    def _process(self, job: Job) -> None:
        t0 = time.monotonic_ns()
        (out_w, out_h), frame_id = self._output_geometry(job)
        ir = vis = None
        if job.ir is not None:
            ir_u8 = self.ir_normalizer(job.ir.array)
            t1 = time.monotonic_ns()
            ir = self.registration(
                ir_u8, (out_w, out_h), self._intrinsics.get(sync.IR), self._intrinsics.get(sync.VISIBLE)
            )
            t2 = time.monotonic_ns()
        else:
            t1 = t2 = time.monotonic_ns()
        if job.vis is not None:
            vis = job.vis.array
        # A lost camera is stood in for by the other one: fusing an image with itself returns it,
        # and the detection/segmentation heads still see a realistic input.
        result = self.pipeline.fuse(ir if ir is not None else _luma(vis), vis if vis is not None else ir)
        t3 = time.monotonic_ns()

        source = job.vis if job.vis is not None else job.ir
        header = messages.copy_header(source.msg.header)
        header.frame_id = frame_id
        # The images go out before the detector runs: a consumer of the fused image does not wait
        # for the boxes, which follow with the same stamp.
        self.pub_fused.publish(messages.image_msg(result.fused_rgb, "rgb8", header))
        self.pub_mask.publish(messages.image_msg(result.mask, "mono8", header))
        t4 = time.monotonic_ns()
        self.pipeline.add_detections(result)
        t5 = time.monotonic_ns()
        # The detector's boxes (core.pipeline); class names follow pipeline.class_map.
        names = self.pipeline.class_names
        self.pub_dets.publish(messages.detection_array(result.detections, names, header))
        if self.pub_vision is not None:
            self.pub_vision.publish(messages.vision_detection_array(result.detections, header))
        t6 = time.monotonic_ns()

        first = min(f.arrival_ns for f in (job.ir, job.vis) if f is not None)
        timings = {
            "sync_wait_ms": (job.ready_ns - first) / 1e6 if job.mode == sync.FUSED else 0.0,
            "register_ms": (t2 - t1) / 1e6,
            "preprocess_ms": (t1 - t0) / 1e6 + result.timings["pre_ms"],
            "infer_ms": result.timings["infer_ms"],
            "postprocess_ms": result.timings["post_ms"],
            "publish_ms": (t4 - t3 + t6 - t5) / 1e6,
            "total_ms": (t6 - job.ready_ns) / 1e6,
        }
        self.pub_status.publish(self._status(job, header, timings))
        self.stats.frame(timings)
        self.stats.count(f"frames {job.mode}")
        self._frame_index += 1

    def _status(self, job: Job, header, timings: dict[str, float]) -> FusionStatus:
        now = self._now_ns()

        def age_ms(frame: Frame | None) -> float:
            return (now - messages.stamp_ns(frame.msg.header.stamp)) / 1e6 if frame is not None else math.nan

        skew = (
            abs(messages.stamp_ns(job.ir.msg.header.stamp) - messages.stamp_ns(job.vis.msg.header.stamp)) / 1e6
            if job.mode == sync.FUSED
            else math.nan
        )
        return FusionStatus(
            header=header,
            frame_index=self._frame_index,
            mode=job.mode,
            ir_present=job.ir is not None,
            visible_present=job.vis is not None,
            ir_age_ms=age_ms(job.ir),
            visible_age_ms=age_ms(job.vis),
            pair_skew_ms=skew,
            backend=self.backend,
            **timings,
        )

    # -- diagnostics and parameters -----------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        cfg = self.params.config.diagnostics
        rate, medians, counts = self.stats.rate_hz(), self.stats.median_ms(), self.stats.snapshot_counts()
        problems = []
        if self.mode == sync.WAITING:
            level, problems = diag.ERROR, ["no camera is publishing"]
        else:
            level = diag.OK
            if self.mode != sync.FUSED:
                problems.append(f"camera lost, output is {self.mode}")
            if counts.get("frames " + self.mode, 0) > 5 and rate < cfg.min_rate_hz:
                problems.append(f"output rate {rate:.1f} Hz < {cfg.min_rate_hz:g} Hz")
            if medians.get("total_ms", 0.0) > cfg.max_latency_ms:
                problems.append(f"median latency {medians['total_ms']:.0f} ms > {cfg.max_latency_ms:g} ms")
            if problems:
                level = diag.WARN
        values = {
            "mode": self.mode,
            "backend": self.backend,
            "backend choice": self.backend_choice,
            "pairing": self.implementation,
            "rate_hz": rate,
            **{f"median {k}": v for k, v in medians.items()},
            **counts,
        }
        if self.policy is not None:
            with self._lock:
                pending = [e.topic for e in self.policy.pending()]
            values.update({f"pending {name}": pending.count(cam) for cam, name in CAMERA.items()})
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [
            diag.status(
                f"{self.get_fully_qualified_name()}: fusion",
                cfg.hardware_id,
                level,
                "; ".join(problems) or "fusing",
                values,
            )
        ]
        self.pub_diag.publish(array)

    def _can_apply(self, current: FusionConfig, updated: FusionConfig) -> None:
        """Refuse a sync setting that the running pairing implementation cannot honour."""
        if self.implementation != "message_filters":
            return
        from ivif_ros.nodes.message_filters_pairing import FIXED_SETTINGS

        for name, why in FIXED_SETTINGS.items():
            if getattr(updated.sync, name) != getattr(current.sync, name):
                raise ConfigError(
                    f"sync.{name} cannot be changed: this node pairs with message_filters ({why}). "
                    "Start the node with sync.implementation: builtin to use it"
                )

    def _reconfigure(self, cfg: FusionConfig) -> None:
        """Apply a parameter change (the read-only ones cannot change while running)."""
        with self._lock:
            sync.apply_config(self.policy, cfg.sync)  # message_filters' too (_can_apply refused the rest)
            self.watchdog.timeout_ns = int(cfg.dropout.timeout_s * 1e9)
        self.registration = Registration(cfg.registration)
        self.ir_normalizer = IrNormalizer(cfg.ir_normalize)
        self.pipeline.config = cfg.pipeline
        self.get_logger().info("parameters updated")

    def destroy_node(self) -> None:
        # rclpy's shutdown also destroys a node whose __init__ raised (e.g. the model file is
        # missing), before the worker existed: there is then nothing to stop.
        if hasattr(self, "_worker"):
            self.mailbox.close()
            self._worker.join(timeout=10.0)
        super().destroy_node()


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.ndim == 2 else rgb_to_gray(rgb)


def main(args=None) -> None:
    from ivif_ros.nodes.graph import spin_nodes

    raise SystemExit(spin_nodes([FusionNode], args))


if __name__ == "__main__":
    main()
