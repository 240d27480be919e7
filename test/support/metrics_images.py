"""Synthetic but natural-looking IR/visible test images (the tests must not need ../shared data).

Smooth shading, a few hard-edged objects, texture and sensor noise; the IR image has hot objects
the visible image lacks and the visible image has texture the IR image lacks, like a real pair.
"""

import cv2
import numpy as np


def natural_pair(h: int = 120, w: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 2.0)
    vis = 90 + 60 * yy / h + 25 * texture / texture.std()
    ir = 40 + 20 * cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 6.0) * 5
    for _ in range(4):
        x0, y0 = rng.integers(0, w - 30), rng.integers(0, h - 30)
        bw, bh = rng.integers(8, 30), rng.integers(8, 30)
        vis[y0 : y0 + bh, x0 : x0 + bw] -= rng.uniform(20, 60)
        ir[y0 : y0 + bh, x0 : x0 + bw] += rng.uniform(80, 160)
    vis += rng.normal(0, 3, (h, w))
    ir += rng.normal(0, 2, (h, w))
    to_u8 = lambda x: np.clip(np.rint(x), 0, 255).astype(np.uint8)  # noqa: E731
    return to_u8(ir), to_u8(vis)
