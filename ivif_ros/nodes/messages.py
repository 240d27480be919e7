"""Translation between ROS messages and the arrays/records of ``ivif_ros.core``; QoS profiles."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ivif_ros.core.image_codec import array_to_image_fields, fill_image_msg
from ivif_ros.msg import Detection, DetectionArray

try:  # optional: the vision_msgs package is not on PyPI
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError:  # pragma: no cover - depends on the installation
    Detection2DArray = None


def qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last QoS; ``best_effort`` with a shallow depth is ROS' sensor-data profile."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE,
    )


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def time_msg(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def copy_header(header) -> Header:
    return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec), frame_id=header.frame_id)


def image_msg(arr: np.ndarray, encoding: str, header: Header) -> Image:
    msg = fill_image_msg(Image(), array_to_image_fields(arr, encoding))
    msg.header = header
    return msg


def _by_score(dets):
    """(xyxy, score, class id) per box, highest score first (stable), as plain Python values."""
    order = np.argsort(-dets.scores, kind="stable")
    return zip(dets.xyxy[order].tolist(), dets.scores[order].tolist(), dets.class_ids[order].tolist())


def detection_array(dets, class_names, header: Header) -> DetectionArray:
    """``core.postprocess.Detections`` -> ``ivif_ros/DetectionArray`` (sorted by score, as the pipeline returns)."""
    out = DetectionArray(header=header)
    out.detections = [
        Detection(
            class_id=int(c),
            class_name=class_names[c] if c < len(class_names) else str(int(c)),
            score=float(s),
            x_min=float(b[0]),
            y_min=float(b[1]),
            x_max=float(b[2]),
            y_max=float(b[3]),
        )
        for b, s, c in _by_score(dets)
    ]
    return out


def vision_detection_array(dets, header: Header):
    """The same boxes, in the same order, as ``vision_msgs/Detection2DArray``; None without vision_msgs.

    Each box is one ``Detection2D``: ``bbox`` centre and size in pixels of the output image,
    one ``results[]`` entry whose ``hypothesis.class_id`` is the class index as a string
    (vision_msgs' convention: names come from a class database, here the ``class_name``
    of ``detections``) and ``hypothesis.score`` the detector's score.
    """
    if Detection2DArray is None:
        return None
    out = Detection2DArray(header=header)
    for b, s, c in _by_score(dets):
        d = Detection2D(header=header)
        d.bbox.center.position.x, d.bbox.center.position.y = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        d.bbox.size_x, d.bbox.size_y = b[2] - b[0], b[3] - b[1]
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = str(int(c))
        hyp.hypothesis.score = float(s)
        d.results = [hyp]
        out.detections.append(d)
    return out
