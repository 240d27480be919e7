"""Images and boxes for detector fine-tuning, with the augmentation.

Each sample is one image the detector sees at run time, chosen by the input mode:

* ``fused``: the shipped student's fused RGB, exactly what ``FusionPipeline`` publishes. The
  student is run once per pair and its output cached as PNG under ``cache_dir/<student sha>/``
  (outside the repository), so every epoch and every run reads the same pixels.
* ``ir``: the infrared grey copied into three channels.
* ``visible``: the visible RGB image.

Boxes come from ``labels_det/<labels>/`` (default ``fusion``: boxes drawn on fused images).
Images are returned BGR uint8, the channel order of the detector's input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ivif_ros.datasets.paired import Boxes, PairedDataset, read_yolo_boxes
from ivif_ros.errors import ConfigError, InputError

INPUT_MODES = ("fused", "ir", "visible")


@dataclass
class DetSample:
    name: str
    image: np.ndarray  # HxWx3 uint8 BGR
    boxes: Boxes  # pixels, xyxy


def default_cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ivif_ros" / "fused"


class FusedCache:
    """The student's fused RGB per pair, computed once and stored as PNG keyed by weights hash."""

    def __init__(self, model: str = "student", cache_dir: str | Path | None = None):
        from ivif_ros.core.hashing import file_sha256
        from ivif_ros.weights import resolve

        weights, _ = resolve(model)
        self.model = model
        self.folder = Path(cache_dir or default_cache_dir()) / file_sha256(weights)[:16]
        self._pipeline = None

    def _fuse(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        if self._pipeline is None:
            from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
            from ivif_ros.engines import EngineConfig

            h, w = ir.shape[:2]
            engine = EngineConfig(
                backend="torch", height=h, width=w, dynamic=True, min_size=(32, 32), max_size=(2048, 2048)
            )
            self._pipeline = FusionPipeline(PipelineConfig(model=self.model, engine=engine))
        return self._pipeline.process(ir, vis).fused_rgb

    def get(self, dataset_key: str, name: str, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """Fused image of a pair as BGR uint8 (read from the cache, or computed and stored)."""
        import cv2

        path = self.folder / dataset_key / f"{name}.png"
        if path.is_file():
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is not None and img.shape[:2] == ir.shape[:2]:
                return img
        rgb = self._fuse(ir, vis)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        cv2.imwrite(str(tmp), bgr)
        tmp.replace(path)
        return bgr


def as_bgr(pair_image: np.ndarray) -> np.ndarray:
    """A dataset image (RGB or grey) as 3-channel BGR uint8."""
    if pair_image.ndim == 2:
        return np.repeat(pair_image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pair_image[:, :, ::-1])


def load_samples(
    root: str | Path,
    split: str | Path | None,
    input_mode: str,
    labels: str = "fusion",
    cache: FusedCache | None = None,
    progress: bool = True,
) -> list[DetSample]:
    """Every pair of ``root`` (restricted to ``split``) as a detector sample of ``input_mode``."""
    from tqdm import tqdm

    if input_mode not in INPUT_MODES:
        raise ConfigError(f"input_mode must be one of {', '.join(INPUT_MODES)}, got {input_mode!r}")
    root = Path(root)
    label_dir = root / "labels_det" / labels
    if not label_dir.is_dir():
        raise InputError(
            f"{label_dir} does not exist; the detector trains on labels_det/{labels} boxes "
            f"(set 'labels' to a folder under {root / 'labels_det'})"
        )
    ds = PairedDataset(root, split, labels=False)
    if input_mode == "fused" and cache is None:
        cache = FusedCache()
    key = f"{root.parent.name}_{root.name}"
    out = []
    for i in tqdm(range(len(ds)), desc=f"load {root.name} ({input_mode})", unit="pair", disable=not progress):
        pair = ds[i]
        h, w = pair.ir.shape[:2]
        if input_mode == "fused":
            image = cache.get(key, pair.name, pair.ir, pair.vis)
        elif input_mode == "ir":
            image = as_bgr(pair.ir)
        else:
            image = as_bgr(pair.vis)
        out.append(DetSample(pair.name, image, read_yolo_boxes(label_dir / f"{pair.name}.txt", w, h)))
    return out


@dataclass
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    scale: tuple[float, float] = (0.75, 1.35)  # random zoom of the run-time view
    aspect: float = 0.15  # +- relative aspect jitter
    brightness: float = 0.25  # +- gain
    contrast: float = 0.25  # +- contrast around the mean
    saturation: float = 0.3  # +- saturation (colour inputs)
    gamma: float = 0.25  # +- log-gamma
    min_visible: float = 0.4  # a cut box keeps at least this share of its area, or is dropped


def augment(
    sample: DetSample, out_hw: tuple[int, int], rng: np.random.Generator, aug: AugmentConfig | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run-time view (the whole frame resized to ``out_hw``, the detector's input size),
    zoomed, shifted, flipped and jittered, as an ``out_hw`` image.

    Zoom > 1 crops a random window, < 1 shrinks the frame onto a grey canvas at a random
    place. Without ``aug`` the result is the run-time view itself. Returns the image
    (HxWx3 uint8 BGR), its boxes (N,4 xyxy pixels of the output) and class ids (N,).
    """
    import cv2

    img, boxes, cls = sample.image, sample.boxes.xyxy.astype(np.float64), sample.boxes.cls
    h0, w0 = img.shape[:2]
    oh, ow = out_hw
    if aug is None:
        sx, sy = ow / w0, oh / h0
        out = cv2.resize(img, (ow, oh), interpolation=cv2.INTER_LINEAR)
        return out, (boxes * [sx, sy, sx, sy]).astype(np.float32).reshape(-1, 4), cls.copy()

    z = rng.uniform(*aug.scale)
    a = np.exp(rng.uniform(-aug.aspect, aug.aspect))
    sx, sy = ow / w0 * z * a, oh / h0 * z / a
    nw, nh = max(1, round(w0 * sx)), max(1, round(h0 * sy))
    scaled = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((max(nh, oh), max(nw, ow), 3), 114, np.uint8)
    py, px = rng.integers(0, canvas.shape[0] - nh + 1), rng.integers(0, canvas.shape[1] - nw + 1)
    canvas[py : py + nh, px : px + nw] = scaled
    cy, cx = rng.integers(0, canvas.shape[0] - oh + 1), rng.integers(0, canvas.shape[1] - ow + 1)
    out = canvas[cy : cy + oh, cx : cx + ow].copy()
    b = boxes * [sx, sy, sx, sy] + [px - cx, py - cy, px - cx, py - cy]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    b = np.clip(b, 0, [ow, oh, ow, oh])
    kept = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = (kept >= aug.min_visible * np.maximum(area, 1e-9)) & (b[:, 2] - b[:, 0] >= 2) & (b[:, 3] - b[:, 1] >= 2)
    b, cls = b[keep], cls[keep]

    if rng.random() < aug.flip:
        out = out[:, ::-1].copy()
        b = np.stack([ow - b[:, 2], b[:, 1], ow - b[:, 0], b[:, 3]], 1) if len(b) else b

    out = photometric(out, rng, aug)
    return out, b.astype(np.float32).reshape(-1, 4), cls.copy()


def photometric(img: np.ndarray, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    x = img.astype(np.float32) / 255.0
    grey = bool(np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 1], img[:, :, 2]))
    if aug.saturation > 0 and not grey:
        y = x.mean(axis=2, keepdims=True)
        x = y + (x - y) * (1 + rng.uniform(-aug.saturation, aug.saturation))
    x = np.clip(x, 0, 1) ** np.exp(rng.uniform(-aug.gamma, aug.gamma))
    m = x.mean()
    x = (x - m) * (1 + rng.uniform(-aug.contrast, aug.contrast)) + m
    x = x * (1 + rng.uniform(-aug.brightness, aug.brightness))
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_batch(
    samples: list[DetSample],
    indices: np.ndarray,
    out_hw: tuple[int, int],
    rng: np.random.Generator,
    aug: AugmentConfig | None,
):
    """A training batch: images (N,3,H,W) float in [0,1] BGR, and targets (M,6) rows of
    ``batch index, class, cx, cy, w, h`` normalised to the output size."""
    import torch

    imgs, rows = [], []
    oh, ow = out_hw
    for bi, idx in enumerate(indices):
        img, b, c = augment(samples[int(idx)], out_hw, rng, aug)
        imgs.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))
        if len(b):
            cx, cy = (b[:, 0] + b[:, 2]) / 2 / ow, (b[:, 1] + b[:, 3]) / 2 / oh
            w, h = (b[:, 2] - b[:, 0]) / ow, (b[:, 3] - b[:, 1]) / oh
            rows.append(np.stack([np.full(len(c), bi), c, cx, cy, w, h], 1))
    targets = torch.from_numpy(np.concatenate(rows).astype(np.float32)) if rows else torch.zeros((0, 6))
    return torch.stack(imgs).float() / 255.0, targets
