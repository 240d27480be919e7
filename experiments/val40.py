"""Recipe-selection figures on 40 pairs of ``splits/msrs_dev_train.txt`` (never msrs_dev_eval).

    python experiments/val40.py ivif_ros/weights/student.safetensors experiments/weights/student_nodistill.safetensors
    python experiments/val40.py --split HELDOUT/heldout.txt WEIGHTS...   # the stratified held-out set

Without ``--split`` the pairs are val40, the last 40 of the split (33 day / 7 night), which is
inside every shipped run's training data and mostly day, so it only ranks recipes roughly.
``--split`` takes a names file such as the day/night-stratified held-out set that
``experiments/heldout_split.py`` writes (see RECIPES.md). Prints one
JSON line per weights file: VIF, Qabf, SSIM (CDDFuse definitions, as in the card) and
mAP@0.5, plus pixel-max. A single-camera student (its sidecar's ``input_mode`` is ir or vis)
gets that camera twice, as in training, and reports mAP@0.5 only.

``--day-night`` adds mAP@0.5 on the day (name ends in D) and night (N) pairs apart.
``--per-class`` adds AP@0.5 of each detection class.
``--blind-visible`` feeds every model IR on both inputs, as if the visible camera had failed
(mAP only); with ``--split`` set to ``splits/msrs_dev_eval.txt`` it gives the card's
"visible camera blinded" figures, which chose nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_args import add_data_argument  # noqa: E402
from model_card import evaluate_model, load_pairs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", help="student or teacher .safetensors files (with .json sidecars)")
    add_data_argument(ap)
    ap.add_argument("--split", type=Path, help="names file of MSRS test-folder pairs (default: val40)")
    ap.add_argument("--day-night", action="store_true", help="also mAP@0.5 on the day and the night pairs apart")
    ap.add_argument("--per-class", action="store_true", help="also AP@0.5 of each detection class")
    ap.add_argument("--blind-visible", action="store_true", help="IR on both inputs of every model (mAP only)")
    args = ap.parse_args()

    import torch

    from ivif_ros.datasets.paired import read_names
    from ivif_ros.metrics.fusion import fusion_metrics
    from ivif_ros.training.data import trained_input_mode
    from ivif_ros.weights import load_model

    torch.set_num_threads(1)
    root = Path(args.data)
    names = read_names(args.split) if args.split else read_names(root / "splits" / "msrs_dev_train.txt")[-40:]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as split:
        split.write("\n".join(names) + "\n")
        split.flush()
        pairs = load_pairs(root / "msrs" / "test", Path(split.name))

    def report(label, fusion, det=None, extra=None):
        line = {"weights": label, **{k: round(fusion[k], 4) for k in ("VIF", "Qabf", "SSIM") if k in fusion}}
        print(json.dumps({**line, **({"mAP50": round(det["map50"], 4)} if det else {}), **(extra or {})}), flush=True)

    rows = [fusion_metrics(np.maximum(ir, vis), ir, vis) for _, ir, vis, _ in pairs]
    report("pixel max", {k: float(np.mean([r[k] for r in rows])) for k in ("VIF", "Qabf", "SSIM")})
    for weights in args.weights:
        model, meta = load_model(weights)
        mode = "ir" if args.blind_visible else trained_input_mode(meta, weights)
        fusion, det = evaluate_model(model, meta, mode, pairs, desc=Path(weights).name)
        extra = {"input": "ir, ir (visible blinded)"} if args.blind_visible else {}
        if args.per_class:
            extra.update({f"AP50_{c}": round(v["ap50"], 4) for c, v in det["per_class"].items()})
        if args.day_night:
            for tag, suffix in (("day", "D"), ("night", "N")):
                part = [p for p in pairs if p[0].endswith(suffix)]
                extra[f"mAP50_{tag}"] = round(evaluate_model(model, meta, mode, part)[1]["map50"], 4) if part else None
        report(weights, fusion, det, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
