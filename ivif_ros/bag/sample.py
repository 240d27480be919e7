"""The embedded synthetic sample: a night drive as registered image pairs and as a rosbag2 bag.

Output layout (``DIR``)::

    calibration.yaml                 IR->visible homography, intrinsics, IR count scaling
    pairs/ir/NNNNNN.png              IR registered onto the visible frame, 8-bit
    pairs/vi/NNNNNN.png              visible RGB
    pairs/labels_det/{ir,vi}/*.txt   YOLO boxes (person 0, bicycle 1, car 2), visible frame
    bag/                             rosbag2 (mcap or sqlite3), topics in ``TOPICS``

The IR images in the bag are in the IR camera's own geometry (resolution, intrinsics,
small rotation); ``calibration.yaml`` holds the exact homography that registers them.
The same seed and options give byte-identical files.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.synthetic_scene import CLASS_NAMES, StreetScene
from ivif_ros.bag.synthetic_sensors import ThermalCounts, ThermalSensor, make_rig, visible_sensor
from ivif_ros.bag.timing import TimingConfig, camera_times
from ivif_ros.bag.writer import BagWriter
from ivif_ros.errors import ConfigError, InputError

TOPICS = {
    "ir": "/ir/image_raw",
    "ir_info": "/ir/camera_info",
    "vis": "/visible/image_raw",
    "vis_info": "/visible/camera_info",
    "detections": "/ground_truth/detections",
    "name": "/ground_truth/name",
}
IR_FRAME = "ir_camera_optical_frame"
VIS_FRAME = "visible_camera_optical_frame"
MIN_BOX_PX = 6.0  # smaller boxes (far objects) are not labelled, as in MSRS
MIN_VISIBLE_FRACTION = 0.3  # objects hidden more than this behind nearer ones are not labelled


@dataclass(frozen=True)
class SampleOptions:
    seed: int = 0
    frames: int = 90  # 3 s at 30 Hz: enough for a demo, small enough for tests
    width: int = 640
    height: int = 480
    ir_width: int = 640
    ir_height: int = 512
    storage: str = "mcap"
    compress: bool = False  # zstd MCAP chunks
    ir_encoding: str = "mono16"  # raw thermal counts; 'mono8' gives display-scaled IR
    vis_encoding: str = "rgb8"
    timing: TimingConfig = field(default_factory=TimingConfig)
    write_pairs: bool = True
    write_bag: bool = True

    def validate(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"--frames {self.frames}: must be at least 1")
        if self.width < 64 or self.height < 64 or self.ir_width < 32 or self.ir_height < 32:
            raise ConfigError("image sizes must be at least 64x64 (visible) and 32x32 (IR)")
        if self.ir_encoding not in ("mono16", "mono8"):
            raise ConfigError(f"--ir-encoding {self.ir_encoding!r}: use mono16 (raw counts) or mono8")
        if self.vis_encoding not in ("rgb8", "bgr8"):
            raise ConfigError(f"--vis-encoding {self.vis_encoding!r}: use rgb8 or bgr8")
        if self.compress and self.storage != "mcap":
            raise ConfigError("--compress needs --storage mcap (chunk compression); sqlite3 bags are stored raw")
        if not (self.write_pairs or self.write_bag):
            raise ConfigError("--no-pairs with --no-bag leaves nothing to write; drop one of them")
        self.timing.validate()


@dataclass
class SampleResult:
    out: Path
    frames: int
    seconds: float
    bag: Path | None
    pairs: Path | None
    calibration: Path
    messages: dict[str, int]  # per topic, as written


def visible_boxes(boxes, margin: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Canvas outline boxes -> pixel-edge ``xyxy`` in the visible image, clipped; tiny, mostly
    out-of-view and mostly occluded objects are dropped (the full extent of a partly occluded
    object is kept, as annotators do)."""
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)
    a = np.asarray(boxes, np.float64)
    cls, xyxy, unoccluded = a[:, 0].astype(np.int64), a[:, 1:5] - margin + 0.5, a[:, 5]  # centre -> edge coords
    clipped = np.clip(xyxy, 0, [width, height, width, height])
    area = np.prod(xyxy[:, 2:] - xyxy[:, :2], 1)
    area_in = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), 1)
    keep = (
        (area_in >= 0.5 * area)
        & ((clipped[:, 3] - clipped[:, 1]) >= MIN_BOX_PX)
        & ((clipped[:, 2] - clipped[:, 0]) >= MIN_BOX_PX / 3)
        & (unoccluded >= MIN_VISIBLE_FRACTION)
    )
    return clipped[keep].astype(np.float32), cls[keep]


