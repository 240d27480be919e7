"""In-memory training dataset: every pair is read once into RAM (Y of the visible image,
IR, merged boxes), then each item is a random crop + horizontal flip with dense targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ivif_ros.datasets.paired import PairedDataset, read_image, read_names, rgb_to_gray
from ivif_ros.errors import ConfigError, InputError
from ivif_ros.training.targets import (
    STRIDE,
    box_masks,
    boundary_of,
    boxes_centred_in,
    centernet_targets,
    crop_boxes,
)


@dataclass
class Sample:
    name: str
    ir: np.ndarray  # HxW uint8
    vis: np.ndarray  # HxW uint8 (Y)
    xyxy: np.ndarray | None  # None = no labels for this image (losses skip it)
    cls: np.ndarray | None
    seg: np.ndarray | None = None  # HxW uint8 class ids from label PNGs (e.g. MSRS 9 classes)
    visible_only: np.ndarray | None = None  # per box: only the visible annotation holds it


INPUT_MODES = ("fused", "ir", "vis")


def camera_inputs(input_mode: str, ir, vis) -> tuple:
    """The network's two inputs for a training ``input_mode``: fused (ir, vis), or one camera
    twice, ir (ir, ir) or vis (vis, vis), as the single-camera ablations are trained and scored."""
    if input_mode not in INPUT_MODES:
        raise ConfigError(f"input_mode must be fused, ir or vis, not {input_mode!r}")
    return {"fused": (ir, vis), "ir": (ir, ir), "vis": (vis, vis)}[input_mode]


def trained_input_mode(meta: dict, where: str) -> str:
    """The input a trained model saw (its sidecar's ``training.input_mode``; fused when absent)."""
    mode = (meta.get("training") or {}).get("input_mode", "fused")
    if mode not in INPUT_MODES:
        raise ConfigError(f"{where}: its sidecar's training.input_mode is {mode!r}, not fused, ir or vis")
    return mode


def load_samples(sources: list[dict], input_mode: str = "fused") -> list[Sample]:
    """Read every ``{root, split?, exclude?, seg_labels?}`` source into memory.

    ``exclude`` is a names file of pairs to leave out (e.g. a held-out set for choosing between configs).

    ``seg_labels`` names a folder under ``root`` with one ``<name>.png`` class-id mask per
    pair (MSRS ``Segmentation_labels``); without it the semantic target is the box-filled mask.

    ``input_mode`` = ``fused`` (ir, vis), ``ir`` (ir, ir) or ``vis`` (vis, vis): the
    single-modality ablations feed the same image to both inputs.
    """
    camera_inputs(input_mode, None, None)  # refuse an unknown mode before reading any image
    samples = []
    for src in sources:
        if "root" not in src:
            raise ConfigError(f"data source {src} has no 'root'; give root: <folder with ir/ and vi/>")
        ds = PairedDataset(src["root"], src.get("split"))
        if src.get("exclude"):
            held = set(read_names(src["exclude"]))
            unknown = held - set(ds.names)
            if unknown:  # a typo would otherwise train on the pairs meant to be held out
                raise ConfigError(
                    f"exclude file {src['exclude']}: {len(unknown)} names are not in {src['root']}"
                    f" (split {src.get('split')}): " + ", ".join(sorted(unknown)[:10])
                )
            ds.names = [n for n in ds.names if n not in held]
        for pair in tqdm(ds, desc=f"loading {src['root']}", leave=False):
            vis = pair.vis if pair.vis.ndim == 2 else rgb_to_gray(pair.vis)
            ir, vis = camera_inputs(input_mode, pair.ir, vis)
            boxes = pair.boxes
            seg = None
            if src.get("seg_labels"):
                seg = read_image(Path(src["root"]) / src["seg_labels"] / f"{pair.name}.png")
                if seg.ndim != 2 or seg.shape != ir.shape:
                    raise InputError(
                        f"{src['root']}/{src['seg_labels']}/{pair.name}.png: expected a "
                        f"{ir.shape[1]}x{ir.shape[0]} single-channel class-id image, got {seg.shape}"
                    )
            samples.append(
                Sample(
                    pair.name,
                    ir,
                    vis,
                    None if boxes is None else boxes.xyxy,
                    None if boxes is None else boxes.cls,
                    seg,
                    pair.visible_only,
                )
            )
    if not samples:
        raise ConfigError("the training data sources hold no image pairs")
    return samples


class CropDataset(Dataset):
    """Random ``crop`` x ``crop`` windows (multiple of 32) with flips and targets at stride 4.

    Images smaller than the crop are edge-padded. ``length`` items are drawn in one pass.
    With probability ``object_crop_prob`` a crop of a labelled image is placed so that it holds
    the centre of one of its boxes (chosen uniformly): most random small crops of road scenes
    hold no object, which starves the semantic (and the teacher's detection) heads of positives.

    With probability ``visible_dropout`` the visible crop is replaced by the IR crop (the
    camera "drops out", as in glare or a failed visible camera), so the net must also find
    objects from IR alone instead of leaning on visible texture it can memorise. The coin is
    drawn from its own stream: the crops are the same as without dropout, and for the
    single-camera ablations (IR already on both inputs, or the visible image on both) the
    replacement changes nothing.

    ``visible_jitter`` = s > 0 changes the exposure of each visible crop as a camera's auto
    exposure and gain do between frames and scenes: ``clip(g * v**gamma + noise)`` on 0..1 with
    gain g in [1-s, 1+s], log gamma in [-s, s] and Gaussian noise of sigma up to 0.04 s. Thermal
    cameras report radiometric values that do not swing like this, so IR is left alone. Its
    draws come from a third stream, and a crop whose visible input is the IR image (dropout,
    single-camera ablations) is not touched, so the IR-only twin stays the plain run.

    ``ir_jitter`` = s > 0 stands in for a thermal camera of another make: each IR crop gets
    ``clip(g * ir**gamma + o + noise)`` with gain g in [1-s, 1+s], offset o in [-s/4, s/4], log
    gamma in [-s, s], Gaussian noise of sigma up to 0.03 s, and with probability s/2 a 3x3 blur
    (a softer lens). Its draws come from a fifth stream; single-camera crops are left alone.

    With probability ``visible_only_crop_prob`` the crop is instead placed around a box that
    only the visible annotation holds (``datasets.paired.visible_only_boxes``), drawn uniformly
    from all such boxes. Why: those objects are the only ones the visible camera alone reveals,
    and they are rare (68 of the 1,354 union boxes of msrs_dev_train, 32 of them cars), so
    plain crops show the fused student too few of them to learn it. The IR-only twin gets the same crops
    with the same labels, as it does for every other box. Its draws come from a fourth stream:
    the other crops are those of a run without it.
    """

    def __init__(
        self,
        samples: list[Sample],
        crop: int,
        num_det: int,
        length: int,
        seed: int = 0,
        object_crop_prob: float = 0.0,
        visible_dropout: float = 0.0,
        visible_jitter: float = 0.0,
        visible_only_crop_prob: float = 0.0,
        ir_jitter: float = 0.0,
    ):
        if crop % 32:
            raise ConfigError(f"crop must be a multiple of 32, got {crop}")
        for name, p in (
            ("object_crop_prob", object_crop_prob),
            ("visible_dropout", visible_dropout),
            ("visible_jitter", visible_jitter),
            ("visible_only_crop_prob", visible_only_crop_prob),
            ("ir_jitter", ir_jitter),
        ):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name} must be within [0, 1], got {p}")
        self.samples, self.crop, self.num_det, self.length, self.seed = samples, crop, num_det, length, seed
        self.object_crop_prob, self.visible_dropout = object_crop_prob, visible_dropout
        self.visible_jitter, self.visible_only_crop_prob = visible_jitter, visible_only_crop_prob
        self.ir_jitter = ir_jitter
        # (sample, box) of every visible-only box, the pool that visible_only_crop_prob draws from
        self.visible_only = [
            (i, j) for i, s in enumerate(samples) if s.visible_only is not None for j in np.flatnonzero(s.visible_only)
        ]
        if visible_only_crop_prob > 0 and not self.visible_only:
            raise ConfigError(
                "visible_only_crop_prob is set but no training image has a box that only the "
                "visible annotation holds (labels_det/vi boxes no labels_det/ir box overlaps); "
                "set it to 0 or add such labels"
            )

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        # Seeded by (seed, index): identical crops after resume and across workers. (The middle
        # 0 keeps the random stream of the shipped training runs.)
        rng = np.random.default_rng([self.seed, 0, index])
        s = self.samples[rng.integers(len(self.samples))]
        focus = None  # a visible-only box to centre the crop on
        if self.visible_only_crop_prob > 0:
            pick = np.random.default_rng([self.seed, 3, index])
            if pick.random() < self.visible_only_crop_prob:
                i, focus = self.visible_only[pick.integers(len(self.visible_only))]
                s = self.samples[i]
        c = self.crop
        single_camera = s.vis is s.ir  # the IR-only / visible-only ablations share one array
        pad_h, pad_w = max(c - s.ir.shape[0], 0), max(c - s.ir.shape[1], 0)
        ir = np.pad(s.ir, ((0, pad_h), (0, pad_w)), mode="edge")
        vis = np.pad(s.vis, ((0, pad_h), (0, pad_w)), mode="edge")
        y0 = int(rng.integers(ir.shape[0] - c + 1))
        x0 = int(rng.integers(ir.shape[1] - c + 1))
        if focus is not None:
            x0, y0 = _window_around(s.xyxy[focus], c, ir.shape, rng)
        elif self.object_crop_prob > 0 and s.xyxy is not None and len(s.cls) and rng.random() < self.object_crop_prob:
            x0, y0 = _window_around(s.xyxy[rng.integers(len(s.cls))], c, ir.shape, rng)
        flip = bool(rng.integers(2))
        ir, vis = ir[y0 : y0 + c, x0 : x0 + c], vis[y0 : y0 + c, x0 : x0 + c]
        if flip:
            ir, vis = ir[:, ::-1], vis[:, ::-1]
        if self.visible_dropout > 0 and np.random.default_rng([self.seed, 1, index]).random() < self.visible_dropout:
            vis, single_camera = ir, True
        vis = vis.astype(np.float32) / 255.0
        if self.visible_jitter > 0 and not single_camera:
            vis = _jitter_exposure(vis, self.visible_jitter, np.random.default_rng([self.seed, 2, index]))
        ir = ir.astype(np.float32) / 255.0
        if self.ir_jitter > 0 and not single_camera:
            ir = _jitter_ir(ir, self.ir_jitter, np.random.default_rng([self.seed, 5, index]))
        labelled = s.xyxy is not None
        all_xyxy, all_cls = (s.xyxy, s.cls) if labelled else (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
        # Masks label every visible part of a box (a car filling the crop is car, however much
        # of it lies outside); detection targets are the whole objects centred in the crop.
        xyxy, cls = crop_boxes(all_xyxy, all_cls, x0, y0, c, c, flip, min_visible=0.0)
        heat, box, centre = centernet_targets(
            *boxes_centred_in(all_xyxy, all_cls, x0, y0, c, c, flip), c, c, self.num_det
        )  # whole objects
        if s.seg is not None:  # dense labels: nearest-neighbour subsampling to the head stride
            seg = np.pad(s.seg, ((0, pad_h), (0, pad_w)), mode="edge")[y0 : y0 + c, x0 : x0 + c]
            seg = np.ascontiguousarray((seg[:, ::-1] if flip else seg)[STRIDE // 2 :: STRIDE, STRIDE // 2 :: STRIDE])
        else:
            seg = box_masks(xyxy, cls, c, c, STRIDE)
        return {
            "ir": torch.from_numpy(np.ascontiguousarray(ir))[None],
            "vis": torch.from_numpy(np.ascontiguousarray(vis))[None],
            "labelled": torch.tensor(float(labelled)),
            "salient": torch.from_numpy((box_masks(xyxy, cls, c, c) > 0).astype(np.float32))[None],
            "seg": torch.from_numpy(seg.astype(np.int64)),
            "boundary": torch.from_numpy(boundary_of(seg))[None],
            "heatmap": torch.from_numpy(heat),
            "box": torch.from_numpy(box),
            "centre": torch.from_numpy(centre),
        }


def _jitter_exposure(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random gain, gamma and sensor noise on a 0..1 image (see ``CropDataset``)."""
    gain = rng.uniform(1 - strength, 1 + strength)
    gamma = np.exp(rng.uniform(-strength, strength))
    sigma = rng.uniform(0, 0.04 * strength)
    out = gain * np.power(img, gamma) + rng.normal(0.0, sigma, img.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _jitter_ir(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Another thermal camera's response on a 0..1 IR crop (see ``CropDataset``)."""
    gain = rng.uniform(1 - strength, 1 + strength)
    offset = rng.uniform(-strength / 4, strength / 4)
    gamma = np.exp(rng.uniform(-strength, strength))
    sigma = rng.uniform(0, 0.03 * strength)
    out = gain * np.power(img, gamma) + offset + rng.normal(0.0, sigma, img.shape)
    if rng.random() < strength / 2:
        padded = np.pad(out, 1, mode="edge")
        out = sum(padded[dy : dy + img.shape[0], dx : dx + img.shape[1]] for dy in range(3) for dx in range(3)) / 9
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _window_around(xyxy: np.ndarray, crop: int, shape: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a random ``crop`` window, inside the image, holding the box centre
    at least a quarter crop away from the window edges where the image allows it."""
    cx, cy = (xyxy[0] + xyxy[2]) / 2, (xyxy[1] + xyxy[3]) / 2
    corner = []
    for centre, size in ((cx, shape[1]), (cy, shape[0])):
        lo = int(np.clip(centre - 3 * crop / 4, 0, size - crop))
        hi = int(np.clip(centre - crop / 4, 0, size - crop))
        corner.append(int(rng.integers(lo, max(hi, lo) + 1)))
    return corner[0], corner[1]
