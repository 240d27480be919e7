"""``report.md`` of a replay: tables from ``summary.json`` and three kinds of plots.

* ``metric_trends.png`` - each fusion metric against bag time, to spot scenes (night,
  glare) where the fusion degrades instead of only seeing a mean;
* ``latency.png`` - histograms of the pipeline total and, in live mode, end-to-end latency
  with the p50/p99 marked, because a mean hides the tail that misses a 33 ms budget;
* ``samples/frame_<i>.png`` - IR | visible | fused | mask overlay with boxes, for a few
  frames spread over the bag, to see what the numbers describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivif_ros.metrics.contrast import CONTRAST_NOTE
from ivif_ros.replay.summary import END_TO_END, METRIC_NAMES, FrameRecord

# Colours of semantic classes in overlays (class id -> RGB); background (0) is not drawn.
PALETTE = np.array(
    [
        [0, 0, 0],
        [220, 20, 60],
        [255, 200, 0],
        [0, 140, 255],
        [60, 220, 60],
        [255, 0, 255],
        [0, 255, 255],
        [255, 128, 0],
        [128, 0, 255],
    ],
    np.uint8,
)


@dataclass
class SampleFrame:
    """The images of one frame kept for the report's sample panels."""

    stamp_ns: int
    ir: np.ndarray  # registered IR, HxW uint8
    vis: np.ndarray  # visible, HxWx3 RGB or HxW uint8
    fused_rgb: np.ndarray  # HxWx3 uint8
    mask: np.ndarray | None = None  # HxW class ids, None when the model has no segmentation head
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # detections xyxy
    labels: list[str] = field(default_factory=list)  # "person 0.87" per detection
    gt_boxes: np.ndarray | None = None  # ground-truth xyxy, None when the bag has none
    name: str = ""  # dataset pair name, when the bag carries one


