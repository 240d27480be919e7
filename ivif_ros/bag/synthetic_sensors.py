"""Camera models of the synthetic sample: a noisy night-time colour camera and a thermal camera.

* Visible: exposure, glare (bloom of bright emitters in the lens), photon shot noise and
  read noise in electrons, gamma, 8-bit quantisation. With a small full-well at night gain
  the shadows are noisy and low-contrast, as real night dashcam frames are.
* Thermal (LWIR): a separate camera with its own resolution and intrinsics, slightly
  rotated and offset from the visible one. Its image is cut from the scene canvas with the
  exact homography between the two cameras, then converted to raw 16-bit counts (linear in
  temperature) with fixed-pattern column noise and temporal noise, like an uncooled
  microbolometer's raw output.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ivif_ros.bag.synthetic_scene import Pinhole


@dataclass(frozen=True)
class ThermalCounts:
    """Raw counts = offset + gain * temperature (degrees C), as stored in mono16."""

    offset: float = 7000.0
    gain: float = 60.0  # counts per kelvin
    display_range_c: tuple[float, float] = (4.0, 36.0)  # mapped to 0..255 for the 8-bit pairs

    def to_counts(self, temp_c: np.ndarray) -> np.ndarray:
        return self.offset + self.gain * temp_c

    def display_range_counts(self) -> tuple[float, float]:
        lo, hi = self.display_range_c
        return float(self.to_counts(np.float64(lo))), float(self.to_counts(np.float64(hi)))

    def to_8bit(self, counts: np.ndarray) -> np.ndarray:
        lo, hi = self.display_range_counts()
        return np.clip((counts - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def rotation(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """Rotation of the IR camera relative to the visible one (camera axes: x right, y down, z forward)."""
    r, p, y = np.deg2rad([roll_deg, pitch_deg, yaw_deg])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class CameraRig:
    """Visible and IR cameras sharing a centre of projection (parallax-free at the rendered scene).

    ``ir_to_visible`` maps IR pixel coordinates to visible pixel coordinates
    (``cv2.warpPerspective`` convention): ``H = K_vis R K_ir^-1``.
    """

    visible: Pinhole
    ir: Pinhole
    r_ir_to_vis: np.ndarray

    @property
    def ir_to_visible(self) -> np.ndarray:
        h = self.visible.k @ self.r_ir_to_vis @ np.linalg.inv(self.ir.k)
        return h / h[2, 2]

    def canvas(self) -> tuple[Pinhole, int]:
        """The visible camera extended by a margin that contains the IR field of view."""
        w, h = self.ir.width, self.ir.height
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T
        p = self.ir_to_visible @ corners
        p = p[:2] / p[2]
        overflow = max(-p.min(), p[0].max() - self.visible.width, p[1].max() - self.visible.height, 0.0)
        m = int(np.ceil(overflow)) + 4
        v = self.visible
        return Pinhole(v.f, v.cx + m, v.cy + m, v.width + 2 * m, v.height + 2 * m), m


def make_rig(rng: np.random.Generator, width: int, height: int, ir_width: int, ir_height: int) -> CameraRig:
    """A visible camera (HFOV about 64 degrees) and an IR camera slightly wider, rotated and off-centre."""
    visible = Pinhole(0.8 * width, (width - 1) / 2.0, (height - 1) / 2.0, width, height)
    # IR field of view 8-12 % larger than the visible one in the tighter direction, so every
    # visible pixel has IR data after registration
    cover = rng.uniform(1.08, 1.12)
    f_ir = visible.f * min(ir_width / width, ir_height / height) / cover
    ir = Pinhole(
        f_ir,
        (ir_width - 1) / 2.0 + rng.uniform(-4, 4) * ir_width / 640,
        (ir_height - 1) / 2.0 + rng.uniform(-4, 4) * ir_width / 640,
        ir_width,
        ir_height,
    )
    r = rotation(rng.uniform(-0.8, 0.8), rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5))
    return CameraRig(visible, ir, r)


_GAMMA_LUT = (np.power(np.arange(4096) / 4095.0, 1 / 2.2) * 255 + 0.5).astype(np.uint8)


def visible_sensor(
    radiance: np.ndarray,
    emission: np.ndarray,
    margin: int,
    rng: np.random.Generator,
    *,
    exposure: float = 0.9,
    full_well_e: float = 300.0,
    read_noise_e: float = 3.0,
) -> np.ndarray:
    """Canvas radiance -> 8-bit RGB visible frame (the canvas margin is cropped away)."""
    h, w = radiance.shape[0] - 2 * margin, radiance.shape[1] - 2 * margin
    # lens glare: a tight and a wide halo around bright emitters, on a quarter-size image (smooth anyway)
    small = cv2.resize(emission, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    halo = 0.05 * cv2.GaussianBlur(small, (0, 0), w / 160) + 0.012 * cv2.GaussianBlur(small, (0, 0), w / 40)
    halo = cv2.resize(halo, (radiance.shape[1], radiance.shape[0]), interpolation=cv2.INTER_LINEAR)
    b = min(margin, 3)  # the optics blur needs only a few pixels beyond the visible frame
    crop = (slice(margin - b, margin + h + b), slice(margin - b, margin + w + b))
    signal = cv2.GaussianBlur(radiance[crop], (0, 0), 0.7)[b : b + h, b : b + w] + halo[crop][b : b + h, b : b + w]
    signal *= exposure
    electrons = np.clip(signal, 0, 1.0) * full_well_e
    noise = rng.standard_normal(electrons.shape, dtype=np.float32)
    electrons = electrons + noise * np.sqrt(electrons + read_noise_e**2)
    # 12-bit ADC, then the ISP's gamma curve as a lookup table
    adc = np.clip(electrons * (4095.0 / full_well_e) + 0.5, 0, 4095).astype(np.uint16)
    return _GAMMA_LUT[adc]


@dataclass
class ThermalSensor:
    rig: CameraRig
    margin: int
    counts: ThermalCounts
    fixed_pattern: np.ndarray  # per-pixel offset (counts) that flat-field correction leaves behind
    noise_counts: float = 6.0  # temporal noise: 0.1 K, a typical uncooled NETD

    @classmethod
    def create(cls, rng: np.random.Generator, rig: CameraRig, margin: int, counts: ThermalCounts) -> "ThermalSensor":
        """Column stripes (readout amplifiers) plus a radial falloff (housing and lens seen by the
        detector), about 0.1 K and 0.5 K: the residual non-uniformity of a microbolometer."""
        w, h = rig.ir.width, rig.ir.height
        columns = rng.normal(0.0, 5.0, w).astype(np.float32)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((x - w / 2) ** 2 + (y - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
        return cls(rig, margin, counts, columns[None, :] - 0.5 * counts.gain * r2)

    def capture(self, temperature: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Canvas temperature -> raw uint16 counts in the IR camera's own geometry."""
        ir = self.rig.ir
        shift = np.array([[1, 0, self.margin], [0, 1, self.margin], [0, 0, 1]], np.float64)
        ir_to_canvas = shift @ self.rig.ir_to_visible
        blurred = cv2.GaussianBlur(temperature, (0, 0), 1.2)  # LWIR optics are softer
        temp_ir = cv2.warpPerspective(
            blurred,
            ir_to_canvas,
            (ir.width, ir.height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        counts = self.counts.to_counts(temp_ir) + self.fixed_pattern
        counts += rng.standard_normal(counts.shape, dtype=np.float32) * self.noise_counts
        return np.clip(counts + 0.5, 0, 65535).astype(np.uint16)

    def register(self, counts: np.ndarray) -> np.ndarray:
        """IR counts warped onto the visible pixel grid (what a registration node produces)."""
        v = self.rig.visible
        return cv2.warpPerspective(
            counts.astype(np.float32),
            self.rig.ir_to_visible,
            (v.width, v.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
