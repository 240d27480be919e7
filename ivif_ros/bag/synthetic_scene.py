"""A procedural night street seen from a moving car, rendered in two physical quantities.

The renderer produces, per frame, on one canvas (the visible camera's view plus a margin
so that the IR camera, which sees a little more, can be cut out of it):

* ``radiance`` (HxWx3, linear): reflectance x illumination + emitted light. It is dark
  (ambient moonlight/skyglow only), lit in pools under streetlights and in the cone of
  the ego car's headlights, with bright emitters (lamps, lit windows, shop fronts,
  head- and tail-lights) that the visible sensor model blooms into glare;
* ``emission`` (HxWx3): the emitted part alone, which drives the glare;
* ``temperature`` (HxW, degrees C): what the thermal camera measures. People, running
  engines, tyres and exhausts are warm; sky and glass are cold; paint and asphalt differ
  little, so lane marks are faint in IR.

So pedestrians in dark clothes outside the light pools are near-invisible in the visible
image but bright in IR, while lane marks, shop fronts and a parked, cold car under a
streetlight are salient only in the visible image: fusion needs both.

Geometry is a real pinhole projection of a street canyon (road, sidewalks, facades at a
fixed distance, sky) with the ego car driving along it, so textures, windows and lane
dashes move with correct perspective. Everything random comes from one
``numpy.random.Generator``; the same seed gives the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

CLASS_NAMES = ("person", "bicycle", "car")  # YOLO ids 0, 1, 2 as in the MSRS detection labels
PERSON, BICYCLE, CAR = 0, 1, 2

CAMERA_HEIGHT_M = 1.4
EGO_X_M = 1.75  # the ego car drives in the middle of the right lane; world x = 0 is the centre line
ROAD_HALF_WIDTH_M = 3.5
FACADE_X_M = 8.0  # building fronts at world x = +-8 m
FAR_M = 300.0  # the street is modelled this far; beyond it is haze
EGO_SPEED_MPS = 5.0
AMBIENT = 0.006  # skyglow illumination relative to a white surface in full headlight
AIR_TEMP_C = 6.0
HAZE_RGB = np.array([0.045, 0.032, 0.022], np.float32)  # skyglow scattered by the air (sodium-orange)
SKY_TEMP_C = (-25.0, -8.0)  # zenith, horizon: a clear night sky is far colder than the air
LAMP_SPACING_M, LAMP_HEIGHT_M, LAMP_X_M = 32.0, 6.5, 5.2
LAMP_POWER = 9.0  # illumination directly under a lamp = LAMP_POWER / height^2
LAMP_PHASE_M = {-1: 14.0, 1: 30.0}  # where the first lamp of each side stands (world z, metres)
TREE_SPACING_M, TREE_X_M = 14.0, 7.2
PARKING_X_M = 4.5  # parking strip between the road edge and the sidewalk
BLOCK_TABLE_M = 4096.0  # length of the generated street; positions wrap around it


@dataclass(frozen=True)
class Pinhole:
    f: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def k(self) -> np.ndarray:
        return np.array([[self.f, 0, self.cx], [0, self.f, self.cy], [0, 0, 1]], np.float64)


@dataclass
class Prim:
    """A filled shape of a sprite, in metres relative to the object's foot point (x right, y up)."""

    kind: str  # 'poly' (points) or 'ellipse' (centre, radii)
    pts: np.ndarray
    temp: float  # degrees C
    refl: tuple[float, float, float] = (0.1, 0.1, 0.1)
    emit: tuple[float, float, float] | None = None


