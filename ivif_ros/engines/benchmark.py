"""Backend benchmark: milliseconds per frame through ``FusionPipeline``, split into pre, infer and post.

Each (model, backend, precision, frame size) runs on a real MSRS pair resized to the frame
size (a synthetic pair if the data is absent): ``warmup`` untimed frames, then the median
of ``runs`` timed frames per stage, for three parts, interleaved frame by frame so that a
change in machine load hits all three alike:

* ``fusion``: the pipeline without the detector (pre-processing, fusion model, images and mask);
* ``detector``: the detector alone on the fused frame (input blob, inference, decoding + NMS);
* ``fusion+detector``: the whole pipeline, as the node runs it.

The fusion row's inference column comes from ``engines.selection.time_engines``, the
function ``engine.backend: auto`` times its candidates with, so the two agree.

Used by ``ivif bench`` and ``bench/bench_backends.py``.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ivif_ros.errors import BackendUnavailable

log = logging.getLogger(__name__)

#: Backends per model. The teacher has no ONNX export (its FFT), so no ONNX Runtime, and skips
#: torch.compile (minutes of compile time for a model that is not meant to run live).
DEFAULT_BACKENDS = {
    "student": [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")],
    "teacher": [("torch", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")],
}
DEFAULT_SIZES = [(640, 480), (1280, 1024)]
SAMPLE_PAIR = ("msrs", "test", "00537D.png")  # an MSRS night pair, under the data folder $IVIF_DATA


#: The ``part`` column: what a row times.
PARTS = ("fusion", "detector", "fusion+detector")


@dataclass
class BenchRow:
    model: str
    part: str
    backend: str
    precision: str
    width: int
    height: int
    pre_ms: float
    infer_ms: float
    post_ms: float
    total_ms: float
    runs: int

    @property
    def fps(self) -> float:
        return 1e3 / self.total_ms


def sample_frames(width: int, height: int, data: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(ir, vis_rgb, source)`` at ``width x height``: the MSRS night pair ``SAMPLE_PAIR`` of the data
    folder ``data`` (default $IVIF_DATA) if present, else synthetic."""
    import cv2

    from ivif_ros.datasets.paired import read_image

    data = data or os.environ.get("IVIF_DATA")
    *folder, name = SAMPLE_PAIR
    root = Path(data, *folder) if data else None
    ir_path = root / "ir" / name if root else None
    if ir_path is not None and ir_path.exists():
        ir, vis = read_image(ir_path), read_image(root / "vi" / ir_path.name)
        size = (width, height)
        return cv2.resize(ir, size), cv2.resize(vis, size), f"MSRS {ir_path.stem} resized"
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, (height, width), dtype=np.uint8),
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "synthetic noise",
    )


def load_bench_model(name: str):
    """``(model, where its weights came from, architecture)``: the shipped weights of ``student`` or
    ``teacher`` if present, a weights file given by path, else the architecture with random
    weights (timing is the same)."""
    import torch

    from ivif_ros.engines.model_source import resolve_model
    from ivif_ros.errors import UserFacingError
    from ivif_ros.models import BUILDERS

    try:
        model, meta = resolve_model(name)
        source = "shipped weights" if name in BUILDERS else f"weights file {name}"
        return model, source, meta.get("architecture", name)
    except UserFacingError as exc:
        if name not in BUILDERS:
            raise
        log.warning("bench: %s; timing the %s architecture with random weights instead", exc, name)
        torch.manual_seed(0)
        return BUILDERS[name]({}).eval(), "random weights (shipped weights absent)", name


def bench_one(
    model,
    model_name: str,
    backend: str,
    precision: str,
    width: int,
    height: int,
    runs: int,
    warmup: int,
    cache_dir: Path,
    threads: int = 0,
    detector: str | None = None,
) -> list[BenchRow]:
    """Rows for the parts of ``PARTS`` (only ``fusion`` when ``detector`` is ``""``); ``detector``
    None means the configured default (``PipelineConfig.detector``)."""
    from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
    from ivif_ros.engines import EngineConfig, build_backend
    from ivif_ros.engines.fingerprint import model_hash
    from ivif_ros.engines.selection import time_engines

    cfg = EngineConfig(
        backend=backend, precision=precision, width=width, height=height, threads=threads, cache_dir=cache_dir
    )
    engine = build_backend(backend, model, cfg, model_hash(model))
    full_cfg = PipelineConfig(engine=cfg) if detector is None else PipelineConfig(engine=cfg, detector=detector)
    fusion_only = FusionPipeline(PipelineConfig(engine=cfg, detector=""), engine=engine)
    full = FusionPipeline(full_cfg, engine=engine) if full_cfg.detector else None
    ir, vis, _ = sample_frames(width, height)

    def frame() -> dict[str, dict[str, float]]:
        times = {"fusion": fusion_only.process(ir, vis).timings}
        if full is not None:
            result = full.process(ir, vis)
            _, (blob_s, infer_s, decode_s) = full.detect(result.fused_rgb)
            times["detector"] = {
                "pre_ms": blob_s * 1e3,
                "infer_ms": infer_s * 1e3,
                "post_ms": decode_s * 1e3,
                "total_ms": (blob_s + infer_s + decode_s) * 1e3,
            }
            times["fusion+detector"] = result.timings
        return times

    for _ in range(warmup):
        frame()
    samples = [frame() for _ in range(runs)]
    rows = []
    for part in samples[0]:
        med = {k: statistics.median(s[part][k] for s in samples) for k in ("pre_ms", "infer_ms", "post_ms", "total_ms")}
        name = {"fusion": model_name, "detector": full_cfg.detector}.get(part, f"{model_name}+{full_cfg.detector}")
        if part == "fusion":
            # Inference timed as engine.backend auto times its candidates, so the two agree.
            med["infer_ms"] = time_engines({backend: engine}, cfg.input_hw, runs, warmup)[backend]
            med["total_ms"] = med["pre_ms"] + med["infer_ms"] + med["post_ms"]
        rows.append(
            BenchRow(
                name,
                part,
                backend,
                precision,
                width,
                height,
                med["pre_ms"],
                med["infer_ms"],
                med["post_ms"],
                med["total_ms"],
                runs,
            )
        )
    return rows


