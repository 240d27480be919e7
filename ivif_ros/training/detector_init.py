"""The starting point of a fine-tuning: the shipped COCO FastestDet, its head cut to some classes.

The class branch ends in a 1x1 convolution and a BatchNorm with one output channel per
class. Keeping the rows of the wanted COCO classes (in the wanted order) gives a head whose
softmax is COCO's class distribution renormalised over those classes: the zero-shot detector
restricted to them, before any training step.
"""

from __future__ import annotations

import torch

from ivif_ros.errors import ConfigError

COCO_WEIGHTS = "detector_coco"
CLASS_ROWS = (
    "detect_head.cls_layers.conv5x5.3.weight",  # 1x1 projection (C, 96, 1, 1)
    "detect_head.cls_layers.conv5x5.4.weight",
    "detect_head.cls_layers.conv5x5.4.bias",
    "detect_head.cls_layers.conv5x5.4.running_mean",
    "detect_head.cls_layers.conv5x5.4.running_var",
)


def class_names(meta: dict, where: str) -> list[str]:
    names = meta.get("detection_classes")
    if not isinstance(names, list) or not names:
        raise ConfigError(
            f"{where}: the sidecar lists no 'detection_classes'; a detector's sidecar must name its classes"
        )
    return [str(n) for n in names]


def narrow_classes(state: dict, source: list[str], wanted: list[str]) -> dict:
    """A copy of ``state`` whose class head predicts ``wanted`` (names found in ``source``)."""
    missing = [c for c in wanted if c not in source]
    if missing:
        raise ConfigError(
            f"classes {missing} are not classes of the pretrained detector; choose from: {', '.join(source)}"
        )
    rows = torch.tensor([source.index(c) for c in wanted])
    out = dict(state)
    for key in CLASS_ROWS:
        out[key] = state[key].index_select(0, rows).clone()
    return out


def coco_detector(classes: list[str], weights: str = COCO_WEIGHTS):
    """``(FastestDet for classes, in train mode; the source sidecar)`` from the shipped COCO weights."""
    from ivif_ros.models.fastestdet import build_fastestdet
    from ivif_ros.weights import load_model

    coco, meta = load_model(weights)
    names = class_names(meta, weights)
    model = build_fastestdet(num_classes=len(classes))
    model.load_state_dict(narrow_classes(coco.state_dict(), names, list(classes)))
    return model.train(), meta