def yolo_lines(xyxy: np.ndarray, cls: np.ndarray, width: int, height: int) -> str:
    c = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    s = xyxy[:, 2:] - xyxy[:, :2]
    rows = np.column_stack([c[:, 0] / width, c[:, 1] / height, s[:, 0] / width, s[:, 1] / height])
    return "".join(f"{k} {r[0]:.6f} {r[1]:.6f} {r[2]:.6f} {r[3]:.6f}\n" for k, r in zip(cls, rows))


def write_calibration(path: Path, rig, counts: ThermalCounts, opts: SampleOptions) -> None:
    """calibration.yaml: ``homography`` (the key ``ivif_ros.core.registration`` reads) and context."""

    def mat(m):
        return "[" + ", ".join("[" + ", ".join(f"{v:.12g}" for v in row) + "]" for row in np.asarray(m)) + "]"

    lo, hi = counts.display_range_counts()
    path.write_text(
        "# Synthetic IR/visible rig written by `ivif sample`.\n"
        "# homography maps IR pixel coordinates to visible pixel coordinates (cv2.warpPerspective\n"
        "# convention, pixel centres at integers). It is exact: both cameras share a centre of\n"
        "# projection, so there is no parallax.\n"
        f"homography: {mat(rig.ir_to_visible)}\n"
        "visible:\n"
        f"  frame_id: {VIS_FRAME}\n  width: {rig.visible.width}\n  height: {rig.visible.height}\n"
        f"  K: {mat(rig.visible.k)}\n  encoding: {opts.vis_encoding}\n"
        "ir:\n"
        f"  frame_id: {IR_FRAME}\n  width: {rig.ir.width}\n  height: {rig.ir.height}\n"
        f"  K: {mat(rig.ir.k)}\n  encoding: {opts.ir_encoding}\n"
        f"  # R maps IR camera axes to visible camera axes (H = K_vis R K_ir^-1)\n  R: {mat(rig.r_ir_to_vis)}\n"
        f"  # mono16 counts = offset + gain * temperature_C; the 8-bit pairs map [{counts.display_range_c[0]}, "
        f"{counts.display_range_c[1]}] C to 0..255\n"
        f"  counts_offset: {counts.offset}\n  counts_per_kelvin: {counts.gain}\n"
        f"  display_min_counts: {lo}\n  display_max_counts: {hi}\n"
        "timing:\n"
        f"  rate_hz: {opts.timing.rate_hz}\n  jitter_ms: {opts.timing.jitter_ms}\n"
        f"  ir_offset_ms: {opts.timing.ir_offset_ms}\n  drop_prob: {opts.timing.drop_prob}\n"
        f"seed: {opts.seed}\nframes: {opts.frames}\n"
    )


