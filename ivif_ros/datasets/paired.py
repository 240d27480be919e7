"""Paired-folder IR/visible datasets (MSRS, TNO, VIFB, RoadScene layouts).

Layout::

    ROOT/ir/<name>.<ext>      infrared, 1 or 3 channels (3 equal channels are collapsed)
    ROOT/vi/<name>.<ext>      visible, 1 or 3 channels
    ROOT/labels_det/ir/<name>.txt, ROOT/labels_det/vi/<name>.txt   optional YOLO boxes
    ROOT/labels_det/fusion/<name>.txt   optional YOLO boxes drawn on a fused image of the pair

A pair is the two files with the same stem. ``split`` is an optional text file
with one stem per line. Images are returned as uint8 numpy arrays: IR ``HxW``,
visible ``HxWx3`` RGB (grey visible images are kept ``HxW``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivif_ros.errors import InputError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
IR_DIRS = ("ir", "IR", "Inf", "infrared", "Infrared")
VI_DIRS = ("vi", "VI", "Vis", "visible", "Visible")


@dataclass
class Boxes:
    """Boxes in image pixels, ``xyxy`` float32 (N,4) and int class ids (N,)."""

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    cls: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return len(self.cls)


@dataclass
class Pair:
    name: str
    ir: np.ndarray
    vis: np.ndarray
    boxes_ir: Boxes | None = None
    boxes_vis: Boxes | None = None
    boxes_fusion: Boxes | None = None

    @property
    def ground_truth(self) -> Boxes | None:
        """The reference for detection on the fused image: the boxes drawn on a fused image
        when the dataset has them (``labels_det/fusion``), else the IR/visible union."""
        return self.boxes_fusion if self.boxes_fusion is not None else self.boxes

    @property
    def boxes(self) -> Boxes | None:
        """Union of IR and visible boxes, de-duplicated (see ``merge_boxes``)."""
        if self.boxes_ir is None and self.boxes_vis is None:
            return None
        return merge_boxes(self.boxes_ir or Boxes(), self.boxes_vis or Boxes())

    @property
    def visible_only(self) -> np.ndarray | None:
        """Per box of ``boxes``: True where only the visible annotation holds it (see
        ``visible_only_boxes``)."""
        if self.boxes_ir is None and self.boxes_vis is None:
            return None
        return visible_only_boxes(self.boxes_ir or Boxes(), self.boxes_vis or Boxes())


def read_image(path: Path) -> np.ndarray:
    """Read an image as uint8; RGB order for colour, 2-D for grey or equal-channel images."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read image {path}: the file is missing, truncated or not an image")
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path}: unsupported pixel type {img.dtype}; use 8- or 16-bit images")
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        img = img[:, :, ::-1]  # BGR -> RGB
        if np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 1], img[:, :, 2]):
            img = img[:, :, 0]
        img = np.ascontiguousarray(img)
    return img


def read_yolo_boxes(path: Path, width: int, height: int) -> Boxes:
    """Read ``class cx cy w h`` (normalised) lines into pixel ``xyxy`` boxes."""
    if not path.exists():
        return Boxes()
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise InputError(f"{path}:{lineno}: expected 'class cx cy w h', got {line!r}")
        rows.append([float(p) for p in parts])
    if not rows:
        return Boxes()
    a = np.asarray(rows, np.float64)
    cx, cy, w, h = a[:, 1] * width, a[:, 2] * height, a[:, 3] * width, a[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)
    return Boxes(xyxy, a[:, 0].astype(np.int64))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``xyxy`` boxes, (N,4) x (M,4) -> (N,M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def merge_boxes(first: Boxes, second: Boxes, iou_thr: float = 0.5) -> Boxes:
    """Union of two annotations of the same scene; a box of ``second`` that overlaps a
    same-class box of ``first`` with IoU >= ``iou_thr`` is the same object and dropped."""
    if len(second) == 0:
        return first
    if len(first) == 0:
        return second
    keep = _best_same_class_iou(second, first) < iou_thr
    return Boxes(np.concatenate([first.xyxy, second.xyxy[keep]]), np.concatenate([first.cls, second.cls[keep]]))


VISIBLE_ONLY_IOU = 0.1  # below it a visible box touches no same-class IR box


def visible_only_boxes(first: Boxes, second: Boxes, iou_thr: float = 0.5) -> np.ndarray:
    """For each box of ``merge_boxes(first, second, iou_thr)``, in its order: True where it is a
    ``second`` (visible) box that no same-class ``first`` (IR) box overlaps at IoU >= 0.1, an
    object only the visible annotation holds. Kept visible boxes at IoU 0.1-0.5 are mostly the
    same object boxed again from the other camera and count as IR-seen."""
    best = _best_same_class_iou(second, first)
    return np.concatenate([np.zeros(len(first), bool), best[best < iou_thr] < VISIBLE_ONLY_IOU])


def _best_same_class_iou(boxes: Boxes, others: Boxes) -> np.ndarray:
    """For each box of ``boxes``, its highest IoU with a same-class box of ``others`` (0 if none)."""
    iou = box_iou(boxes.xyxy, others.xyxy).reshape(len(boxes), len(others))
    return np.where(boxes.cls[:, None] == others.cls[None, :], iou, 0.0).max(1, initial=0.0)


def _find_dir(root: Path, names: tuple[str, ...], what: str) -> Path:
    for n in names:
        if (root / n).is_dir():
            return root / n
    raise InputError(f"{root}: no {what} folder; expected one of {', '.join(names)}")


def _index(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS}


def read_names(path: str | Path) -> list[str]:
    """The pair names of a split or held-out file: one per line, blank lines ignored."""
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]


