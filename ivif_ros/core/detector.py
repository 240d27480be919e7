"""The COCO detector on the fused image: input blob, class map, decoding to frame-pixel boxes.

The detector (``ivif_ros.models.fastestdet``) sees the fused RGB frame resized to its input
size, in BGR order, scaled to [0, 1]. Its single stride-16 map is decoded as its authors do:
per cell, centre = (cell + tanh(offset)) / map size, width and height = sigmoid(raw) as a
fraction of the image, score = objectness^0.6 * class probability^0.4, then class-wise NMS
(IoU 0.45). Because the box is a fraction of the detector's input, it maps onto the frame
by the frame's own width and height, whatever the resize did to the aspect ratio.

The *class map* says which detector classes a published class is made of. The probability
of a published class is the sum of its members' (softmax) probabilities, so folding truck
and bus into car asks "car, truck or bus?". Each cell may yield one box per published
class (a cyclist is both a person and a bicycle); NMS then works within each class.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import cv2
import numpy as np

from ivif_ros.core import postprocess as post
from ivif_ros.errors import ConfigError

#: Score = objectness^OBJ_EXP * class^CLS_EXP (the authors' weighting).
OBJ_EXP, CLS_EXP = 0.6, 0.4
#: NMS IoU of the authors' decoder.
NMS_IOU = 0.45
#: Published classes of the package (and of the MSRS labels), with COCO's names for them.
DEFAULT_CLASS_MAP = ("person", "bicycle", "car")


@dataclass(frozen=True)
class ClassMap:
    """Published class ``i`` is ``names[i]``; its detector class indices are ``members[i]``."""

    names: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    #: ``(len(names), detector classes)`` 0/1 matrix: published probabilities = matrix @ class probabilities.
    matrix: np.ndarray

    @classmethod
    def parse(cls, spec, detector_classes, where: str = "pipeline.detector.class_map") -> "ClassMap":
        """Build from ``spec`` against the detector's class names.

        ``spec`` is a list of entries ``"published=member,member"`` or ``"name"`` (short for
        ``"name=name"``), or a mapping ``{published: [members]}``. Every member must be one
        of ``detector_classes``, a published name may appear once, and a detector class may
        belong to one published class only.
        """
        detector_classes = list(detector_classes)
        index = {name: i for i, name in enumerate(detector_classes)}
        entries = _entries(spec, where)
        if not entries:
            raise ConfigError(f"{where}: empty; list at least one class, e.g. {list(DEFAULT_CLASS_MAP)}")
        names, members, owner = [], [], {}
        for published, sources in entries:
            if published in names:
                raise ConfigError(f"{where}: published class '{published}' is listed twice; merge its entries")
            ids = []
            for source in sources:
                if source not in index:
                    close = difflib.get_close_matches(source, detector_classes, n=3)
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    raise ConfigError(
                        f"{where}: '{source}' (for '{published}') is not a class of the detector{hint} "
                        f"Its classes: {', '.join(detector_classes)}"
                    )
                if source in owner:
                    raise ConfigError(
                        f"{where}: detector class '{source}' is mapped to both '{owner[source]}' and "
                        f"'{published}'; a detector class may feed one published class only"
                    )
                owner[source] = published
                ids.append(index[source])
            names.append(published)
            members.append(tuple(ids))
        matrix = np.zeros((len(names), len(detector_classes)), np.float32)
        for row, ids in enumerate(members):
            matrix[row, list(ids)] = 1.0
        return cls(tuple(names), tuple(members), matrix)


def _entries(spec, where: str) -> list[tuple[str, list[str]]]:
    if isinstance(spec, dict):
        items = [(str(k), [v] if isinstance(v, str) else list(v)) for k, v in spec.items()]
    elif isinstance(spec, (list, tuple)):
        items = []
        for entry in spec:
            if not isinstance(entry, str):
                raise ConfigError(f"{where}: entries are strings like 'car=car,truck,bus', got {entry!r}")
            published, sep, sources = entry.partition("=")
            items.append((published, sources.split(",") if sep else [published]))
    else:
        raise ConfigError(f"{where}: expected a list like ['person', 'car=car,truck,bus'], got {spec!r}")
    cleaned = []
    for published, sources in items:
        published, sources = published.strip(), [s.strip() for s in sources if s.strip()]
        if not published or not sources:
            raise ConfigError(
                f"{where}: entry '{published}={','.join(sources)}' needs a name and at least one "
                "detector class, e.g. 'car=car,truck,bus'"
            )
        cleaned.append((published, sources))
    return cleaned


def detector_blob(rgb: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``(1, 3, h, w)`` float32 BGR in [0, 1] at ``size_hw`` (bilinear resize)."""
    h, w = size_hw
    return cv2.dnn.blobFromImage(rgb, 1.0 / 255.0, (w, h), swapRB=True)


def decode(
    pred: np.ndarray,
    class_map: ClassMap,
    frame_hw: tuple[int, int],
    score_threshold: float = 0.3,
    nms_iou: float = NMS_IOU,
    top_k: int = 100,
) -> post.Detections:
    """Detector output ``(1, 5 + C, h, w)`` -> boxes in frame pixels, class ids of ``class_map``.

    At most ``4 * top_k`` candidates (best scores) enter NMS and at most ``top_k`` boxes leave it.
    """
    if pred.ndim != 4 or pred.shape[1] != 5 + class_map.matrix.shape[1]:
        raise ConfigError(
            f"detector output {pred.shape} does not fit the class map's {class_map.matrix.shape[1]} "
            "detector classes; the class map was built for another detector"
        )
    p = pred[0]
    _, gh, gw = p.shape
    probs = class_map.matrix @ p[5:].reshape(p.shape[0] - 5, -1)  # (K, h*w)
    scores = np.power(np.clip(p[0].reshape(1, -1), 0, 1), OBJ_EXP) * np.power(np.clip(probs, 0, 1), CLS_EXP)
    cls, cell = np.nonzero(scores >= score_threshold)
    score = scores[cls, cell]
    if len(score) > 4 * top_k:
        best = np.argpartition(-score, 4 * top_k - 1)[: 4 * top_k]
        cls, cell, score = cls[best], cell[best], score[best]
    gy, gx = np.divmod(cell, gw)
    reg = p[1:5].reshape(4, -1)[:, cell]
    frame_h, frame_w = frame_hw
    cx = (gx + np.tanh(reg[0])) * (frame_w / gw)
    cy = (gy + np.tanh(reg[1])) * (frame_h / gh)
    half_w = 0.5 * frame_w / (1.0 + np.exp(-reg[2]))
    half_h = 0.5 * frame_h / (1.0 + np.exp(-reg[3]))
    xyxy = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)
    dets = post.Detections(xyxy, score.astype(np.float32), cls.astype(np.int64))
    kept = post.classwise_nms(post.clip_boxes(dets, frame_h, frame_w), nms_iou)
    return kept.take(np.arange(min(len(kept), top_k)))
