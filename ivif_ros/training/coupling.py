"""Semantic coupling: a frozen detector's loss on the student's fused image, back-propagated
into the student (``detector_coupling`` in the training config).

Each step draws ``batch_size`` whole labelled frames (the detector works on whole frames, not
on the fusion losses' small crops) and runs the student on them. Its fused luma gets the visible
frame's chroma as ``FusionPipeline`` gives it (``core.postprocess.restore_rgb8``: the BT.601
conversion is linear in Y, so the fused RGB is the fused Y plus the visible image's per-channel
chroma offsets, clipped to [0, 1]), is resized to the detector's input size with bilinear
filtering (what ``core.detector.detector_blob`` does) and scored by the detector's own training
loss (``training.detector_loss``) against the boxes drawn on fused images. The detector is in
eval mode (BatchNorm statistics fixed) with its parameters frozen: only the student learns.
Frames are flipped horizontally at random, the flip drawn from (seed, step), so a resumed run
sees the frames an uninterrupted one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ivif_ros.errors import ConfigError

KEYS = ("weights", "weight", "size", "batch_size", "data")


@dataclass
class CouplingFrame:
    name: str
    ir: np.ndarray  # (1, H, W) float32 in [0, 1]
    vis_y: np.ndarray  # (1, H, W) float32, the 8-bit visible luma the pipeline feeds the student
    chroma: np.ndarray  # (3, H, W) float32, RGB minus luma of the visible frame
    boxes: np.ndarray  # (M, 5): class, cx, cy, w, h normalised to the frame


def check_coupling(raw, where: str) -> dict:
    """The ``detector_coupling`` mapping with its defaults, or a clear error naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: detector_coupling must be a mapping of {', '.join(KEYS)}, not {raw!r}")
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown detector_coupling keys {sorted(unknown)}; valid keys: {list(KEYS)}")
    out = {"weights": "detector", "size": [480, 352], "batch_size": 2, **raw}
    if not isinstance(out.get("weight"), (int, float)) or isinstance(out["weight"], bool) or out["weight"] <= 0:
        raise ConfigError(f"{where}: detector_coupling.weight must be a positive number, got {out.get('weight')!r}")
    size = out["size"]
    if not (
        isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 and v % 32 == 0 for v in size)
    ):
        raise ConfigError(
            f"{where}: detector_coupling.size must be [width, height], multiples of 32 "
            f"(the detector's training size, e.g. [480, 352]), got {size!r}"
        )
    if not isinstance(out["batch_size"], int) or out["batch_size"] < 1:
        raise ConfigError(
            f"{where}: detector_coupling.batch_size must be a positive integer, got {out['batch_size']!r}"
        )
    data = out.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("root"), str):
        raise ConfigError(
            f"{where}: detector_coupling.data must name the labelled frames, e.g. "
            "{root: msrs/test, split: splits/msrs_dev_train.txt} (relative to the data folder)"
        )
    return out


def load_frames(root: Path, split: Path | None) -> list[CouplingFrame]:
    """Every pair of ``root`` (restricted to ``split``) with its ``labels_det/fusion`` boxes."""
    from tqdm import tqdm

    from ivif_ros.core.preprocess import preprocess
    from ivif_ros.datasets.paired import PairedDataset

    ds = PairedDataset(root, split)
    if not ds.has_fusion_boxes:
        raise ConfigError(
            f"detector_coupling.data: {root / 'labels_det' / 'fusion'} does not exist; the coupling "
            "scores the fused image against the boxes drawn on fused images"
        )
    frames = []
    for pair in tqdm(ds, desc=f"coupling frames {root.name}", leave=False):
        if pair.vis.ndim != 3:
            raise ConfigError(
                f"detector_coupling.data: {root}/vi/{pair.name} is grey; the coupling needs colour frames"
            )
        inputs = preprocess(pair.ir, pair.vis)
        rgb = pair.vis.astype(np.float32) / 255.0
        h, w = inputs.height, inputs.width
        if frames and (h, w) != frames[0].ir.shape[1:]:
            raise ConfigError(
                f"detector_coupling.data: {root}/{pair.name} is {w}x{h} but {frames[0].name} is "
                f"{frames[0].ir.shape[2]}x{frames[0].ir.shape[1]}; the coupling batches frames of one size"
            )
        y = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        b = pair.boxes_fusion
        xyxy = b.xyxy.astype(np.float32).reshape(-1, 4)
        boxes = np.stack(
            [
                b.cls.astype(np.float32),
                (xyxy[:, 0] + xyxy[:, 2]) / 2 / w,
                (xyxy[:, 1] + xyxy[:, 3]) / 2 / h,
                (xyxy[:, 2] - xyxy[:, 0]) / w,
                (xyxy[:, 3] - xyxy[:, 1]) / h,
            ],
            1,
        )
        frames.append(
            CouplingFrame(
                pair.name,
                np.ascontiguousarray(inputs.ir[0, :, :h, :w]),
                np.ascontiguousarray(inputs.vis_y[0, :, :h, :w]),
                np.ascontiguousarray((rgb - y[..., None]).transpose(2, 0, 1)),
                boxes,
            )
        )
    return frames