class PairedDataset:
    """Random-access reader of a paired-folder dataset."""

    def __init__(self, root: str | Path, split: str | Path | None = None, labels: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"dataset folder {self.root} does not exist")
        ir_dir, vi_dir = _find_dir(self.root, IR_DIRS, "infrared"), _find_dir(self.root, VI_DIRS, "visible")
        ir, vi = _index(ir_dir), _index(vi_dir)
        if split is not None:
            split = Path(split)
            if not split.is_file():
                raise InputError(f"split file {split} does not exist")
            names = read_names(split)
            missing = [n for n in names if n not in ir or n not in vi]
            if missing:
                raise InputError(
                    f"{len(missing)} names in split {split} have no IR/visible pair under {self.root}: "
                    + ", ".join(missing[:10])
                    + (" ..." if len(missing) > 10 else "")
                )
        else:
            unpaired = sorted(set(ir) ^ set(vi))
            if unpaired:
                raise InputError(
                    f"{len(unpaired)} unpaired files under {self.root} (no file of the same name in the other "
                    f"folder): " + ", ".join(unpaired[:10]) + (" ..." if len(unpaired) > 10 else "")
                )
            names = sorted(ir)
        self.names = names
        self._ir, self._vi = ir, vi
        self._labels = self.root / "labels_det" if labels and (self.root / "labels_det").is_dir() else None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def has_boxes(self) -> bool:
        return self._labels is not None

    @property
    def has_fusion_boxes(self) -> bool:
        """Whether ``labels_det/fusion`` exists (then ``Pair.ground_truth`` is those boxes)."""
        return self._labels is not None and (self._labels / "fusion").is_dir()

    def __getitem__(self, i: int) -> Pair:
        name = self.names[i]
        ir, vis = read_image(self._ir[name]), read_image(self._vi[name])
        if ir.ndim == 3:  # a colour-mapped IR image: use its luminance
            ir = rgb_to_gray(ir)
        if ir.shape[:2] != vis.shape[:2]:
            raise InputError(
                f"pair {name}: IR is {ir.shape[1]}x{ir.shape[0]} but visible is {vis.shape[1]}x{vis.shape[0]}; "
                "paired-folder datasets must be pre-registered to the same size"
            )
        pair = Pair(name, ir, vis)
        if self._labels is not None:
            h, w = ir.shape[:2]
            pair.boxes_ir = read_yolo_boxes(self._labels / "ir" / f"{name}.txt", w, h)
            pair.boxes_vis = read_yolo_boxes(self._labels / "vi" / f"{name}.txt", w, h)
            if self.has_fusion_boxes:
                pair.boxes_fusion = read_yolo_boxes(self._labels / "fusion" / f"{name}.txt", w, h)
        return pair

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of a uint8 RGB image, uint8 (the Y of YCbCr that fusion papers fuse).

    The same function as ``core.color.rgb_to_y_u8``, which the metrics use, so training data,
    evaluation references and the node's inputs agree to the last grey level (an independent
    round-half-up copy here used to differ at exact .5 ties).
    """
    from ivif_ros.core.color import rgb_to_y_u8

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise InputError(f"rgb_to_gray expects uint8 RGB, got {rgb.dtype}; scale the image to 8 bits first")
    return rgb_to_y_u8(rgb)
