"""Dense training targets from boxes: CenterNet heatmap and box regression, box-filled
semantic masks, their boundaries and the full-resolution salient-target mask.

Semantic classes follow the contract: class id = detection id + 1, background 0, smaller
boxes drawn last so they stay visible inside larger ones.
"""

from __future__ import annotations

import numpy as np

STRIDE = 4


def box_masks(xyxy: np.ndarray, cls: np.ndarray, height: int, width: int, stride: int = 1) -> np.ndarray:
    """Box-filled class-id mask of size (height/stride, width/stride), uint8."""
    h, w = height // stride, width // stride
    mask = np.zeros((h, w), np.uint8)
    if len(cls) == 0:
        return mask
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    for i in np.argsort(-area):  # large first, small last
        x0, y0, x1, y1 = np.round(xyxy[i] / stride).astype(int)
        mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = cls[i] + 1
    return mask


def boundary_of(mask: np.ndarray) -> np.ndarray:
    """1 where a pixel's label differs from its right or lower neighbour (either side)."""
    edge = np.zeros(mask.shape, bool)
    dx = mask[:, 1:] != mask[:, :-1]
    dy = mask[1:, :] != mask[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge.astype(np.float32)


def centernet_targets(xyxy: np.ndarray, cls: np.ndarray, height: int, width: int, num_det: int):
    """Heatmap (K,h,w), box regression (4,h,w) and centre mask (1,h,w) at stride 4.

    Each object is an elliptical Gaussian with sigma = box size / 6 (TTFNet), peak exactly 1
    at its centre cell; regression is (dx, dy, log w, log h) in stride units.
    """
    h, w = height // STRIDE, width // STRIDE
    heat = np.zeros((num_det, h, w), np.float32)
    box = np.zeros((4, h, w), np.float32)
    centre = np.zeros((1, h, w), np.float32)
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    for (x0, y0, x1, y1), c in zip(xyxy / STRIDE, cls):
        bw, bh = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ix, iy = int(cx), int(cy)
        if c >= num_det or bw < 0.5 or bh < 0.5 or not (0 <= ix < w and 0 <= iy < h):
            continue
        sx, sy = max(bw / 6, 0.5), max(bh / 6, 0.5)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx**2) - ((ys - iy) ** 2) / (2 * sy**2))
        np.maximum(heat[c], g, out=heat[c])
        heat[c, iy, ix] = 1.0
        box[:, iy, ix] = (cx - ix, cy - iy, np.log(bw), np.log(bh))
        centre[0, iy, ix] = 1.0
    return heat, box, centre


def crop_boxes(
    xyxy: np.ndarray, cls: np.ndarray, x0: int, y0: int, w: int, h: int, flip: bool, min_visible: float = 0.5
):
    """Boxes of a crop (optionally mirrored); drop those with less than ``min_visible`` of their area inside."""
    if len(cls) == 0:
        return xyxy, cls
    b = xyxy - np.array([x0, y0, x0, y0], np.float32)
    clipped = np.clip(b, 0, [w, h, w, h])
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) >= min_visible * np.maximum(area, 1e-6)
    clipped, cls = clipped[keep], cls[keep]
    return _mirrored(clipped, w, flip), cls


def boxes_centred_in(xyxy: np.ndarray, cls: np.ndarray, x0: int, y0: int, w: int, h: int, flip: bool):
    """The detection targets of a crop: boxes whose centre lies inside it, in crop coordinates
    (optionally mirrored) and **not clipped**.

    At test time the network sees the whole image, so an object cut by the crop edge must still
    be regressed to its full size, and its centre must not become a negative. Clipping made
    every car wider than the 160-pixel student crop (a quarter of the MSRS cars) a truncated
    regression target or, under half visible, background. (Masks use ``crop_boxes`` with
    ``min_visible=0``: they describe what is visible.)
    """
    if len(cls) == 0:
        return xyxy, cls
    b = xyxy - np.array([x0, y0, x0, y0], np.float32)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    keep = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
    return _mirrored(b[keep], w, flip), cls[keep]


def _mirrored(xyxy: np.ndarray, w: int, flip: bool) -> np.ndarray:
    """Crop-coordinate boxes as float32, mirrored left-right in a crop of width ``w`` if ``flip``."""
    if flip:
        xyxy = np.stack([w - xyxy[:, 2], xyxy[:, 1], w - xyxy[:, 0], xyxy[:, 3]], 1)
    return xyxy.astype(np.float32)
