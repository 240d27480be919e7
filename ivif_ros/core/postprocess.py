"""Model outputs -> images, masks and boxes in the (visible) camera frame.

* fused Y -> uint8 grey and, with the visible Cb/Cr, uint8 RGB (BT.601 full range);
* semantic logits (1/4 resolution) -> uint8 class mask at full resolution, colour mask, overlay;
* detector boxes: class-wise NMS and clipping to the frame.

Every function takes arrays of the *padded* model size where that is what the
model returns, and crops back to the frame size itself, so callers never juggle
the padding. All work is vectorised (numpy/OpenCV); the only Python loop is
greedy NMS over at most ``top_k`` boxes with a precomputed IoU matrix.
Boxes are in input pixels of the fused frame, which is the visible frame
(the IR was registered onto it before the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: Output stride of the segmentation head (docs/contracts.md).
HEAD_STRIDE = 4

#: Colours (RGB) per semantic class; index 0 is background (transparent in the overlay).
#: Cityscapes-like colours for the default classes, then the MSRS preset's extra classes.
PALETTES = {
    "default": [(0, 0, 0), (220, 20, 60), (119, 11, 32), (0, 0, 142)],  # background, person, bicycle, car
    "msrs": [
        (0, 0, 0),
        (0, 0, 142),
        (220, 20, 60),
        (119, 11, 32),
        (244, 35, 232),
        (250, 170, 30),
        (190, 153, 153),
        (255, 128, 0),
        (128, 64, 128),
    ],  # unlabelled, car, person, bike, curve, car_stop, guardrail, color_cone, bump
}


def palette_for(num_classes: int, name: str = "default") -> np.ndarray:
    """``(num_classes, 3)`` uint8 colour table; classes beyond the named palette get distinct hues."""
    base = PALETTES[name][:num_classes]
    extra = num_classes - len(base)
    if extra > 0:
        hues = (np.arange(extra) * 180 // max(extra, 1)).astype(np.uint8)
        hsv = np.stack([hues, np.full(extra, 200, np.uint8), np.full(extra, 230, np.uint8)], -1)[None]
        base = base + [tuple(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]]
    return np.asarray(base, np.uint8)


# --------------------------------------------------------------------------- fused image


def to_uint8(plane: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounded and saturated (one OpenCV pass)."""
    return cv2.convertScaleAbs(np.maximum(plane, 0, dtype=np.float32), alpha=255.0)


def fused_luma(fused: np.ndarray, height: int, width: int) -> np.ndarray:
    """Model ``fused`` ``(1, 1, Hp, Wp)`` -> float32 ``HxW`` in [0, 1], padding cropped."""
    return np.clip(fused[0, 0, :height, :width], 0.0, 1.0)


def restore_rgb8(y: np.ndarray, cb: np.ndarray | None, cr: np.ndarray | None) -> np.ndarray:
    """Fused luma + visible chroma (all ``HxW`` float [0, 1]) -> ``HxWx3`` uint8 RGB.

    A grey visible frame has no chroma; the fused luma is then replicated to three channels.

    The RGB keeps the 8-bit fused luma exactly: ``cv2.cvtColor(rgb, COLOR_RGB2GRAY)`` (and,
    but for float ties in under 0.1 % of pixels, ``core.color.rgb_to_y_u8``) gives back
    ``to_uint8(y)`` wherever no channel saturates. Rounding the three channels alone moves the
    luma of about a quarter of the pixels by one level, and those random +-1 steps in flat
    regions cost a consumer that fuses or scores on grey about 0.007 Qabf and SSIM. Adding
    the luma error to all three channels moves the luma by exactly that error and the chroma
    by nothing (the chroma rows of BT.601 sum to zero).
    """
    y8 = to_uint8(y)
    if cb is None or cr is None:
        return cv2.cvtColor(y8, cv2.COLOR_GRAY2RGB)
    rgb = to_uint8(cv2.cvtColor(cv2.merge([y8.astype(np.float32) / 255.0, cr, cb]), cv2.COLOR_YCrCb2RGB))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # The signed error y8 - grey as its two saturated halves, added to all three channels with
    # saturation: whole-frame OpenCV passes instead of indexing the pixels that are off.
    up, down = cv2.subtract(y8, grey), cv2.subtract(grey, y8)
    return cv2.subtract(cv2.add(rgb, cv2.merge([up, up, up])), cv2.merge([down, down, down]))