def generate_sample(
    out: str | Path, opts: SampleOptions = SampleOptions(), *, overwrite: bool = False, progress: bool = True
) -> SampleResult:
    """Render the sequence and write pairs, bag and calibration under ``out``."""
    from tqdm import tqdm

    opts.validate()
    out = Path(out)
    _prepare_out(out, overwrite)
    started = time.perf_counter()
    seeds = np.random.SeedSequence(opts.seed).spawn(4)
    scene_rng, rig_rng, noise_rng, timing_rng = (np.random.default_rng(s) for s in seeds)

    rig = make_rig(rig_rng, opts.width, opts.height, opts.ir_width, opts.ir_height)
    canvas, margin = rig.canvas()
    scene = StreetScene(scene_rng, canvas)
    counts = ThermalCounts()
    thermal = ThermalSensor.create(rig_rng, rig, margin, counts)
    vis_times, ir_times = camera_times(opts.frames, opts.timing, timing_rng)
    calibration = out / "calibration.yaml"
    write_calibration(calibration, rig, counts, opts)

    pairs = out / "pairs" if opts.write_pairs else None
    if pairs is not None:
        for sub in ("ir", "vi", "labels_det/ir", "labels_det/vi"):
            (pairs / sub).mkdir(parents=True, exist_ok=True)
    bag = BagWriter(out / "bag", storage=opts.storage, compress=opts.compress) if opts.write_bag else None
    written = {t: 0 for t in TOPICS.values()}
    # PNG encoding and all bag I/O run on one worker thread (cv2 and file I/O release the GIL; sqlite
    # objects must stay on the thread that made them), in frame order, overlapping the rendering of
    # the next frame; at most a few frames in flight bound the memory.
    io = ThreadPoolExecutor(max_workers=1)
    pending: list[Future] = []
    try:
        if bag is not None:
            io.submit(_open_bag, bag).result()
        for i in tqdm(range(opts.frames), desc="ivif sample", unit="frame", disable=not progress):
            name = f"{i:06d}"
            t = (vis_times.stamp_ns[i] - opts.timing.start_ns) / 1e9
            radiance, emission, temperature, canvas_boxes = scene.render(t)
            vis = visible_sensor(radiance, emission, margin, noise_rng)
            ir_counts = thermal.capture(temperature, noise_rng)
            xyxy, cls = visible_boxes(canvas_boxes, margin, opts.width, opts.height)
            if pairs is not None:
                pending.append(
                    io.submit(_write_pair, pairs, name, vis, counts.to_8bit(thermal.register(ir_counts)), xyxy, cls)
                )
            if bag is not None:
                ir_img = ir_counts if opts.ir_encoding == "mono16" else counts.to_8bit(ir_counts)
                pending.append(
                    io.submit(
                        _write_frame, bag, i, name, vis, ir_img, xyxy, cls, rig, vis_times, ir_times, opts, written
                    )
                )
            while len(pending) > 4:
                pending.pop(0).result()  # re-raises a failed write here
        for job in pending:
            job.result()
        if bag is not None:
            io.submit(bag.close).result()
    except BaseException:
        # all or nothing: an interrupted sample keeps no metadata.yaml, so it is not mistaken
        # for a complete one (and `--overwrite` can replace it)
        if bag is not None:
            io.submit(bag.abort).result()
        raise
    finally:
        io.shutdown(wait=True)
    return SampleResult(
        out, opts.frames, time.perf_counter() - started, out / "bag" if bag else None, pairs, calibration, written
    )


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"output folder {out} is not empty; choose a new folder or pass --overwrite")
        if not (out / "calibration.yaml").is_file():
            raise InputError(
                f"refusing to overwrite {out}: it does not look like an `ivif sample` output (no calibration.yaml)"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _open_bag(bag: BagWriter) -> None:
    bag.open()
    for key, msgtype in (
        ("ir", im.IMAGE),
        ("ir_info", im.CAMERA_INFO),
        ("vis", im.IMAGE),
        ("vis_info", im.CAMERA_INFO),
        ("detections", im.DETECTION_ARRAY),
        ("name", im.HEADER),
    ):
        bag.add_topic(TOPICS[key], msgtype)


def _write_pair(pairs: Path, name: str, vis: np.ndarray, ir8: np.ndarray, xyxy, cls) -> None:
    # Huffman-only coding after the 'up' filter: 3-4x faster than zlib's default for about the same
    # size on these noisy frames (sensor noise does not deflate well anyway)
    png = [
        cv2.IMWRITE_PNG_COMPRESSION,
        1,
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
        cv2.IMWRITE_PNG_FILTER,
        cv2.IMWRITE_PNG_FILTER_UP,
    ]
    for path, img in ((pairs / "vi" / f"{name}.png", vis[:, :, ::-1]), (pairs / "ir" / f"{name}.png", ir8)):
        if not cv2.imwrite(str(path), img, png):
            raise InputError(f"cannot write {path}: check that the disk has space and the folder is writable")
    labels = yolo_lines(xyxy, cls, vis.shape[1], vis.shape[0])
    for sub in ("ir", "vi"):  # ground truth, not per-modality annotation: both files are the same
        (pairs / "labels_det" / sub / f"{name}.txt").write_text(labels)


def _write_frame(
    bag: BagWriter,
    i: int,
    name: str,
    vis,
    ir_img,
    xyxy,
    cls,
    rig,
    vis_times,
    ir_times,
    opts: SampleOptions,
    written: dict,
) -> None:
    ts = bag.typestore

    def put(topic, t_ns, msg):
        bag.write(topic, t_ns, msg)
        written[topic] += 1

    if ir_times.kept[i]:
        stamp, recv = int(ir_times.stamp_ns[i]), int(ir_times.receive_ns[i])
        put(TOPICS["ir"], recv, im.make_image(ts, ir_img, opts.ir_encoding, stamp, IR_FRAME))
        put(TOPICS["ir_info"], recv, im.make_camera_info(ts, stamp, IR_FRAME, rig.ir.width, rig.ir.height, rig.ir.k))
    if vis_times.kept[i]:
        stamp, recv = int(vis_times.stamp_ns[i]), int(vis_times.receive_ns[i])
        img = vis if opts.vis_encoding == "rgb8" else np.ascontiguousarray(vis[:, :, ::-1])
        put(TOPICS["vis"], recv, im.make_image(ts, img, opts.vis_encoding, stamp, VIS_FRAME))
        put(
            TOPICS["vis_info"],
            recv,
            im.make_camera_info(ts, stamp, VIS_FRAME, rig.visible.width, rig.visible.height, rig.visible.k),
        )
        put(TOPICS["detections"], recv, im.make_detection_array(ts, stamp, VIS_FRAME, xyxy, cls, list(CLASS_NAMES)))
        put(TOPICS["name"], recv, im.header(ts, stamp, name))