@dataclass
class Agent:
    """A moving or static object on the street; its position wraps so it keeps reappearing."""

    kind: str  # 'person', 'cyclist', 'car', 'lamp', 'tree'
    cls: int | None  # detection class, None for street furniture
    x0: float  # world x (0 = road centre line)
    z0: float  # world position along the street at t=0 (metres)
    vx: float = 0.0
    vz: float = 0.0  # world velocity (m/s); the ego car moves at +EGO_SPEED_MPS
    z_range: tuple[float, float] = (5.0, 80.0)  # distance window (camera frame) it wraps within
    x_range: tuple[float, float] | None = None
    sprite: list[Prim] = field(default_factory=list)
    walk_phase: float | None = None  # pedestrians swing their legs

    def position(self, t: float) -> tuple[float, float]:
        """Camera-frame (x, z) at time ``t``."""
        lo, hi = self.z_range
        z = lo + (self.z0 - lo + (self.vz - EGO_SPEED_MPS) * t) % (hi - lo)
        x = self.x0 + self.vx * t
        if self.x_range is not None:
            a, b = self.x_range
            x = a + (x - a) % (b - a)
        return x - EGO_X_M, z


def _box(x0, y0, x1, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _ellipse(cx, cy, rx, ry) -> np.ndarray:
    return np.array([cx, cy, rx, ry], np.float64)


def person_sprite(rng: np.random.Generator, facing_side: bool) -> list[Prim]:
    cloth = tuple(float(c) for c in rng.uniform(0.03, 0.2) * rng.uniform(0.6, 1.0, 3))
    legs = tuple(float(c) for c in rng.uniform(0.03, 0.12) * rng.uniform(0.7, 1.0, 3))
    w = 0.16 if facing_side else 0.22
    return [
        Prim("poly", _box(-0.17, 0.0, -0.02, 0.88), 27.0, legs),  # left leg (moved when walking)
        Prim("poly", _box(0.02, 0.0, 0.17, 0.88), 27.0, legs),  # right leg
        Prim("poly", _box(-w, 0.85, w, 1.46), 29.0, cloth),  # torso (clothes insulate: cooler than skin)
        Prim("poly", _box(-w - 0.08, 0.9, -w, 1.42), 30.0, cloth),  # arms
        Prim("poly", _box(w, 0.9, w + 0.08, 1.42), 30.0, cloth),
        Prim("ellipse", _ellipse(0.0, 1.6, 0.1, 0.13), 34.0, (0.35, 0.27, 0.22)),  # head: skin is hottest
    ]


def cyclist_sprite(rng: np.random.Generator) -> list[Prim]:
    cloth = tuple(float(c) for c in rng.uniform(0.04, 0.2) * rng.uniform(0.6, 1.0, 3))
    return [
        Prim("ellipse", _ellipse(0.0, 0.34, 0.035, 0.34), 9.0, (0.04, 0.04, 0.04)),  # wheel seen end-on: cold
        Prim("poly", _box(-0.2, 0.55, -0.05, 1.05), 27.0, cloth),  # legs on the pedals
        Prim("poly", _box(0.05, 0.45, 0.2, 1.0), 27.0, cloth),
        Prim("poly", _box(-0.3, 0.95, 0.3, 0.99), 12.0, (0.3, 0.3, 0.3)),  # handlebar
        Prim("poly", _box(-0.22, 1.0, 0.22, 1.55), 29.0, cloth),  # torso
        Prim("ellipse", _ellipse(0.0, 1.7, 0.1, 0.13), 33.0, (0.3, 0.24, 0.2)),  # head
        Prim("poly", _box(-0.06, 0.55, 0.06, 0.62), 10.0, (0.2, 0.0, 0.0), emit=(1.5, 0.1, 0.05)),  # rear light
    ]


def car_sprite(
    rng: np.random.Generator, facing_camera: bool, engine_on: bool, paint: tuple[float, float, float] | None = None
) -> list[Prim]:
    paint = paint or tuple(float(c) for c in rng.uniform(0.05, 0.45) * rng.uniform(0.4, 1.0, 3))
    body_t = AIR_TEMP_C + (rng.uniform(6, 12) if engine_on else 1.0)
    tyre_t = 30.0 if engine_on else AIR_TEMP_C + 1.0
    prims = [
        Prim("poly", _box(-0.92, 0.28, 0.92, 1.0), body_t, paint),
        Prim("poly", np.array([[-0.8, 1.0], [0.8, 1.0], [0.62, 1.45], [-0.62, 1.45]]), body_t, paint),
        # glass reflects the cold sky: the coldest part of a car in IR
        Prim("poly", np.array([[-0.7, 1.05], [0.7, 1.05], [0.56, 1.38], [-0.56, 1.38]]), 0.0, (0.03, 0.035, 0.04)),
        Prim("poly", _box(-0.9, 0.0, -0.62, 0.36), tyre_t, (0.02, 0.02, 0.02)),
        Prim("poly", _box(0.62, 0.0, 0.9, 0.36), tyre_t, (0.02, 0.02, 0.02)),
        Prim("poly", _box(-0.6, 0.3, 0.6, 0.45), body_t, (0.05, 0.05, 0.05)),  # bumper
    ]
    if facing_camera:  # oncoming: hot grille and dazzling headlights
        prims.append(Prim("poly", _box(-0.45, 0.5, 0.45, 0.75), 45.0 if engine_on else body_t, (0.04, 0.04, 0.04)))
        if engine_on:
            for sx in (-1, 1):
                prims.append(
                    Prim(
                        "ellipse", _ellipse(sx * 0.68, 0.72, 0.13, 0.08), 25.0, (0.8, 0.8, 0.8), emit=(40.0, 40.0, 36.0)
                    )
                )
    else:  # seen from behind: tail lights and a hot exhaust
        for sx in (-1, 1):
            prims.append(
                Prim(
                    "poly",
                    _box(sx * 0.88 - 0.12, 0.72, sx * 0.88 + 0.12, 0.86),
                    body_t,
                    (0.25, 0.02, 0.02),
                    emit=(2.5, 0.12, 0.08) if engine_on else None,
                )
            )
        if engine_on:
            prims.append(Prim("ellipse", _ellipse(0.55, 0.25, 0.06, 0.05), 60.0, (0.02, 0.02, 0.02)))
    return prims


def lamp_sprite(side: int) -> list[Prim]:
    arm = -side * 1.2  # the arm reaches over the road
    return [
        Prim("poly", _box(-0.08, 0.0, 0.08, LAMP_HEIGHT_M), AIR_TEMP_C + 2.0, (0.18, 0.18, 0.18)),
        Prim(
            "poly",
            _box(min(0, arm), LAMP_HEIGHT_M - 0.08, max(0, arm), LAMP_HEIGHT_M),
            AIR_TEMP_C + 2.0,
            (0.18, 0.18, 0.18),
        ),
        Prim("ellipse", _ellipse(arm, LAMP_HEIGHT_M - 0.12, 0.3, 0.1), 30.0, (1, 1, 1), emit=(30.0, 22.0, 12.0)),
    ]


def tree_sprite(rng: np.random.Generator) -> list[Prim]:
    r = rng.uniform(1.4, 2.2)
    return [
        Prim("poly", _box(-0.15, 0.0, 0.15, 2.6), AIR_TEMP_C + 1.0, (0.06, 0.045, 0.03)),
        Prim("ellipse", _ellipse(0.0, 2.4 + r, r, r * 1.15), AIR_TEMP_C - 1.0, (0.03, 0.06, 0.03)),
        Prim("ellipse", _ellipse(-0.3 * r, 2.3 + 1.3 * r, 0.5 * r, 0.45 * r), AIR_TEMP_C - 2.5, (0.025, 0.05, 0.025)),
        Prim("ellipse", _ellipse(0.35 * r, 2.5 + 0.7 * r, 0.45 * r, 0.4 * r), AIR_TEMP_C, (0.035, 0.065, 0.035)),
    ]


def _windows(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Window grid on a facade (3.2 m bays, 3 m storeys, none at street level)."""
    bz, by = z % 3.2, y % 3.0
    return (bz > 0.9) & (bz < 2.3) & (by > 1.0) & (by < 2.2) & (y > 3.0)


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std texture that tiles seamlessly (it is indexed modulo its size)."""
    pad = int(4 * sigma) + 1
    wrapped = np.pad(rng.standard_normal((size, size)).astype(np.float32), pad, mode="wrap")
    n = cv2.GaussianBlur(wrapped, (0, 0), sigma)[pad:-pad, pad:-pad]
    return (n - n.mean()) / (n.std() + 1e-6)


class StreetScene:
    """The world (street layout, agents) and the renderer of one camera canvas."""

    def __init__(self, rng: np.random.Generator, canvas: Pinhole):
        self.cam = canvas
        self.rng = rng
        self._build_geometry()
        self._build_blocks()
        self.tex_fine = _smooth_noise(rng, 256, 1.0)
        self.tex_coarse = _smooth_noise(rng, 256, 6.0)
        self.agents = self._street_furniture() + self._traffic()

    # -- static geometry of the camera rays ------------------------------------------------
    def _build_geometry(self) -> None:
        """Intersect every pixel's ray with the street once; per frame only the ego offset changes.

        Ground and facade pixels are kept as flat index lists with their surface coordinates,
        so shading touches only the pixels of each surface; the sky is static and precomputed.
        """
        c = self.cam
        v, u = np.mgrid[0 : c.height, 0 : c.width].astype(np.float32)
        # ray direction (x right, y down, z = 1); OpenCV/CameraInfo convention: pixel centres at integers
        du, dv = (u - c.cx) / c.f, (v - c.cy) / c.f
        facade_dist = np.where(du < 0, FACADE_X_M + EGO_X_M, FACADE_X_M - EGO_X_M)
        with np.errstate(divide="ignore"):
            z_ground = np.where(dv > 1e-4, CAMERA_HEIGHT_M / dv, np.inf)
            z_facade = np.where(np.abs(du) > 1e-4, facade_dist / np.abs(du), np.inf)
        hits_facade = z_facade < z_ground
        z = np.minimum(np.minimum(z_ground, z_facade), FAR_M).astype(np.float32)
        world_x = (du * z + EGO_X_M).astype(np.float32)
        height = (CAMERA_HEIGHT_M - dv * z).astype(np.float32)  # above the road
        fog = np.exp(-z / 120.0).astype(np.float32)  # night haze: far surfaces fade to skyglow

        def surface(mask):
            idx = np.flatnonzero(mask)
            return dict(
                idx=idx,
                x=world_x.reshape(-1)[idx],
                y=height.reshape(-1)[idx],
                z=z.reshape(-1)[idx],
                fog=fog.reshape(-1)[idx, None],
            )

        self.ground = surface(~hits_facade & (z_ground < FAR_M))
        self.facades = {side: surface(hits_facade & (z_facade < FAR_M) & (np.sign(du) == side)) for side in (-1, 1)}
        e = np.clip(-dv * 2.0, 0, 1)[..., None]  # elevation above the horizon
        self.sky_radiance = (HAZE_RGB * (1 - e) + np.array([0.004, 0.006, 0.012], np.float32) * e).astype(np.float32)
        self.sky_temp = (SKY_TEMP_C[1] + (SKY_TEMP_C[0] - SKY_TEMP_C[1]) * e[..., 0]).astype(np.float32)
        # quarter-resolution sample points of the (smooth) illumination field
        q = (slice(2, None, 4), slice(2, None, 4))
        self._q = (world_x[q] - np.float32(EGO_X_M), height[q], z[q])

    def _build_blocks(self) -> None:
        """Buildings along each side: start, height, colour, temperature, shop front or not."""
        self.blocks = {}
        for side in (-1, 1):
            starts, z = [], 0.0
            while z < BLOCK_TABLE_M:
                starts.append(z)
                z += self.rng.uniform(8, 26)
            n = len(starts)
            gap = self.rng.random(n) < 0.15  # empty lots: sky and trees show through
            self.blocks[side] = dict(
                start=np.array(starts, np.float32),
                height=np.where(gap, 0.0, self.rng.uniform(5, 24, n)).astype(np.float32),
                color=(self.rng.uniform(0.1, 0.35, (n, 1)) * self.rng.uniform(0.7, 1.0, (n, 3))).astype(np.float32),
                temp=(AIR_TEMP_C + 2.5 + self.rng.normal(0, 1.2, n)).astype(np.float32),
                shop=self.rng.random(n) < 0.35,
            )

    def _street_furniture(self) -> list[Agent]:
        agents = []
        for side in (-1, 1):
            for k in range(int(BLOCK_TABLE_M // LAMP_SPACING_M)):
                agents.append(
                    Agent(
                        "lamp",
                        None,
                        side * LAMP_X_M,
                        k * LAMP_SPACING_M + LAMP_PHASE_M[side],
                        vz=0.0,
                        z_range=(0.0, BLOCK_TABLE_M),
                        sprite=lamp_sprite(side),
                    )
                )
            for k in range(int(BLOCK_TABLE_M // TREE_SPACING_M)):
                if self.rng.random() < 0.6:
                    z = k * TREE_SPACING_M + self.rng.uniform(0, 4)
                    agents.append(
                        Agent(
                            "tree", None, side * TREE_X_M, z, z_range=(0.0, BLOCK_TABLE_M), sprite=tree_sprite(self.rng)
                        )
                    )
        return agents

    def _traffic(self) -> list[Agent]:
        """Pedestrians, cyclists and cars placed so that several are in view at any time."""
        rng, agents = self.rng, []
        for _ in range(4):  # pedestrians on the sidewalks, walking along the street
            side = rng.choice([-1, 1])
            agents.append(
                Agent(
                    "person",
                    PERSON,
                    side * rng.uniform(5.6, 6.8),
                    rng.uniform(8, 45),
                    vz=rng.choice([-1, 1]) * 1.4,
                    z_range=(6.0, 50.0),
                    sprite=person_sprite(rng, False),
                    walk_phase=rng.uniform(0, 6.3),
                )
            )
        for _ in range(2):  # pedestrians crossing the road ahead
            agents.append(
                Agent(
                    "person",
                    PERSON,
                    rng.uniform(-6, 6),
                    rng.uniform(12, 35),
                    vx=rng.choice([-1, 1]) * 1.3,
                    z_range=(10.0, 40.0),
                    x_range=(-7.0, 7.0),
                    sprite=person_sprite(rng, True),
                    walk_phase=rng.uniform(0, 6.3),
                )
            )
        for _ in range(2):  # cyclists at the kerb, riding with the traffic of their side
            side = rng.choice([-1, 1])
            agents.append(
                Agent(
                    "cyclist",
                    BICYCLE,
                    side * rng.uniform(2.6, 3.1),
                    rng.uniform(10, 40),
                    vz=side * rng.uniform(3.5, 6.5),
                    z_range=(7.0, 50.0),
                    sprite=cyclist_sprite(rng),
                )
            )
        agents.append(
            Agent(
                "car",
                CAR,
                1.75,
                rng.uniform(15, 40),
                vz=rng.uniform(4, 7),
                z_range=(10.0, 60.0),
                sprite=car_sprite(rng, False, True),
            )
        )  # lead car in the ego lane
        agents.append(
            Agent(
                "car",
                CAR,
                -1.75,
                rng.uniform(25, 70),
                vz=-rng.uniform(6, 9),
                z_range=(8.0, 90.0),
                sprite=car_sprite(rng, True, True),
            )
        )  # oncoming car: headlight glare
        # parked under the right-side lamp 30 m ahead, engine off (cold) and light-coloured:
        # bright in the visible image, faint in IR
        agents.append(
            Agent(
                "car",
                CAR,
                PARKING_X_M,
                LAMP_PHASE_M[1],
                vz=0.0,
                z_range=(0.0, BLOCK_TABLE_M),
                sprite=car_sprite(rng, False, False, paint=(0.6, 0.6, 0.58)),
            )
        )
        agents.append(
            Agent(
                "car",
                CAR,
                -PARKING_X_M,
                rng.uniform(20, 60),
                vz=0.0,
                z_range=(0.0, BLOCK_TABLE_M),
                sprite=car_sprite(rng, True, False),
            )
        )
        return agents

    # -- rendering -------------------------------------------------------------------------
    def lamps(self, t: float) -> np.ndarray:
        """(N, 3) positions (x, y, z camera frame) of the lamp heads near the camera."""
        pos = []
        for a in self.agents:
            if a.kind == "lamp":
                x, z = a.position(t)
                if -5 < z < 120:
                    arm = a.sprite[2].pts[0]
                    pos.append((x + arm, LAMP_HEIGHT_M, z))
        return np.array(pos, np.float32).reshape(-1, 3)

    def illumination(self, x, y, z, lamps: np.ndarray) -> np.ndarray:
        """Light falling on points (x, y, z): ambient + streetlight pools + ego headlights."""
        light = np.full(np.shape(x) + (3,), AMBIENT, np.float32)
        lamp_rgb = np.array([1.0, 0.78, 0.5], np.float32)  # sodium-ish warm white
        for lx, ly, lz in lamps:
            # inverse square with the cosine of incidence on a surface facing up: a bright pool
            # under each lamp that falls off within a few metres
            d2 = (x - lx) ** 2 + (y - ly) ** 2 + (z - lz) ** 2 + 1.0
            light += (LAMP_POWER * np.maximum(ly - y, 0.5) / (d2 * np.sqrt(d2)))[..., None] * lamp_rgb
        zc = np.maximum(z, 0.5)
        cone = np.clip(1.0 - np.abs(x) / (0.15 * zc + 1.0), 0, 1) * (y < 1.6)  # low beams
        light += (cone * np.clip((10.0 / zc) ** 2, 0, 1.0) * (z > 2.0))[..., None] * np.float32(0.3)
        return light

    def render(self, t: float):
        """Render frame time ``t`` (s): ``radiance, emission, temperature, boxes``.

        Boxes are ``(class id, x0, y0, x1, y1, visible fraction)`` of every traffic agent, in
        canvas pixel-centre coordinates (the outline of the drawn shapes; add 0.5 for pixel-edge
        coordinates); the visible fraction is the share of its pixels not hidden by nearer objects.
        """
        c = self.cam
        lamps = self.lamps(t)
        light = cv2.resize(self.illumination(*self._q, lamps), (c.width, c.height), interpolation=cv2.INTER_LINEAR)
        radiance, emission, temperature = self._shade(EGO_SPEED_MPS * t, light.reshape(-1, 3))

        # painter's order (far to near); ``owner`` records which traffic agent each pixel shows,
        # so objects hidden behind nearer ones can be told apart from visible ones
        owner = np.zeros((c.height, c.width), np.int16)
        drawn = [(a, *a.position(t)) for a in self.agents]
        drawn = sorted((d for d in drawn if 3.0 < d[2] < 150.0), key=lambda d: -d[2])
        labelled = []
        for k, (agent, x, z) in enumerate(drawn, 1):
            result = self._draw(agent, x, z, t, lamps, radiance, emission, temperature)
            if result is None:
                continue
            box, shapes = result
            for shape in shapes:
                _fill(owner, shape, k if agent.cls is not None else 0)
            if agent.cls is not None:
                labelled.append((k, agent.cls, box, shapes))
        boxes = [(cls, *box, self._visible_fraction(k, box, shapes, owner)) for k, cls, box, shapes in labelled]
        return radiance, emission, temperature, boxes

    def _visible_fraction(self, k: int, box, shapes, owner: np.ndarray) -> float:
        """Share of agent ``k``'s own pixels (on the canvas) not covered by nearer objects."""
        c = self.cam
        x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
        x1, y1 = min(int(np.ceil(box[2])) + 1, c.width), min(int(np.ceil(box[3])) + 1, c.height)
        if x1 <= x0 or y1 <= y0:
            return 0.0
        alone = np.zeros((y1 - y0, x1 - x0), np.uint8)
        shift = np.array([x0, y0]) * 16
        for shape in shapes:  # the agent drawn alone, in box-local coordinates
            if shape[0] == "poly":
                _fill(alone, ("poly", shape[1] - shift), 1)
            else:
                _fill(alone, ("ellipse", (shape[1][0] - shift[0], shape[1][1] - shift[1]), shape[2]), 1)
        own = int(alone.sum())
        return float(np.count_nonzero(owner[y0:y1, x0:x1] == k)) / own if own else 0.0

    def _textures(self, zw: np.ndarray, across: np.ndarray):
        """Fine (asphalt grain, 3 cm) and coarse (patches, 0.5 m) texture at surface coordinates."""
        fine = self.tex_fine[(np.abs(zw) * 30).astype(np.int32) & 255, (np.abs(across) * 30).astype(np.int32) & 255]
        coarse = self.tex_coarse[(np.abs(zw) * 2).astype(np.int32) & 255, (np.abs(across) * 2).astype(np.int32) & 255]
        return fine, coarse

    def _shade(self, ego_z: float, light: np.ndarray):
        """Radiance (HxWx3), emission (HxWx3) and temperature (HxW) of sky, road and facades
        with the ego car ``ego_z`` metres down the street."""
        c = self.cam
        radiance = self.sky_radiance.copy()
        temperature = self.sky_temp.copy()
        emission = np.zeros((c.height, c.width, 3), np.float32)
        rad_flat, temp_flat, em_flat = radiance.reshape(-1, 3), temperature.reshape(-1), emission.reshape(-1)

        # ground: asphalt (road), concrete (sidewalk), paint (lane marks)
        g = self.ground
        x, zw = g["x"], g["z"] + np.float32(ego_z)
        fine, coarse = self._textures(zw, x)
        road = np.abs(x) < ROAD_HALF_WIDTH_M
        paint = road & (
            ((np.abs(x) < 0.08) & ((zw % 9.0) < 3.0))  # centre dashes
            | (np.abs(np.abs(x) - (ROAD_HALF_WIDTH_M - 0.3)) < 0.08)
        )  # edge lines
        refl = np.where(road, 0.07 * (1 + 0.25 * fine + 0.15 * coarse), 0.16 * (1 + 0.15 * fine + 0.1 * coarse))
        refl = np.where(paint, 0.55 * (1 + 0.05 * fine), refl)
        # asphalt keeps the day's heat; paint emits a little less than asphalt: faint in IR
        temp = np.where(road, 10.5 + 0.6 * coarse + 0.2 * fine, 8.5 + 0.4 * coarse) - 1.2 * paint
        self._composite(g, refl[:, None] * light[g["idx"]], temp, rad_flat, temp_flat)

        for side, f in self.facades.items():
            blk = self.blocks[side]
            zw = f["z"] + np.float32(ego_z)
            b = np.searchsorted(blk["start"], zw % BLOCK_TABLE_M, side="right") - 1
            wall = f["y"] < blk["height"][b]  # above the roof line the ray sees sky
            f = {k: v[wall] for k, v in f.items()}
            zw, b, y = zw[wall], b[wall], f["y"]
            fine, coarse = self._textures(zw, y)
            win = _windows(zw, y)
            col = blk["color"][b] * (1 + 0.2 * fine + 0.15 * coarse)[:, None]
            col[win] = 0.04
            temp = blk["temp"][b] + 0.4 * coarse - 1.5 * win  # window glass reflects the cold sky
            # emitters: some windows are lit; shop fronts at street level glow
            bay, storey = np.floor(zw / 3.2).astype(np.int64), np.floor(y / 3.0).astype(np.int64)
            lit = win & (((bay * 73856093) ^ (storey * 19349663) ^ (side + 7)) % 100 < 22)
            shop = blk["shop"][b] & (y > 0.4) & (y < 2.6) & (((zw - blk["start"][b]) % 6.0) > 0.6)
            em = np.zeros((len(zw), 3), np.float32)
            em[lit] = (0.35, 0.27, 0.15)
            em[shop] = (0.5, 0.45, 0.35)
            em *= f["fog"]
            em_flat.reshape(-1, 3)[f["idx"]] = em
            self._composite(f, col * light[f["idx"]] + em, temp, rad_flat, temp_flat)
        return radiance, emission, temperature

    @staticmethod
    def _composite(surf: dict, radiance, temp, rad_flat, temp_flat) -> None:
        """Write a surface's shading into the frame, faded into the haze with distance."""
        fog = surf["fog"]
        rad_flat[surf["idx"]] = radiance * fog + HAZE_RGB * (1 - fog)
        temp_flat[surf["idx"]] = temp * fog[:, 0] + AIR_TEMP_C * (1 - fog[:, 0])

    def _draw(self, agent: Agent, x: float, z: float, t: float, lamps, radiance, emission, temperature):
        """Rasterise a sprite at (x, z); returns ``(box, shapes)`` in canvas pixels, or None when
        out of view. ``shapes`` can be filled again (see :func:`_fill`) to measure occlusion."""
        c = self.cam
        scale = c.f / z
        u0, v0 = c.cx + x * scale, c.cy + CAMERA_HEIGHT_M * scale
        if not (-4 * scale < u0 < c.width + 4 * scale):
            return None
        light = self.illumination(np.float32(x), np.float32(1.0), np.float32(z), lamps)
        fog = np.exp(-z / 120.0)
        shapes, corners = [], []
        for i, p in enumerate(agent.sprite):
            pts = p.pts
            if agent.walk_phase is not None and i < 2:  # swing the legs
                swing = 0.12 * np.sin(agent.walk_phase + 7.0 * t) * (1 if i == 0 else -1)
                pts = pts + np.array([[swing, 0]] * 2 + [[0, 0]] * 2)
            if p.kind == "poly":
                px = np.stack([u0 + pts[:, 0] * scale, v0 - pts[:, 1] * scale], 1)
                shape = ("poly", np.round(px * 16).astype(np.int32))
                corners += [px.min(0), px.max(0)]
            else:
                cx_, cy_, rx, ry = pts
                centre = (int(round((u0 + cx_ * scale) * 16)), int(round((v0 - cy_ * scale) * 16)))
                axes = (max(int(round(rx * scale * 16)), 8), max(int(round(ry * scale * 16)), 8))
                shape = ("ellipse", centre, axes)
                corners += [
                    (u0 + (cx_ - rx) * scale, v0 - (cy_ + ry) * scale),
                    (u0 + (cx_ + rx) * scale, v0 - (cy_ - ry) * scale),
                ]
            _fill(radiance, shape, p.emit or tuple(float(r * l * fog) for r, l in zip(p.refl, light)))
            _fill(temperature, shape, float(p.temp))
            if p.emit:
                _fill(emission, shape, p.emit)
            shapes.append(shape)
        corners = np.asarray(corners)
        return (*corners.min(0), *corners.max(0)), shapes


def _fill(img: np.ndarray, shape: tuple, value) -> None:
    """Fill a sprite shape (fixed-point, 4 fractional bits) into ``img`` with ``value``."""
    if shape[0] == "poly":
        cv2.fillConvexPoly(img, shape[1], value, cv2.LINE_8, 4)
    else:
        cv2.ellipse(img, shape[1], shape[2], 0, 0, 360, value, -1, cv2.LINE_8, 4)
