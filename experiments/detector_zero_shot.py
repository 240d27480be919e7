"""Zero-shot COCO detector (shipped ``detector_coco``) on fused images of msrs_dev_eval.

    .venv/bin/python experiments/detector_zero_shot.py [--data ../shared/data] [--sizes 352x352,640x480]

For each pair it builds the fused RGB images of the chosen fusions (``pixelmax``: Y = max(IR,
Y_vis) with the visible colour; ``student`` / any shipped fusion model: the fused RGB that
``FusionPipeline`` publishes; ``visible``; ``ir``), runs the detector on it at each input size
(``WxH``) through ``FusionPipeline.detect`` (the pipeline's own blob, engine and decoding) and
scores the boxes with the project's COCO-style mAP@0.5 against the boxes drawn on fused
images (``labels_det/fusion``). It answers two questions:

* which detector input size to ship as the default (352x352, the authors' size, or the
  native 640x480);
* must-show 2 of issue 27: does the detector find at least as much on the student's fused
  image as on the pixel-max one? (paired image bootstrap of the mAP@0.5 gap, 95 % interval).

Writes ``experiments/results/detector_zero_shot.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ivif_ros.core.baselines import fuse_max  # noqa: E402
from ivif_ros.core.color import restore_color, rgb_to_y_u8  # noqa: E402
from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig  # noqa: E402
from ivif_ros.datasets.paired import PairedDataset, read_yolo_boxes  # noqa: E402
from ivif_ros.engines import EngineConfig  # noqa: E402
from ivif_ros.metrics.dataset_eval import DETECTION_CLASSES  # noqa: E402
from ivif_ros.metrics.detection import evaluate_detections  # noqa: E402
from map_bootstrap import match_at_50, paired_map_bootstrap  # noqa: E402

CLASSES = list(DETECTION_CLASSES)


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(h), int(w)


def fused_images(pair, fusions: list[str], pipelines: dict) -> dict[str, np.ndarray]:
    out = {}
    for name in fusions:
        if name == "pixelmax":
            out[name] = restore_color(fuse_max(pair.ir, rgb_to_y_u8(pair.vis)), pair.vis)
        elif name == "visible":
            out[name] = pair.vis
        elif name == "ir":
            out[name] = np.repeat(pair.ir[..., None], 3, axis=2)
        else:
            out[name] = pipelines[name].process(pair.ir, pair.vis).fused_rgb
    return out


def main() -> None:
    default_data = Path(os.environ.get("IVIF_DATA", REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--split", default="splits/msrs_dev_eval.txt")
    parser.add_argument("--fusions", default="pixelmax,student", help="pixelmax, visible, ir or a fusion model name")
    parser.add_argument("--sizes", default="352x352,640x480", help="detector input sizes, WxH")
    parser.add_argument("--detector", default="detector_coco")
    parser.add_argument("--score", type=float, default=0.05, help="score floor of the boxes that mAP ranks")
    parser.add_argument("--backend", default="torch", help="engine backend of the fusion models and the detector")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "results" / "detector_zero_shot.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    fusions = [f.strip() for f in args.fusions.split(",") if f.strip()]
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    root = args.data / "msrs" / "test"
    dataset = PairedDataset(root, args.data / args.split, labels=False)
    engine = EngineConfig(backend=args.backend, threads=args.threads)
    # fused RGB from each fusion model (no detector), and the detector at each size (its pipelines
    # reuse the student's fusion engine, which detect() does not touch)
    pipelines = {
        f: FusionPipeline(PipelineConfig(model=f, engine=engine, detector=""))
        for f in fusions
        if f not in ("pixelmax", "visible", "ir")
    }
    fusion_engine = next(iter(pipelines.values())).engine if pipelines else None
    detectors = {
        size: FusionPipeline(
            PipelineConfig(
                engine=engine,
                detector=args.detector,
                class_map=CLASSES,
                detector_size=[size[1], size[0]],
                score_threshold=args.score,
            ),
            engine=fusion_engine,
        )
        for size in sizes
    }

    preds = {(f, s): [] for f in fusions for s in sizes}
    gts = []
    start = time.perf_counter()
    for pair in tqdm(dataset, desc="msrs_dev_eval", unit="pair"):
        h, w = pair.ir.shape
        truth = read_yolo_boxes(root / "labels_det" / "fusion" / f"{pair.name}.txt", w, h)
        gts.append((truth.xyxy, truth.cls))
        for fusion, rgb in fused_images(pair, fusions, pipelines).items():
            for size in sizes:
                d, _ = detectors[size].detect(rgb)
                preds[(fusion, size)].append((d.xyxy, d.scores, d.class_ids))

    results = {
        "split": args.split,
        "pairs": len(dataset),
        "labels": "labels_det/fusion",
        "score_floor": args.score,
        "detector": args.detector,
        "seconds": round(time.perf_counter() - start, 1),
        "scores": {},
        "gaps": {},
    }
    print(f"\nmAP@0.5 on {args.split} ({len(dataset)} pairs), labels_det/fusion, detector {args.detector}")
    print(f"{'fused image':<12} {'input':>8} {'mAP@0.5':>8} " + " ".join(f"{c:>8}" for c in CLASSES))
    for (fusion, size), p in preds.items():
        ev = evaluate_detections(p, gts, len(CLASSES), CLASSES)
        key = f"{fusion}@{size[1]}x{size[0]}"
        results["scores"][key] = {"map50": ev["map50"], **{c: ev["per_class"][c]["ap50"] for c in CLASSES}}
        print(
            f"{fusion:<12} {size[1]:>4}x{size[0]:<3} {ev['map50']:8.3f} "
            + " ".join(f"{ev['per_class'][c]['ap50']:8.3f}" for c in CLASSES)
        )
    if "pixelmax" in fusions:
        for fusion in (f for f in fusions if f != "pixelmax"):
            for size in sizes:
                a = match_at_50(preds[(fusion, size)], gts, len(CLASSES))
                b = match_at_50(preds[("pixelmax", size)], gts, len(CLASSES))
                gap = paired_map_bootstrap([a], [b], resamples=2000, seed=0)
                results["gaps"][f"{fusion}-pixelmax@{size[1]}x{size[0]}"] = gap
                print(
                    f"{fusion} - pixelmax at {size[1]}x{size[0]}: {gap['observed']:+.3f} "
                    f"(95 % CI {gap['ci95'][0]:+.3f} .. {gap['ci95'][1]:+.3f}, P(better) {gap['p_a_better']:.2f})"
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results["scores"], args.out.with_suffix(".png"), f"{args.split} ({len(dataset)} pairs), labels_det/fusion")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


def plot(scores: dict, path: Path, title: str) -> None:
    """Grouped bars: mAP@0.5 and per-class AP50 of each fused image, one panel per detector input size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(dict.fromkeys(k.split("@")[1] for k in scores))
    fusions = list(dict.fromkeys(k.split("@")[0] for k in scores))
    metrics = ["map50", *CLASSES]
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 3.6), sharey=True, squeeze=False)
    for ax, size in zip(axes[0], sizes):
        x = np.arange(len(metrics))
        width = 0.8 / len(fusions)
        for i, fusion in enumerate(fusions):
            ax.bar(x + i * width, [scores[f"{fusion}@{size}"][m] for m in metrics], width, label=fusion)
        ax.set_xticks(x + 0.4 - width / 2, ["mAP@0.5", *CLASSES])
        ax.set_title(f"detector input {size}", fontsize=10)
        ax.set_ylabel("AP at IoU 0.5")
        ax.legend(fontsize=7)
    fig.suptitle(f"zero-shot COCO detector on {title}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
