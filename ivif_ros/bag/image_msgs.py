"""Build and decode rosbags message objects: Image, CompressedImage, CameraInfo, detections.

Pixel layout rules live in :mod:`ivif_ros.core.image_codec`; this module only wraps
them into rosbags dataclasses (no rclpy) and adds the compressed-image path.
"""

from __future__ import annotations

import numpy as np

from ivif_ros.core.image_codec import array_to_image_fields, image_to_array
from ivif_ros.errors import InputError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
DETECTION_ARRAY = "ivif_ros/msg/DetectionArray"
DETECTION = "ivif_ros/msg/Detection"
# Dataset pair names travel as std_msgs/Header on /ground_truth/name: stamp = the visible
# image's stamp, frame_id = the pair name, so replay can map any output stamp to its frame.
HEADER = "std_msgs/msg/Header"


def header(store, t_ns: int, frame_id: str):
    """``std_msgs/Header`` with ``stamp`` = ``t_ns`` nanoseconds since the epoch."""
    Time = store.types["builtin_interfaces/msg/Time"]
    Header = store.types["std_msgs/msg/Header"]
    sec, nanosec = divmod(int(t_ns), 1_000_000_000)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def stamp_ns(hdr) -> int:
    """Nanoseconds of a ``std_msgs/Header`` stamp."""
    return int(hdr.stamp.sec) * 1_000_000_000 + int(hdr.stamp.nanosec)


def make_image(
    store, arr: np.ndarray, encoding: str, t_ns: int, frame_id: str, *, bigendian: bool = False, step: int | None = None
):
    """A rosbags ``sensor_msgs/msg/Image`` holding ``arr`` in ``encoding``."""
    fields = array_to_image_fields(arr, encoding, bigendian=bigendian, step=step)
    fields["data"] = np.frombuffer(fields["data"], np.uint8)
    return store.types[IMAGE](header=header(store, t_ns, frame_id), **fields)


def make_compressed_image(store, arr: np.ndarray, fmt: str, t_ns: int, frame_id: str):
    """A ``sensor_msgs/msg/CompressedImage`` (``fmt`` 'png' or 'jpeg') of an RGB or mono array."""
    import cv2

    ext = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg"}.get(fmt)
    if ext is None:
        raise InputError(f"compressed format {fmt!r} is not supported; use png or jpeg")
    bgr = arr[:, :, ::-1] if arr.ndim == 3 else arr
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(bgr))
    if not ok:
        raise InputError(f"OpenCV could not encode a {arr.dtype} {arr.shape} array as {fmt}")
    return store.types[COMPRESSED_IMAGE](header=header(store, t_ns, frame_id), format=fmt, data=buf.reshape(-1))


def compressed_to_array(msg, topic: str = "") -> tuple[np.ndarray, str]:
    """Decode a ``sensor_msgs/msg/CompressedImage`` (jpeg/png) into ``(array, encoding)``.

    ``encoding`` is the layout of the returned array: ``bgr8``/``bgra8`` for colour
    (OpenCV order; :func:`ivif_ros.core.image_codec.to_rgb` converts), ``mono8``/``mono16``.
    """
    import cv2

    where = f"topic {topic}: " if topic else ""
    buf = np.frombuffer(msg.data, np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    if buf.size == 0:
        raise InputError(f"{where}field 'data' is empty; the CompressedImage carries no image")
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(
            f"{where}field 'data' ({buf.size} bytes, format {msg.format!r}) is not a decodable jpeg/png image; "
            "it is corrupt, or the format needs image_transport plugins (e.g. compressedDepth, theora)"
        )
    if arr.ndim == 2:
        return arr, "mono16" if arr.dtype == np.uint16 else "mono8"
    if arr.dtype != np.uint8:
        raise InputError(f"{where}{arr.dtype} colour images are not supported; publish 8-bit colour")
    return arr, "bgra8" if arr.shape[2] == 4 else "bgr8"


def decode_image(msg, msgtype: str, topic: str = "") -> tuple[np.ndarray, str]:
    """Decode an Image or CompressedImage into ``(array, encoding of the array)``."""
    if msgtype == IMAGE:
        return image_to_array(msg, topic), msg.encoding
    if msgtype == COMPRESSED_IMAGE:
        return compressed_to_array(msg, topic)
    raise InputError(f"topic {topic}: type {msgtype} is not an image; expected {IMAGE} or {COMPRESSED_IMAGE}")


def make_camera_info(
    store, t_ns: int, frame_id: str, width: int, height: int, k: np.ndarray, distortion: np.ndarray | None = None
):
    """A ``sensor_msgs/msg/CameraInfo`` of an undistorted pinhole camera with intrinsics ``k``.

    ``P`` is ``[K | 0]`` (monocular); ``R`` is identity.
    """
    k = np.asarray(k, np.float64).reshape(3, 3)
    d = np.zeros(5) if distortion is None else np.asarray(distortion, np.float64)
    p = np.hstack([k, np.zeros((3, 1))])
    roi = store.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return store.types[CAMERA_INFO](
        header=header(store, t_ns, frame_id),
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=d,
        k=k.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=p.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def make_detection_array(
    store,
    t_ns: int,
    frame_id: str,
    xyxy: np.ndarray,
    class_ids: np.ndarray,
    class_names: list[str],
    scores: np.ndarray | None = None,
):
    """An ``ivif_ros/msg/DetectionArray``; ground truth gets score 1.

    Detections are sorted by descending score, as the message definition requires.
    """
    Detection, DetectionArray = store.types[DETECTION], store.types[DETECTION_ARRAY]
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    class_ids = np.asarray(class_ids, np.int64).reshape(-1)
    scores = np.ones(len(class_ids), np.float32) if scores is None else np.asarray(scores, np.float32)
    order = np.argsort(-scores, kind="stable")
    dets = [
        Detection(
            class_id=int(class_ids[i]),
            class_name=class_names[class_ids[i]] if class_ids[i] < len(class_names) else str(int(class_ids[i])),
            score=float(scores[i]),
            x_min=float(xyxy[i, 0]),
            y_min=float(xyxy[i, 1]),
            x_max=float(xyxy[i, 2]),
            y_max=float(xyxy[i, 3]),
        )
        for i in order
    ]
    return DetectionArray(header=header(store, t_ns, frame_id), detections=dets)


def detections_to_arrays(msg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xyxy float32 (N,4), class_id int64 (N,), score float32 (N,))`` of a DetectionArray."""
    dets = msg.detections
    xyxy = np.array([[d.x_min, d.y_min, d.x_max, d.y_max] for d in dets], np.float32).reshape(-1, 4)
    return xyxy, np.array([d.class_id for d in dets], np.int64), np.array([d.score for d in dets], np.float32)
