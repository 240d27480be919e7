"""Score detectors on msrs_dev_eval against labels_det/fusion (and the IR/visible union), with
per-class AP and paired bootstrap intervals between runs.

One run is ``label=mode:weights``: ``mode`` is the image the detector sees (fused = the
shipped student's output as FusionPipeline publishes it, ``fused@<student weights>`` another
student's, ir, visible); ``weights`` a
detector ``.safetensors`` (with its sidecar) or a shipped name (``detector_coco`` for the
zero-shot COCO detector, mapped to person/bicycle/car by class name). A run repeated with
another seed is ``label=mode:w1+w2`` and counts as a group in the bootstrap.

    IVIF_DATA=/path/to/data python experiments/detector/evaluate.py \\
        --run fused=fused:runs/A_fused/detector --run ir=ir:runs/A_ir/detector \\
        --compare fused,ir --out experiments/detector/results/eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's ivif_ros, not an installed copy
from map_bootstrap import match_at_50, paired_map_bootstrap  # noqa: E402

CLASSES = ("person", "bicycle", "car")


def parse_run(spec: str):
    label, _, rest = spec.partition("=")
    mode, _, weights = rest.partition(":")
    if not label or mode.partition("@")[0] not in ("fused", "ir", "visible") or not weights:
        raise SystemExit(f"--run {spec!r}: expected label=fused[@student]|ir|visible:weights[+weights]")
    return label, mode, weights.split("+")


def mode_samples(test: Path, split: Path, mode: str):
    """The detector's images of ``mode``; ``fused@<student>`` fuses with that student's weights."""
    from ivif_ros.training.detector_data import FusedCache, load_samples

    base, _, student = mode.partition("@")
    return load_samples(test, split, base, cache=FusedCache(student) if student else None)


def predict(weights: str, samples, input_wh, score: float):
    """Detections of one detector on every sample, boxes in frame pixels, class ids of CLASSES.
    ``input_wh`` None: the size the detector was trained at (its sidecar)."""
    import torch

    from ivif_ros.core.detector import ClassMap, decode, detector_blob
    from ivif_ros.weights import load_model

    model, meta = load_model(weights)
    size = meta.get("input", {})
    input_wh = input_wh or size.get("native_hw", [352, 352])[::-1]
    input_hw = (input_wh[1], input_wh[0])
    class_map = ClassMap.parse(list(CLASSES), meta["detection_classes"])
    out = []
    with torch.inference_mode():
        for s in samples:
            rgb = np.ascontiguousarray(s.image[:, :, ::-1])
            pred = model(torch.from_numpy(detector_blob(rgb, input_hw))).numpy()
            d = decode(pred, class_map, s.image.shape[:2], score_threshold=score)
            out.append((d.xyxy, d.scores, d.class_ids))
    return out


def union_boxes(root: Path, names, shapes):
    from ivif_ros.datasets.paired import merge_boxes, read_yolo_boxes

    gts = []
    for name, (h, w) in zip(names, shapes):
        b = merge_boxes(
            read_yolo_boxes(root / "labels_det" / "ir" / f"{name}.txt", w, h),
            read_yolo_boxes(root / "labels_det" / "vi" / f"{name}.txt", w, h),
        )
        gts.append((b.xyxy, b.cls))
    return gts


def plot(results: dict, comparisons: dict, loss_logs: list[str], path: Path) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if loss_logs else 1, figsize=(12 if loss_logs else 7, 4), squeeze=False)
    ax = axes[0][0]
    labels = list(results)
    groups = ["mAP", *CLASSES]
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        f = results[label]["fusion"]
        values = [f["map50"], *(f["ap50"][c] for c in CLASSES)]
        ax.bar(np.arange(len(groups)) + i * width, values, width, label=label)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    ax.set_ylabel("AP@0.5 (fusion labels)")
    ax.set_title("msrs_dev_eval, 119 pairs")
    ax.legend(fontsize=7)
    if loss_logs:
        ax = axes[0][1]
        for spec in loss_logs:
            label, _, file = spec.partition("=")
            with open(file) as f:
                rows = list(csv.DictReader(f))
            steps = np.array([int(r["step"]) for r in rows])
            total = np.array([float(r["total"]) for r in rows])
            k = min(9, len(total))
            ax.plot(steps[k - 1 :], np.convolve(total, np.ones(k) / k, "valid"), label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (running mean)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    import torch

    from ivif_ros.metrics.detection import evaluate_detections
    from ivif_ros.training.detector_config import data_root

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="label=mode:weights[+weights]")
    ap.add_argument("--compare", action="append", default=[], help="labelA,labelB: bootstrap of A minus B")
    ap.add_argument("--data", default=None, help="data folder (default $IVIF_DATA)")
    ap.add_argument("--split", default="splits/msrs_dev_eval.txt")
    ap.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("W", "H"),
        help="detector input (default: the size in the weights' sidecar)",
    )
    ap.add_argument("--score", type=float, default=0.05, help="score threshold of the decoder")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--out", default=None, help="JSON of the results")
    ap.add_argument("--plot", default=None, help="PNG: AP@0.5 per class and run")
    ap.add_argument("--loss-logs", nargs="*", default=[], help="losses.csv files to plot beside (label=path)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = data_root(args.data)
    test = root / "msrs" / "test"
    runs = [parse_run(s) for s in args.run]
    samples = {m: mode_samples(test, root / args.split, m) for m in {r[1] for r in runs}}
    any_mode = next(iter(samples.values()))
    names = [s.name for s in any_mode]
    gt_fusion = [(s.boxes.xyxy, s.boxes.cls) for s in any_mode]
    gt_union = union_boxes(test, names, [s.image.shape[:2] for s in any_mode])

    results, matched = {}, {}
    for label, mode, weights in runs:
        preds = [predict(w, samples[mode], args.input_size, args.score) for w in weights]
        row = {"mode": mode, "weights": weights, "input_size": args.input_size, "score_threshold": args.score}
        for gt_name, gts in (("fusion", gt_fusion), ("union", gt_union)):
            per_seed = [evaluate_detections(p, gts, len(CLASSES), CLASSES) for p in preds]
            row[gt_name] = {
                "map50": float(np.mean([r["map50"] for r in per_seed])),
                "map50_95": float(np.mean([r["map50_95"] for r in per_seed])),
                "ap50": {c: float(np.mean([r["per_class"][c]["ap50"] for r in per_seed])) for c in CLASSES},
                "map50_per_seed": [float(r["map50"]) for r in per_seed],
            }
        matched[label] = [match_at_50(p, gt_fusion, len(CLASSES)) for p in preds]
        results[label] = row
        f = row["fusion"]
        print(
            f"{label:>14} ({mode:7}) mAP@0.5 fusion {f['map50']:.3f} ["
            + " ".join(f"{c} {f['ap50'][c]:.3f}" for c in CLASSES)
            + f"]  union {row['union']['map50']:.3f}  seeds {['%.3f' % v for v in f['map50_per_seed']]}"
        )
    comparisons = {}
    for pair in args.compare:
        a, b = pair.split(",")
        boot = paired_map_bootstrap(matched[a], matched[b], resamples=args.resamples, seed=0)
        comparisons[f"{a}-{b}"] = boot
        print(
            f"{a} - {b}: {boot['observed']:+.3f}  95% CI [{boot['ci95'][0]:+.3f}, {boot['ci95'][1]:+.3f}]  "
            f"P(A better) {boot['p_a_better']:.3f}"
        )
    if args.plot:
        plot(results, comparisons, args.loss_logs, Path(args.plot))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps(
                {"split": args.split, "images": len(names), "runs": results, "comparisons": comparisons}, indent=1
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
