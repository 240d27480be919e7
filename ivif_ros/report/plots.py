"""Small matplotlib helpers shared by the reports (headless: the Agg backend, PNG files).

Each function draws one figure to ``path`` and closes it, so a long evaluation does not keep
figures alive. Inputs are plain dicts/arrays, not report-specific types, so any report can use
them: ``{group: {metric: value}}`` for bars, ``{group: {metric: [values]}}`` for box plots and a
grid of ``(title, image)`` for sample panels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (safe without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int, max_cols: int = 5) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def metric_bars(means: Mapping[str, Mapping[str, float]], metrics: Sequence[str], path: Path, title: str = "") -> Path:
    """One small bar chart per metric, one bar per group (method), value printed on each bar."""
    plt = pyplot()
    groups = list(means)
    rows, cols = _grid(len(metrics))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")(np.arange(len(groups)) % 10)
    for ax, metric in zip(axes.flat, metrics):
        values = [means[g].get(metric, math.nan) for g in groups]
        bars = ax.bar(range(len(groups)), values, color=colours)
        ax.bar_label(bars, fmt="%.3g", fontsize=6)
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.15)
    return _save_grid(plt, fig, axes, len(metrics), path, title)


def _save_grid(plt, fig, axes, used: int, path: Path, title: str) -> Path:
    """Blank the unused cells of a metric grid, title it, write it and free the figure."""
    for ax in list(axes.flat)[used:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def metric_boxes(
    values: Mapping[str, Mapping[str, Sequence[float]]], metrics: Sequence[str], path: Path, title: str = ""
) -> Path:
    """Per-metric box plots of per-image values, one box per group; NaNs are left out."""
    plt = pyplot()
    groups = list(values)
    rows, cols = _grid(len(metrics))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        data = [np.asarray(values[g].get(metric, []), float) for g in groups]
        data = [d[np.isfinite(d)] for d in data]
        ax.boxplot(data, showfliers=True, flierprops={"markersize": 2})
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(range(1, len(groups) + 1), groups, rotation=30, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    return _save_grid(plt, fig, axes, len(metrics), path, title)


def image_grid(rows: Sequence[Sequence[tuple[str, np.ndarray]]], path: Path, tile_width: float = 2.6) -> Path:
    """A grid of images (grey or RGB uint8), each with its title; rows may differ in length."""
    plt = pyplot()
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    aspect = rows[0][0][1].shape[0] / rows[0][0][1].shape[1]
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(tile_width * n_cols, tile_width * aspect * n_rows + 0.3 * n_rows), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(row):
                title, image = row[c]
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
                ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
