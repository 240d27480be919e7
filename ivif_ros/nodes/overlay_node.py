"""The overlay node: visualisation downstream of the fusion node, off its critical path.

Topics (relative):
  in   fused/image (rgb8), semantic/mask (mono8), detections (ivif_ros/DetectionArray)
  out  semantic/color     rgb8: class colours blended over the fused image
       detections/image   rgb8: the fused image with the boxes and class names drawn
                          (when overlay.draw_detections)
       /diagnostics       diagnostic_msgs/DiagnosticArray: overlay rate, frames drawn and
                          skipped, boxes skipped, unpaired inputs dropped by reason

The three inputs of a frame carry the same header stamp (the fusion node copies the
visible image's), so they are paired with the exact-time policy of ``core.sync``.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image

from ivif_ros.core import postprocess as post
from ivif_ros.core import sync
from ivif_ros.core.config import FusionConfig
from ivif_ros.core.image_codec import image_to_array
from ivif_ros.errors import UserFacingError
from ivif_ros.msg import DetectionArray
from ivif_ros.nodes import diagnostics as diag
from ivif_ros.nodes import messages
from ivif_ros.nodes.params import ConfigParameters

NODE_NAME = "ivif_overlay"
SELECTED = (
    "overlay",
    "qos",
    "diagnostics.log_throttle_s",
    "diagnostics.period_s",
    "diagnostics.hardware_id",
    "pipeline.palette",
    "pipeline.overlay_alpha",
)
FUSED, MASK, DETECTIONS = 0, 1, 2
INPUT_NAMES = {FUSED: "fused/image", MASK: "semantic/mask", DETECTIONS: "detections"}


def draw_detections(rgb: np.ndarray, detections: DetectionArray, palette: np.ndarray) -> tuple[np.ndarray, int]:
    """Boxes and ``class score`` labels on a copy of ``rgb``; colours are the classes' semantic colours.

    The detections topic is open to any publisher, so a box with a non-finite corner is skipped
    (their number is returned) and the others are clipped to just outside the image: OpenCV
    needs C ints, and a box far off-image draws nothing anyway.
    """
    out = rgb.copy()
    h, w = out.shape[:2]
    skipped = 0
    for det in detections.detections:  # at most pipeline.top_k boxes from the fusion node
        corners = np.array([det.x_min, det.y_min, det.x_max, det.y_max], np.float64)
        if not np.isfinite(corners).all():
            skipped += 1
            continue
        x0, y0, x1, y1 = np.clip(np.round(corners), -1, [w, h, w, h]).astype(int).tolist()
        # semantic class id = detection class id + 1 (docs/contracts.md), so boxes match the mask colours
        colour = tuple(int(c) for c in palette[min(det.class_id + 1, len(palette) - 1)])
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        cv2.putText(
            out,
            f"{det.class_name[:40]} {det.score:.2f}",
            (x0, max(y0 - 4, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            colour,
            1,
            cv2.LINE_AA,
        )
    return out, skipped


class OverlayNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.params = ConfigParameters(self, SELECTED, on_change=self._reconfigure)
        cfg: FusionConfig = self.params.config
        self._palette = post.palette_for(len(post.PALETTES[cfg.pipeline.palette]), cfg.pipeline.palette)
        out_qos = messages.qos(cfg.qos.output_reliability, cfg.qos.output_depth)
        # The fusion node publishes reliably; subscribing reliably here loses no overlay frame.
        in_qos = messages.qos("reliable", cfg.qos.output_depth)
        self.pub_color = self.create_publisher(Image, "semantic/color", out_qos)
        self.pub_boxes = (
            self.create_publisher(Image, "detections/image", out_qos) if cfg.overlay.draw_detections else None
        )
        inputs = 3 if cfg.overlay.draw_detections else 2
        self.policy = sync.ExactTimePolicy(inputs, cfg.overlay.queue_size, time_jump_reset_ns=1_000_000_000)
        self.stats = diag.FrameStats()
        self._skips_reported = 0
        self._last_problem = ""
        self._problem_lock = threading.Lock()
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(cfg.diagnostics.period_s, self._publish_diagnostics)
        self.create_subscription(Image, "fused/image", lambda m: self._on_input(FUSED, m), in_qos)
        self.create_subscription(Image, "semantic/mask", lambda m: self._on_input(MASK, m), in_qos)
        if inputs == 3:
            self.create_subscription(DetectionArray, "detections", lambda m: self._on_input(DETECTIONS, m), in_qos)

    def _on_input(self, index: int, msg) -> None:
        events = self.policy.add(index, messages.stamp_ns(msg.header.stamp), msg)
        for drop in events.drops:  # an input whose partners never came (or came out of order)
            self.stats.count(f"drop {INPUT_NAMES[drop.entry.topic]}: {drop.reason}")
        for match in events.matches:
            try:
                self._publish(*(e.item for e in match))
                self.stats.frame({})
                self.stats.count("frames drawn")
            except UserFacingError as exc:
                self.stats.count("frames skipped")
                with self._problem_lock:
                    self._last_problem = str(exc)
                self.get_logger().warning(f"overlay skipped: {exc}", throttle_duration_sec=self._throttle_s)

    @property
    def _throttle_s(self) -> float:
        return self.params.config.diagnostics.log_throttle_s

    def _publish(self, fused_msg: Image, mask_msg: Image, dets_msg: DetectionArray | None = None) -> None:
        fused = image_to_array(fused_msg, self.resolve_topic_name("fused/image"))
        mask = image_to_array(mask_msg, self.resolve_topic_name("semantic/mask"))
        if fused_msg.encoding != "rgb8" or mask_msg.encoding != "mono8" or fused.shape[:2] != mask.shape:
            raise UserFacingError(
                f"expected fused/image rgb8 and semantic/mask mono8 of one size, got "
                f"{fused_msg.encoding} {fused.shape} and {mask_msg.encoding} {mask.shape}"
            )
        color = post.colorize(mask, self._palette)
        blended = post.overlay(np.ascontiguousarray(fused), mask, color, self.params.config.pipeline.overlay_alpha)
        self.pub_color.publish(messages.image_msg(blended, "rgb8", messages.copy_header(fused_msg.header)))
        if self.pub_boxes is not None and dets_msg is not None:
            boxes, skipped = draw_detections(np.ascontiguousarray(fused), dets_msg, self._palette)
            if skipped:
                self.stats.count("boxes skipped (non-finite)", skipped)
                self.get_logger().warning(
                    f"topic {self.resolve_topic_name('detections')}: {skipped} of {len(dets_msg.detections)} boxes "
                    "have a non-finite field 'x_min'/'y_min'/'x_max'/'y_max' and were not drawn",
                    throttle_duration_sec=self._throttle_s,
                )
            self.pub_boxes.publish(messages.image_msg(boxes, "rgb8", messages.copy_header(fused_msg.header)))

    def _publish_diagnostics(self) -> None:
        """WARN while frames are being skipped (since the previous status), naming the last reason."""
        cfg = self.params.config.diagnostics
        counts = self.stats.snapshot_counts()
        skipped = counts.get("frames skipped", 0)
        new_skips, self._skips_reported = skipped - self._skips_reported, skipped
        with self._problem_lock:
            problem = self._last_problem
        if new_skips:
            level, message = diag.WARN, f"{new_skips} frames skipped since the last status; last: {problem}"
        else:
            level, message = diag.OK, "drawing"
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [
            diag.status(
                f"{self.get_fully_qualified_name()}: overlay",
                cfg.hardware_id,
                level,
                message,
                {"rate_hz": self.stats.rate_hz(), **counts},
            )
        ]
        self.pub_diag.publish(array)

    def _reconfigure(self, cfg: FusionConfig) -> None:
        self._palette = post.palette_for(len(post.PALETTES[cfg.pipeline.palette]), cfg.pipeline.palette)


def main(args=None) -> None:
    from ivif_ros.nodes.graph import spin_nodes

    raise SystemExit(spin_nodes([OverlayNode], args))


if __name__ == "__main__":
    main()