# --------------------------------------------------------------------------- semantic mask


def seg_mask(seg_logits: np.ndarray, height: int, width: int, method: str = "nearest") -> np.ndarray:
    """Logits ``(1, C, Hp/4, Wp/4)`` -> uint8 class mask ``HxW``.

    ``nearest``: argmax at 1/4 resolution, then nearest-neighbour upsampling (the
    default: 16x fewer argmax operations; 0.2 ms vs 1.4 ms at 640x480, 4 classes).
    ``bilinear``: upsample the logits bilinearly, then argmax (smoother borders).
    """
    logits = seg_logits[0]
    hp, wp = logits.shape[1] * HEAD_STRIDE, logits.shape[2] * HEAD_STRIDE
    if method == "nearest":
        low = np.argmax(logits, axis=0).astype(np.uint8)
        full = cv2.resize(low, (wp, hp), interpolation=cv2.INTER_NEAREST)
    elif method == "bilinear":
        # cv2.resize handles up to 512 channels in HWC layout; align_corners=False like F.interpolate.
        up = cv2.resize(np.ascontiguousarray(logits.transpose(1, 2, 0)), (wp, hp), interpolation=cv2.INTER_LINEAR)
        full = np.argmax(up.reshape(hp, wp, -1), axis=2).astype(np.uint8)
    else:
        raise ValueError(f"seg_mask method must be 'nearest' or 'bilinear', got {method!r}")
    return np.ascontiguousarray(full[:height, :width])


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class mask ``HxW`` -> ``HxWx3`` uint8 colour image; ids beyond the palette get its last colour.

    A 256-entry ``cv2.LUT`` is ~6x faster than ``palette[mask]`` fancy indexing at 640x480.
    """
    lut = np.repeat(palette[-1:], 256, axis=0)
    lut[: len(palette)] = palette
    return cv2.LUT(cv2.cvtColor(mask, cv2.COLOR_GRAY2RGB), lut[:, None, :])


def overlay(rgb: np.ndarray, mask: np.ndarray, color: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``color`` over ``rgb`` where ``mask`` is not background; background pixels stay as they are.

    ``cv2.copyTo`` with the class mask as copy mask replaces a broadcast ``np.where`` (~10x faster).
    """
    out = rgb.copy()
    cv2.copyTo(cv2.addWeighted(rgb, 1.0 - alpha, color, alpha, 0.0), mask, out)
    return out


# --------------------------------------------------------------------------- detections


@dataclass
class Detections:
    """Boxes in frame pixels: ``xyxy`` float32 (N, 4), ``scores`` float32 (N,), ``class_ids`` int64 (N,)."""

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> "Detections":
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``xyxy`` boxes ``a`` (N, 4) and ``b`` (M, 4) -> (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS; indices of the kept boxes, best score first."""
    order = np.argsort(-scores, kind="stable")
    iou = iou_matrix(xyxy[order], xyxy[order])
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
    return order[np.asarray(keep, np.int64)]


def classwise_nms(dets: Detections, iou_threshold: float = 0.5) -> Detections:
    """NMS within each class only: boxes are shifted apart per class so one IoU matrix serves all."""
    if len(dets) == 0:
        return dets
    span = float(dets.xyxy.max() - dets.xyxy.min()) + 1.0
    shifted = dets.xyxy + (dets.class_ids * span)[:, None].astype(np.float32)
    return dets.take(nms(shifted, dets.scores, iou_threshold))


def clip_boxes(dets: Detections, height: int, width: int) -> Detections:
    """Clip boxes to the frame and drop those left with no area (e.g. centred in the padding)."""
    xyxy = np.clip(dets.xyxy, 0, np.array([width, height, width, height], np.float32))
    valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    return Detections(xyxy[valid], dets.scores[valid], dets.class_ids[valid])
