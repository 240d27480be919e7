"""``report.md`` of ``ivif eval``: a metric table, plots and sample panels next to it.

- ``metric_bars.png``: mean of each metric per method (the table at a glance);
- ``metric_boxes.png``: per-image distributions, since a mean hides the night frames where a
  method breaks down;
- ``sample_<i>_<name>.png``: IR | visible | fused (one per method) for a few pairs spread over
  the dataset, so the numbers can be related to what the images look like.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ivif_ros.metrics.contrast import CONTRAST_NOTE
from ivif_ros.metrics.dataset_eval import SCORE_NAMES, EvalResult
from ivif_ros.report.plots import image_grid, metric_bars, metric_boxes

#: Tiles per row of a sample panel: three 640x480 frames stay legible side by side.
SAMPLE_COLUMNS = 3

_CONVENTIONS = {
    "cddfuse": "CDDFuse `Evaluator` conventions: MI in nats, SSIM = ssim(F,IR) + ssim(F,VIS) (max 2), SF/AG on 0..255.",
    "matlab": "Tang's MATLAB conventions: MI in bits, SSIM = mean of ssim(F,IR) and ssim(F,VIS) (max 1), "
    "SF on 0..1, AG divided by (H-1)(W-1), Qabf on 0..1.",
}


def _fmt(value: float) -> str:
    """4 significant digits at most, but never scientific notation and never fewer than 2 decimals."""
    if value is None or not math.isfinite(value):
        return "n/a"
    decimals = 4 if abs(value) < 10 else 2
    return f"{value:.{decimals}f}"


def _metric_table(result: EvalResult) -> list[str]:
    means = result.means()
    best = {
        k: max((means[m][k] for m in result.methods if math.isfinite(means[m][k])), default=math.nan)
        for k in SCORE_NAMES
    }
    lines = ["| method | " + " | ".join(SCORE_NAMES) + " | fuse ms |", "|---|" + "---:|" * (len(SCORE_NAMES) + 1)]
    for m in result.methods:
        cells = []
        for k in SCORE_NAMES:
            text = _fmt(means[m][k])
            cells.append(f"**{text}**" if len(result.methods) > 1 and means[m][k] == best[k] else text)
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {np.mean(result.fuse_ms[m]):.1f} |")
    return lines


def _detection_table(result: EvalResult) -> list[str]:
    if not result.detection:
        return []
    from ivif_ros.metrics.dataset_eval import GROUND_TRUTH_LABELS

    classes = list(next(iter(result.detection.values()))["per_class"])
    default = GROUND_TRUTH_LABELS[result.ground_truth]
    source = (
        "boxes drawn on fused images, labels_det/fusion"
        if result.ground_truth == "fusion"
        else "IR and visible boxes merged"
    )
    union = result.detection_union
    lines = [
        "",
        f"## Detection (COCO mAP against the YOLO labels: {source})",
        "",
        f"| method | mAP@0.5 ({default}) | mAP@0.5:0.95 | "
        + " | ".join(f"AP50 {c}" for c in classes)
        + (" | mAP@0.5 (IR∪VIS union) |" if union else " |"),
        "|---|---:|---:|" + "---:|" * len(classes) + ("---:|" if union else ""),
    ]
    for m, r in result.detection.items():
        per = " | ".join(_fmt(r["per_class"][c]["ap50"]) for c in classes)
        extra = f" {_fmt(union[m]['map50'])} |" if union else ""
        lines.append(f"| {m} | {_fmt(r['map50'])} | {_fmt(r['map50_95'])} | {per} |{extra}")
    return lines


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_eval_report(result: EvalResult, out_dir: Path, dataset: str = "", split: str | None = None) -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir``; returns the report path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    means = result.means()
    metric_bars(means, SCORE_NAMES, out_dir / "metric_bars.png", "mean per method (higher is better)")
    per_image = {m: {k: [row[k] for row in result.per_image[m]] for k in SCORE_NAMES} for m in result.methods}
    metric_boxes(per_image, SCORE_NAMES, out_dir / "metric_boxes.png", "per-image distribution")

    sample_files = []
    for i, s in enumerate(result.samples):
        tiles = [("infrared", s.ir), ("visible", s.vis)] + [(f"fused: {m}", s.fused_rgb[m]) for m in result.methods]
        path = out_dir / f"sample_{i}_{_safe(s.name)}.png"
        image_grid([tiles[j : j + SAMPLE_COLUMNS] for j in range(0, len(tiles), SAMPLE_COLUMNS)], path, tile_width=3.6)
        sample_files.append((s.name, path.name))

    nan_counts = {
        m: {k: sum(1 for r in result.per_image[m] if not math.isfinite(r[k])) for k in SCORE_NAMES}
        for m in result.methods
    }
    undefined = [f"{m}: {k} undefined on {c} image(s)" for m, d in nan_counts.items() for k, c in d.items() if c]

    lines = [
        "# Fusion evaluation",
        "",
        f"- dataset: `{dataset}`" + (f", split `{split}`" if split else ""),
        f"- images: {len(result.images)}; methods: {', '.join(result.methods)}",
        f"- metric variant: `{result.variant}` ({_CONVENTIONS[result.variant]})",
        "- fused on the luma (BT.601 Y) of the visible image; colour restored with the visible Cb/Cr",
        f"- generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `ivif eval`",
        "",
        "## Mean metrics (higher is better; best in bold)",
        "",
        *_metric_table(result),
        "",
        CONTRAST_NOTE,
    ]
    if undefined:
        lines += ["", "Means skip undefined values (" + "; ".join(undefined) + ")."]
    lines += _detection_table(result)
    lines += [
        "",
        "## Plots",
        "",
        "![mean metrics](metric_bars.png)",
        "",
        "![per-image distributions](metric_boxes.png)",
        "",
        "## Samples (infrared | visible | fused per method)",
        "",
    ]
    for name, file in sample_files:
        lines += [f"**{name}**", "", f"![{name}]({file})", ""]
    lines += ["Per-image values: `per_image.csv` / `per_image.json`; means: `summary.json`, `summary.csv`."]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