def mask_overlay(rgb: np.ndarray, mask: np.ndarray | None, alpha: float = 0.45) -> np.ndarray:
    """Blend class colours over ``rgb`` where the mask is not background."""
    if mask is None:
        return rgb
    colours = PALETTE[np.asarray(mask, np.int64) % len(PALETTE)]
    fg = (mask > 0)[..., None]
    blended = rgb.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha
    return np.where(fg, blended, rgb).astype(np.uint8)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metric_trends(frames: list[FrameRecord], path: Path) -> bool:
    scored = [f for f in frames if f.metrics]
    if not scored:
        return False
    plt = _plt()
    t0 = frames[0].stamp_ns
    t = np.array([(f.stamp_ns - t0) * 1e-9 for f in scored])
    fig, axes = plt.subplots(2, 5, figsize=(18, 6), sharex=True)
    for ax, name in zip(axes.flat, METRIC_NAMES):
        v = np.array([f.metrics.get(name, np.nan) for f in scored], np.float64)
        ax.plot(t, v, ".-", ms=3, lw=0.8)
        if np.isfinite(v).any():
            ax.axhline(np.nanmean(v), color="tab:red", lw=0.8, ls="--", label="mean")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("bag time [s]")
    axes.flat[0].legend(loc="best", fontsize=8)
    fig.suptitle(f"Fusion metrics per frame ({len(scored)} scored frames)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_latency(frames: list[FrameRecord], path: Path) -> bool:
    series = {"pipeline total": [f.stage_ms["total"] for f in frames if "total" in f.stage_ms]}
    series[END_TO_END.replace("_", "-")] = [f.end_to_end_ms for f in frames if f.end_to_end_ms is not None]
    series = {k: np.asarray(v, np.float64) for k, v in series.items() if len(v)}
    if not series:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(series), figsize=(6 * len(series), 4), squeeze=False)
    for ax, (name, v) in zip(axes[0], series.items()):
        ax.hist(v, bins=min(50, max(5, v.size // 3)), color="tab:blue", alpha=0.8)
        for q, style in ((50, "--"), (99, ":")):
            x = np.percentile(v, q)
            ax.axvline(x, color="tab:red", ls=style, label=f"p{q} = {x:.1f} ms")
        ax.set_xlabel(f"{name} latency [ms]")
        ax.set_ylabel("frames")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_sample(sample: SampleFrame, path: Path, title: str) -> None:
    plt = _plt()
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    panels = [
        ("IR (registered)", sample.ir),
        ("visible", sample.vis),
        ("fused", sample.fused_rgb),
        ("mask + boxes", mask_overlay(sample.fused_rgb, sample.mask)),
    ]
    for ax, (name, img) in zip(axes, panels):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(name)
        ax.axis("off")
    ax = axes[3]
    if sample.gt_boxes is not None:
        for x0, y0, x1, y1 in sample.gt_boxes:
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", ls="--", lw=1))
    for (x0, y0, x1, y1), label in zip(sample.boxes, sample.labels):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.2))
        ax.text(
            x0, y0, label, color="black", fontsize=6, va="bottom", bbox=dict(facecolor="lime", alpha=0.7, pad=0.5, lw=0)
        )
    fig.suptitle(title + ("   (white dashed: ground truth, green: detections)" if sample.gt_boxes is not None else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def write_report(out_dir: Path, summary: dict, frames: list[FrameRecord], samples: list[SampleFrame]) -> Path:
    """Write ``report.md`` and its plots into ``out_dir``; returns the report path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c = summary["counts"]
    lines = [f"# Replay report: `{summary['bag']}`", ""]
    mode = summary["mode"] + (f" at {summary['rate']:g}x bag rate" if summary["mode"] == "live" else "")
    if summary.get("graph_input_qos"):
        mode += f"**, graph input QoS **{summary['graph_input_qos']}"
    lines += [
        f"Mode: **{mode}**. IR topic `{summary['topics']['ir']}`, visible topic `{summary['topics']['vis']}`. "
        f"Wall time {summary['wall_time_s']:.1f} s, throughput {_fmt(summary['throughput_fps'], 1)} fused frames/s.",
        "",
    ]
    if summary["errors"]:
        lines += ["**Partial report.** The replay stopped early:", ""] + [f"- {e}" for e in summary["errors"]] + [""]

    lines += ["## Accounting of input messages", ""]
    rows = [[t, v["received"], v["paired"], v["fused"], v["dropped"]] for t, v in c["inputs_by_topic"].items()]
    rows.append(["**all**", c["inputs"], c["paired_messages"], 2 * c["fused"], c["inputs"] - 2 * c["fused"]])
    lines += _table(["topic", "received", "paired", "fused", "dropped"], rows) + [""]
    lines += [
        f"{c['pairs']} pairs, {c['fused']} fused frames, {c['dropped_pairs']} pairs dropped after pairing. "
        f"Every input message is either paired ({c['paired_messages']}) or dropped before pairing "
        f"({c['dropped_messages']}).",
        "",
    ]
    drops = [["message", r, n] for r, n in c["message_drops_by_reason"].items()]
    drops += [["pair", r, n] for r, n in c["pair_drops_by_reason"].items()]
    lines += (_table(["dropped", "reason", "count"], drops) if drops else ["No message was dropped."]) + [""]
    if c.get("single_camera_frames"):
        lines += [
            "Single-camera output frames (a camera counted as lost): "
            + ", ".join(f"{m}: {n}" for m, n in c["single_camera_frames"].items()),
            "",
        ]
    if c.get("graph_inputs"):
        lines += ["Images the replay published to the node graph (warm-up frames included) and the graph received:", ""]
        lines += _table(
            ["graph input", "published", "received", "lost on the way"],
            [[t, v["published"], v["received"], v["lost"]] for t, v in c["graph_inputs"].items()],
        ) + [""]
    if c.get("graph_counters"):
        lines += [
            "The node graph's own counters (from /diagnostics, cumulative since it started, warm-up "
            "included); `pipeline_busy` counts pairs displaced by a newer one while inference was busy:",
            "",
        ]
        lines += _table(["graph counter", "count"], [[k, v] for k, v in c["graph_counters"].items()]) + [""]

    m = summary["metrics"]
    every = "every frame" if m["every"] == 1 else f"every {m['every']}th frame"
    lines += [
        "## Fusion metrics",
        "",
        f"Fused Y against registered IR and visible Y, mean over {m['frames_scored']} frames ({every}); "
        "CDDFuse conventions (`ivif_ros/metrics/fusion.py`), higher is better for all nine.",
        "",
        CONTRAST_NOTE,
        "",
    ]
    lines += _table(list(METRIC_NAMES), [[m["mean"][k] for k in METRIC_NAMES]]) + [""]
    if plot_metric_trends(frames, out_dir / "metric_trends.png"):
        lines += ["![metric trends](metric_trends.png)", ""]

    lines += ["## Detection", ""]
    d = summary["detection"]
    if d is None:
        lines += ["The bag has no ground-truth boxes, so no mAP.", ""]
    else:
        truth, union = d.get("ground_truth", "bag ground truth"), d.get("union")
        heads = [f"mAP@0.5 ({truth})", "mAP@0.5:0.95", "frames", "ground-truth boxes", "detections"]
        row = [d["mAP50"], d["mAP50_95"], d["frames"], d["ground_truth_boxes"], d["detections"]]
        if union:
            heads.append("mAP@0.5 (IR∪VIS union)")
            row.append(union["mAP50"])
        lines += _table(heads, [row]) + [""]
        if d.get("per_class"):
            lines += _table(
                ["class", "AP@0.5", "AP@0.5:0.95"],
                [[k, v.get("AP50"), v.get("AP50_95")] for k, v in d["per_class"].items()],
            ) + [""]

    lines += [
        "## Latency",
        "",
        "Milliseconds per frame; pipeline stages are wall-clock (steady) times from "
        "FusionStatus"
        + (
            "; end-to-end is recorder receive time minus replay publish time of the pair's later input (wall clock)."
            if END_TO_END in summary["latency_ms"]
            else "."
        ),
        "",
    ]
    rows = [[s, v["p50"], v["p90"], v["p99"], v["max"], v["n"]] for s, v in summary["latency_ms"].items()]
    lines += _table(["stage", "p50", "p90", "p99", "max", "frames"], rows) + [""]
    if plot_latency(frames, out_dir / "latency.png"):
        lines += ["![latency](latency.png)", ""]

    if samples:
        lines += ["## Sample frames", ""]
        (out_dir / "samples").mkdir(exist_ok=True)
        t0 = frames[0].stamp_ns if frames else samples[0].stamp_ns
        for s in samples:
            name = f"samples/frame_{s.stamp_ns}.png"
            label = f"{s.name}, " if s.name else ""
            plot_sample(s, out_dir / name, f"{label}t = {(s.stamp_ns - t0) * 1e-9:.2f} s (stamp {s.stamp_ns})")
            lines += [f"![frame {s.stamp_ns}]({name})", ""]

    lines += ["Raw numbers: `summary.json` (all aggregates), `frames.csv` (one row per fused frame).", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_frames_csv(path: Path, frames: list[FrameRecord]) -> None:
    import csv

    stages = list(dict.fromkeys(s for f in frames for s in f.stage_ms))
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "index",
                "stamp_ns",
                "name",
                *METRIC_NAMES,
                *(f"{s}_ms" for s in stages),
                "end_to_end_ms",
                "detections",
                "ground_truth",
            ]
        )
        for f in frames:
            vals = [
                f.index,
                f.stamp_ns,
                f.name,
                *(f.metrics.get(k, "") for k in METRIC_NAMES),
                *(f.stage_ms.get(s, "") for s in stages),
                "" if f.end_to_end_ms is None else f.end_to_end_ms,
                f.detections,
                "" if f.ground_truth is None else f.ground_truth,
            ]
            out.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in vals])
