"""``ivif eval``: fuse every pair of a dataset with each method and score the results.

Examples::

    ivif eval --data /data/msrs/test --split /data/splits/msrs_dev_eval.txt \\
              --method max,mean,laplacian,gff --out runs/eval_baselines
    ivif eval --data /data/msrs/test --method gff,model:student --out runs/eval_student --limit 20
    ivif eval --data /data/tno --method gff --variant matlab --out runs/eval_tno

Writes ``per_image.csv``/``.json``, ``summary.json`` (method -> mean EN, SD, SF, AG, MI, SCD,
VIF, Qabf, SSIM and contrast: the fused image's local contrast over the visible image's where
the visible is well exposed, below 1 = haze), ``summary.csv``, ``detection.json`` (learned methods, when the dataset has
YOLO labels: scored against ``labels_det/fusion`` when present, with the IR/visible union as a
second column) and ``report.md`` with plots and sample panels.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="paired dataset folder with ir/ and vi/ (labels_det/ optional)")
    p.add_argument("--split", default=None, help="text file with one pair name per line (default: every pair)")
    p.add_argument(
        "--method", required=True, help="comma-separated: max, mean, laplacian, gff, model:<name or weights path>"
    )
    p.add_argument("--out", required=True, help="output folder for tables, plots and report.md")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N pairs")
    p.add_argument(
        "--variant",
        choices=["cddfuse", "matlab"],
        default="cddfuse",
        help="metric conventions (default cddfuse; see ivif_ros.metrics.fusion)",
    )
    p.add_argument("--samples", type=int, default=3, help="sample panels in the report (default 3)")
    p.add_argument(
        "--backend",
        default="torch",
        help="inference backend for model:<...> methods (default torch; auto, onnxruntime, openvino)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args) -> int:
    from pathlib import Path

    from ivif_ros.datasets.paired import PairedDataset
    from ivif_ros.errors import ConfigError
    from ivif_ros.metrics.dataset_eval import (
        GROUND_TRUTH_LABELS,
        SCORE_NAMES,
        evaluate,
        resolve_methods,
        write_tables,
    )
    from ivif_ros.report.eval_report import write_eval_report

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    dataset = PairedDataset(args.data, args.split)
    if len(dataset) == 0:
        raise ConfigError(f"no pairs to evaluate in {args.data}" + (f" with split {args.split}" if args.split else ""))
    methods = resolve_methods(args.method.split(","), args.backend, frame_hw=dataset[0].ir.shape[:2])
    result = evaluate(dataset, methods, args.variant, args.limit, args.samples, progress=not args.no_progress)
    out = Path(args.out)
    write_tables(result, out)
    report = write_eval_report(result, out, dataset=str(args.data), split=args.split)

    means = result.means()
    width = max(len(m) for m in result.methods)
    print(f"{'method':<{width}} " + " ".join(f"{k:>8}" for k in SCORE_NAMES))
    for m in result.methods:
        print(f"{m:<{width}} " + " ".join(f"{means[m][k]:8.4f}" for k in SCORE_NAMES))
    default = GROUND_TRUTH_LABELS[result.ground_truth]
    for m, det in result.detection.items():
        union = (
            f", mAP@0.5 (IR∪VIS union) {result.detection_union[m]['map50']:.4f}" if m in result.detection_union else ""
        )
        print(f"{m}: detection mAP@0.5 ({default}) {det['map50']:.4f}, mAP@0.5:0.95 {det['map50_95']:.4f}{union}")
    print(f"report: {report}")
    return 0
