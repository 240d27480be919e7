"""Registering the IR image onto the visible image grid.

Every mode is a 3x3 homography ``H`` that maps IR pixel coordinates to visible pixel
coordinates, the ``cv2.warpPerspective(ir, H, visible_size)`` convention:

* ``none``: identity; the two images must already have the same size.
* ``resize``: scale to the visible size (pixel-centre aligned, like ``cv2.resize``).
* ``crop``: the IR region ``crop_xywh`` is what the visible camera sees; scale it to fill.
* ``homography``: a calibrated ``H`` from the config or a calibration file.
* ``camera_info``: ``H = K_vis @ inv(K_ir)`` from the two CameraInfo intrinsics, exact for
  boresighted cameras (parallel optical axes, negligible baseline) and a far scene.

Per frame only ``cv2.remap`` runs: the sampling maps are computed once per (IR size,
output size, H) in the same fixed-point format ``warpPerspective`` uses internally, so
the result equals ``cv2.warpPerspective`` up to one grey level of rounding, at no
per-frame map cost. With ``homography``/``camera_info``, output pixels outside the IR
field of view are 0 (no IR evidence there). ``resize``/``crop`` cover the output exactly,
so only the half-pixel rim samples outside the source; it replicates the edge, as
``cv2.resize`` does, instead of darkening a one-pixel frame around every image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ivif_ros.core.config import RegistrationConfig
from ivif_ros.core.safe_yaml import one_line
from ivif_ros.errors import ConfigError, InputError

_INTERP = {"nearest": 0, "linear": 1, "cubic": 2}  # cv2.INTER_* values


def load_homography(path: str | Path) -> np.ndarray:
    """Read a 3x3 homography from ``.npy``, ``.txt``/``.csv`` (3 rows) or ``.yaml``/``.json`` (key ``homography``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"registration.calibration_file: {path} does not exist; point it at the IR->visible "
            "homography file, or clear it to use registration.homography"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            h = np.load(path, allow_pickle=False)
        elif suffix in (".txt", ".csv"):
            h = np.loadtxt(path, delimiter="," if suffix == ".csv" else None)
        elif suffix in (".yaml", ".yml", ".json"):
            from ivif_ros.core.safe_yaml import load_yaml_file

            where = "registration.calibration_file"
            data = json.loads(path.read_text()) if suffix == ".json" else load_yaml_file(path, where)
            if not isinstance(data, dict) or "homography" not in data:
                raise ConfigError(
                    f"registration.calibration_file: {path} has no top-level key 'homography' "
                    "(a 3x3 nested list or 9 numbers, row-major)"
                )
            h = np.asarray(data["homography"], np.float64)
        else:
            raise ConfigError(
                f"registration.calibration_file: {path}: unsupported extension {suffix!r}; "
                "use .npy, .txt, .csv, .yaml, .yml or .json"
            )
    except (ValueError, OSError, TypeError) as exc:
        raise ConfigError(
            f"registration.calibration_file: cannot read a homography from {path}: {one_line(exc)}"
        ) from None
    return check_homography(h, str(path))


def check_homography(h, where: str) -> np.ndarray:
    h = np.asarray(h, np.float64)
    if h.size != 9:
        raise ConfigError(f"{where}: a homography has 9 entries (3x3), got {h.size}")
    h = h.reshape(3, 3)
    if not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-12:
        raise ConfigError(f"{where}: the homography must be finite and invertible, got {h.tolist()}")
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h


def scale_homography(
    src_wh: tuple[int, int], dst_wh: tuple[int, int], origin_xy: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Pixel-centre aligned scaling of the source rectangle at ``origin_xy`` with size ``src_wh`` onto ``dst_wh``."""
    sx, sy = dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1]
    x0, y0 = origin_xy
    # x_dst = sx * (x_src - x0 + 0.5) - 0.5
    return np.array([[sx, 0.0, sx * (0.5 - x0) - 0.5], [0.0, sy, sy * (0.5 - y0) - 0.5], [0.0, 0.0, 1.0]])


def intrinsics_homography(k_ir, k_vis) -> np.ndarray:
    """``K_vis @ inv(K_ir)``: the IR->visible map of two boresighted cameras viewing a far scene."""
    k_ir, k_vis = np.asarray(k_ir, np.float64).reshape(3, 3), np.asarray(k_vis, np.float64).reshape(3, 3)
    if k_ir[0, 0] <= 0 or k_vis[0, 0] <= 0:
        raise InputError(
            "registration mode 'camera_info' needs calibrated CameraInfo on ir/camera_info and "
            "visible/camera_info (field 'k' has fx = 0: the camera is uncalibrated)"
        )
    for name, k in (("ir", k_ir), ("visible", k_vis)):
        # A broken driver's K must be refused here: np.linalg.inv raises LinAlgError on a singular
        # one (not an input error the node reports), and a NaN one maps the whole IR image to nothing.
        if not np.isfinite(k).all() or not np.linalg.cond(k) < 1e12:
            raise InputError(
                f"registration mode 'camera_info': field 'k' of {name}/camera_info is not a usable "
                f"intrinsic matrix (it must be finite and invertible): {k.tolist()}; fix the camera's "
                "calibration or choose another registration.mode"
            )
    return k_vis @ np.linalg.inv(k_ir)


def remap_tables(h: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]):
    """Fixed-point ``cv2.remap`` tables sampling the source at ``inv(h) @ (x, y, 1)`` for every output pixel."""
    import cv2

    dh, dw = dst_hw
    xs, ys = np.meshgrid(np.arange(dw, dtype=np.float64), np.arange(dh, dtype=np.float64))
    hinv = np.linalg.inv(h)
    den = hinv[2, 0] * xs + hinv[2, 1] * ys + hinv[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        den = np.where(np.abs(den) > 1e-12, 1.0 / den, 0.0)
    map_x = ((hinv[0, 0] * xs + hinv[0, 1] * ys + hinv[0, 2]) * den).astype(np.float32)
    map_y = ((hinv[1, 0] * xs + hinv[1, 1] * ys + hinv[1, 2]) * den).astype(np.float32)
    return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)


class Registration:
    """Warps IR images onto the visible grid with maps cached per (sizes, homography)."""

    def __init__(self, cfg: RegistrationConfig):
        self.cfg = cfg
        self._fixed_h = None
        if cfg.mode == "homography":
            self._fixed_h = (
                load_homography(cfg.calibration_file)
                if cfg.calibration_file
                else check_homography(cfg.homography, "registration.homography")
            )
        self._cache_key = None
        self._tables = None

    def homography(self, ir_wh: tuple[int, int], out_wh: tuple[int, int], k_ir=None, k_vis=None) -> np.ndarray:
        """The IR->output homography for these sizes (and intrinsics, in ``camera_info`` mode)."""
        mode = self.cfg.mode
        if mode == "none":
            if tuple(ir_wh) != tuple(out_wh):
                raise InputError(
                    f"IR image is {ir_wh[0]}x{ir_wh[1]} but the visible image is {out_wh[0]}x{out_wh[1]} "
                    "and registration.mode is 'none'; set registration.mode to resize, crop, "
                    "homography or camera_info"
                )
            return np.eye(3)
        if mode == "resize":
            return scale_homography(ir_wh, out_wh)
        if mode == "crop":
            x, y, w, h = self.cfg.crop_xywh
            if x + w > ir_wh[0] or y + h > ir_wh[1]:
                raise InputError(
                    f"registration.crop_xywh {self.cfg.crop_xywh} reaches outside the "
                    f"{ir_wh[0]}x{ir_wh[1]} IR image; fix the crop for this camera"
                )
            return scale_homography((w, h), out_wh, (x, y))
        if mode == "homography":
            return self._fixed_h
        if mode == "camera_info":
            if k_ir is None or k_vis is None:
                raise InputError(
                    "registration.mode is 'camera_info' but no CameraInfo was received on "
                    f"{'ir/camera_info' if k_ir is None else 'visible/camera_info'}; publish it "
                    "or choose another registration.mode"
                )
            return intrinsics_homography(k_ir, k_vis)
        raise ConfigError(f"registration.mode: unknown mode {mode!r}")

    def __call__(self, ir: np.ndarray, out_wh: tuple[int, int], k_ir=None, k_vis=None) -> np.ndarray:
        """``ir`` (HxW or HxWxC) warped onto an ``out_wh`` (width, height) image."""
        import cv2

        ir_wh = (ir.shape[1], ir.shape[0])
        h = self.homography(ir_wh, out_wh, k_ir, k_vis)
        if self.cfg.mode == "none" or (tuple(ir_wh) == tuple(out_wh) and np.allclose(h, np.eye(3))):
            return ir
        key = (ir_wh, tuple(out_wh), h.tobytes())
        if key != self._cache_key:
            self._tables = remap_tables(h, ir.shape[:2], (out_wh[1], out_wh[0]))
            self._cache_key = key
        border = cv2.BORDER_REPLICATE if self.cfg.mode in ("resize", "crop") else cv2.BORDER_CONSTANT
        return cv2.remap(
            ir, self._tables[0], self._tables[1], _INTERP[self.cfg.interpolation], borderMode=border, borderValue=0
        )
