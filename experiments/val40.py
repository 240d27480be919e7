"""Recipe-selection figures on 40 pairs of ``splits/msrs_dev_train.txt`` (never msrs_dev_eval).

    python experiments/val40.py ivif_ros/weights/student.safetensors experiments/weights/student_nodistill.safetensors
    python experiments/val40.py --split HELDOUT/heldout.txt WEIGHTS...   # the stratified held-out set

Without ``--split`` the pairs are val40, the last 40 of the split (33 day / 7 night), which is
inside every shipped run's training data and mostly day, so it only ranks recipes roughly.
``--split`` takes a names file such as the day/night-stratified held-out set that
``experiments/heldout_split.py`` writes (see RECIPES.md). Prints one
JSON line per weights file: VIF, Qabf, SSIM (CDDFuse definitions, as in the card), plus
pixel-max. Detection is scored with the detector on the fused image
(``experiments/detector/evaluate.py``).
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
    ap.add_argument("weights", nargs="+", help="fused student or teacher .safetensors files (with .json sidecars)")
    add_data_argument(ap)
    ap.add_argument("--split", type=Path, help="names file of MSRS test-folder pairs (default: val40)")
    args = ap.parse_args()

    import torch

    from ivif_ros.datasets.paired import read_names
    from ivif_ros.metrics.fusion import fusion_metrics
    from ivif_ros.weights import load_model

    torch.set_num_threads(1)
    root = Path(args.data)
    names = read_names(args.split) if args.split else read_names(root / "splits" / "msrs_dev_train.txt")[-40:]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as split:
        split.write("\n".join(names) + "\n")
        split.flush()
        pairs = load_pairs(root / "msrs" / "test", Path(split.name))

    def report(label, fusion):
        print(json.dumps({"weights": label, **{k: round(fusion[k], 4) for k in ("VIF", "Qabf", "SSIM")}}), flush=True)

    rows = [fusion_metrics(np.maximum(ir, vis), ir, vis) for _, ir, vis, _ in pairs]
    report("pixel max", {k: float(np.mean([r[k] for r in rows])) for k in ("VIF", "Qabf", "SSIM")})
    for weights in args.weights:
        model, _ = load_model(weights)
        report(weights, evaluate_model(model, pairs, desc=Path(weights).name)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