def run_benchmark(
    models: list[str],
    sizes: list[tuple[int, int]],
    runs: int = 20,
    warmup: int = 3,
    include_compile: bool = False,
    threads: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
    detector: str | None = None,
) -> tuple[list[BenchRow], dict]:
    """Time every configuration; returns the rows and the conditions (host, load, weights) they ran under.

    ``detector``: the detector's weights (None: the configured default; ``""``: fusion rows only)."""
    from tqdm import tqdm

    from ivif_ros.engines.fingerprint import cpu_description, package_versions

    plan = []
    loaded = {name: load_bench_model(name) for name in models}
    for name in models:
        arch = loaded[name][2]  # a weights path is timed with the backends of its architecture
        backends = list(DEFAULT_BACKENDS.get(arch, DEFAULT_BACKENDS["teacher"]))
        if include_compile and arch == "student":
            backends.insert(1, ("torch_compile", "fp32"))
        plan += [(name, b, p, w, h) for (w, h) in sizes for (b, p) in backends]
    conditions = {
        "host": cpu_description(),
        "load_before": os.getloadavg(),
        "weights": {name: source for name, (_, source, _) in loaded.items()},
        "frames": sample_frames(*sizes[0])[2],
        "runs": runs,
        "warmup": warmup,
        **package_versions("torch", "onnxruntime", "openvino"),
    }
    rows = []
    with tempfile.TemporaryDirectory() if cache_dir is None else nullcontext(cache_dir) as cache:
        for name, backend, precision, w, h in tqdm(plan, desc="bench", unit="config", disable=not progress):
            try:
                new = bench_one(
                    loaded[name][0], name, backend, precision, w, h, runs, warmup, Path(cache), threads, detector
                )
                timed = {(r.part, r.backend, r.precision, r.width, r.height) for r in rows}
                # the detector alone does not depend on the fusion model: one row per configuration
                rows += [
                    r
                    for r in new
                    if r.part != "detector" or (r.part, r.backend, r.precision, r.width, r.height) not in timed
                ]
            except BackendUnavailable as exc:
                log.warning("bench: skipping %s: %s", backend, exc)
    conditions["load_after"] = os.getloadavg()
    return rows, conditions


def markdown_table(rows: list[BenchRow]) -> str:
    lines = [
        "| model | part | backend | precision | size | pre ms | infer ms | post ms | total ms | FPS |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.part} | {r.backend} | {r.precision} | {r.width}x{r.height} | {r.pre_ms:.1f} | "
            f"{r.infer_ms:.1f} | {r.post_ms:.1f} | {r.total_ms:.1f} | {r.fps:.1f} |"
        )
    return "\n".join(lines)


def rows_as_dicts(rows: list[BenchRow]) -> list[dict]:
    return [{**asdict(r), "fps": round(r.fps, 2)} for r in rows]


def plot(rows: list[BenchRow], path: Path) -> None:
    """Stacked pre/infer/post bars, one panel per (model, frame size) on a linear scale, 30/60 FPS lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in rows))
    sizes = sorted({(r.width, r.height) for r in rows})
    fig, axes = plt.subplots(
        len(models), len(sizes), figsize=(5.5 * len(sizes), 0.6 + 0.5 * 5 * len(models)), squeeze=False
    )
    for ax_row, model in zip(axes, models):
        for ax, (w, h) in zip(ax_row, sizes):
            sel = [r for r in rows if r.model == model and (r.width, r.height) == (w, h)]
            y = np.arange(len(sel))
            left = np.zeros(len(sel))
            for stage, colour in (("pre_ms", "#8da0cb"), ("infer_ms", "#fc8d62"), ("post_ms", "#66c2a5")):
                vals = np.array([getattr(r, stage) for r in sel])
                ax.barh(y, vals, left=left, color=colour, label=stage.removesuffix("_ms"))
                left += vals
            for fps, style in ((30, "--"), (60, ":")):
                ax.axvline(1e3 / fps, color="k", linestyle=style, linewidth=0.8, label=f"{fps} FPS")
            ax.set_yticks(y, [f"{r.backend} {r.precision}" for r in sel], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("ms per frame (median)")
            ax.set_title(f"{model}, {w}x{h}", fontsize=10)
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