def fused_rgb(fused_y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Fused luma ``(N, 1, H, W)`` (padding cropped to ``chroma``'s size) + visible chroma
    ``(N, 3, h, w)`` -> RGB ``(N, 3, h, w)`` in [0, 1], differentiable in the luma."""
    h, w = chroma.shape[-2:]
    return (fused_y[:, :, :h, :w].clamp(0.0, 1.0) + chroma).clamp(0.0, 1.0)


class DetectorCoupling:
    """The frozen detector, the labelled frames and the per-step loss on a student's fused image."""

    def __init__(self, spec: dict, data_root: Path, seed: int, device: torch.device):
        from ivif_ros.weights import load_model

        detector, meta = load_model(spec["weights"])
        if not hasattr(detector, "forward_logits"):
            raise ConfigError(
                f"detector_coupling.weights {spec['weights']} is a {meta.get('architecture')}, not a detector"
            )
        self.detector = detector.to(device).eval().requires_grad_(False)
        self.classes = meta.get("detection_classes")
        self.size_wh = tuple(spec["size"])
        self.batch_size = spec["batch_size"]
        self.seed, self.device = seed, device
        split = spec["data"].get("split")
        self.frames = load_frames(data_root / spec["data"]["root"], data_root / split if split else None)
        if not self.frames:
            raise ConfigError(f"detector_coupling.data {spec['data']} holds no pairs")

    def batch(self, step: int):
        """Step ``step``'s frames as tensors (ir, vis_y, chroma) and detector targets (M, 6)."""
        from ivif_ros.core.preprocess import pad_to_multiple

        rng = np.random.default_rng([self.seed, 4, step])
        picks = rng.choice(len(self.frames), self.batch_size, replace=len(self.frames) < self.batch_size)
        flips = rng.random(self.batch_size) < 0.5
        irs, viss, chromas, rows = [], [], [], []
        for i, (k, flip) in enumerate(zip(picks, flips)):
            f = self.frames[int(k)]
            ir, vis, chroma, boxes = f.ir, f.vis_y, f.chroma, f.boxes.copy()
            if flip:
                ir, vis, chroma = ir[:, :, ::-1], vis[:, :, ::-1], chroma[:, :, ::-1]
                boxes[:, 1] = 1.0 - boxes[:, 1]
            irs.append(pad_to_multiple(np.ascontiguousarray(ir[0]))[None])
            viss.append(pad_to_multiple(np.ascontiguousarray(vis[0]))[None])
            chromas.append(np.ascontiguousarray(chroma))
            rows.append(np.concatenate([np.full((len(boxes), 1), i, np.float32), boxes], 1))
        as_t = lambda a: torch.from_numpy(np.stack(a)).to(self.device)  # noqa: E731
        return as_t(irs), as_t(viss), as_t(chromas), torch.from_numpy(np.concatenate(rows)).to(self.device)

    def loss(self, student: torch.nn.Module, step: int) -> torch.Tensor:
        """The detector's training loss on the student's fused image of step ``step``'s frames."""
        from ivif_ros.training.detector_loss import detector_loss

        ir, vis, chroma, targets = self.batch(step)
        rgb = fused_rgb(student.forward_features(ir, vis)["fused"], chroma)
        w, h = self.size_wh
        bgr = F.interpolate(rgb.flip(1), size=(h, w), mode="bilinear", align_corners=False)
        return detector_loss(self.detector.forward_logits(bgr), targets).total
