"""A one-page picture of a generated sample, drawn from what its bag actually contains.

It shows one frame as the visible camera recorded it, the same frame with a digital gain
(what the darkness hides), the raw IR counts in the IR camera's own geometry, the IR
registered with the calibration homography with the ground-truth boxes, and the stamp
timing of both cameras (jitter about the nominal 30 Hz grid, IR-visible skew).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.reader import BagReader
from ivif_ros.bag.sample import TOPICS
from ivif_ros.bag.synthetic_scene import CLASS_NAMES
from ivif_ros.core.image_codec import to_rgb
from ivif_ros.errors import InputError

BOX_COLOURS = ("tab:red", "tab:green", "tab:cyan")  # person, bicycle, car


def write_sample_preview(sample_dir: str | Path, frame: int = 0, out: str | Path | None = None) -> Path:
    """Write ``sample_dir/preview.png`` (or ``out``) for frame index ``frame``."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import yaml

    sample_dir = Path(sample_dir)
    cal = yaml.safe_load((sample_dir / "calibration.yaml").read_text())
    homography = np.asarray(cal["homography"], np.float64)
    stamps: dict[str, list[int]] = {TOPICS["ir"]: [], TOPICS["vis"]: []}
    images: dict[str, object] = {}  # the frame-th image of each camera; only those are kept
    detections = {}  # by header stamp (the visible image's)
    with BagReader(sample_dir / "bag") as bag:
        for m in bag.messages([TOPICS["ir"], TOPICS["vis"], TOPICS["detections"]]):
            stamp = im.stamp_ns(m.msg.header)
            if m.topic == TOPICS["detections"]:
                detections[stamp] = m.msg
                continue
            stamps[m.topic].append(stamp)
            if len(stamps[m.topic]) == frame + 1:
                images[m.topic] = m.msg
    if len(images) < 2:
        raise InputError(
            f"{sample_dir / 'bag'}: frame {frame} is not in the bag (it has "
            f"{len(stamps[TOPICS['vis']])} visible and {len(stamps[TOPICS['ir']])} IR frames)"
        )

    vis_msg = images[TOPICS["vis"]]
    vis = to_rgb(*im.decode_image(vis_msg, im.IMAGE, TOPICS["vis"]))
    ir, _ = im.decode_image(images[TOPICS["ir"]], im.IMAGE, TOPICS["ir"])
    xyxy, cls, _ = im.detections_to_arrays(detections[im.stamp_ns(vis_msg.header)])
    registered = cv2.warpPerspective(ir.astype(np.float32), homography, (vis.shape[1], vis.shape[0]))
    lo, hi = np.percentile(registered, [1, 99.5])

    fig, axes = plt.subplots(2, 3, figsize=(16, 9), dpi=80)
    panels = [
        (vis, None, "visible as recorded (night, noisy)"),
        (np.clip(vis.astype(np.float32) * 4, 0, 255).astype(np.uint8), None, "visible x4 gain: what the dark hides"),
        (ir, "inferno", f"IR raw counts, IR camera geometry {ir.shape[1]}x{ir.shape[0]}"),
        (registered, "gray", "IR registered with calibration.yaml + ground truth"),
    ]
    for ax, (img, cmap, title) in zip(axes.flat, panels):
        shown = ax.imshow(img, cmap=cmap, vmin=lo if cmap == "gray" else None, vmax=hi if cmap == "gray" else None)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
        if cmap == "inferno":
            fig.colorbar(shown, ax=ax, fraction=0.035, label="counts")
    for (x0, y0, x1, y1), k in zip(xyxy, cls):
        axes[1, 0].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1, color=BOX_COLOURS[k % 3]))
    handles = [plt.Line2D([], [], color=c, label=n) for c, n in zip(BOX_COLOURS, CLASS_NAMES)]
    axes[1, 0].legend(handles=handles, loc="lower right", fontsize=8)

    vis_s, ir_s = (np.asarray(stamps[t], np.int64) for t in (TOPICS["vis"], TOPICS["ir"]))
    rate = float(cal["timing"]["rate_hz"])
    for s, name in ((vis_s, "visible"), (ir_s, "IR")):
        if len(s) > 1:
            period = np.diff(s) / 1e6
            axes[1, 1].hist(period, bins=30, alpha=0.6, label=f"{name}: {period.mean():.2f} ms mean")
    axes[1, 1].axvline(1000 / rate, color="k", ls="--", lw=1, label=f"nominal {1000 / rate:.2f} ms")
    axes[1, 1].set(title="frame period (stamp differences)", xlabel="ms", ylabel="frames")
    axes[1, 1].legend(fontsize=8)
    n = min(len(vis_s), len(ir_s))
    if cal["timing"]["drop_prob"] == 0 and n:
        skew = (ir_s[:n] - vis_s[:n]) / 1e6
        axes[1, 2].plot(skew, ".-", lw=0.8)
        axes[1, 2].axhline(cal["timing"]["ir_offset_ms"], color="k", ls="--", lw=1, label="configured IR offset")
        axes[1, 2].set(title="IR - visible stamp skew per frame", xlabel="frame", ylabel="ms")
        axes[1, 2].legend(fontsize=8)
    else:
        axes[1, 2].axis("off")
        axes[1, 2].set_title("skew plot needs a sample without dropped frames", fontsize=9)
    fig.suptitle(f"ivif sample {sample_dir.name}: frame {frame}, seed {cal['seed']}", fontsize=12)
    fig.tight_layout()
    out = Path(out) if out is not None else sample_dir / "preview.png"
    fig.savefig(out)
    plt.close(fig)
    return out
