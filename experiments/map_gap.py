"""Is one group of detectors ahead of another on mAP@0.5, beyond the noise of the images drawn?

    python experiments/map_gap.py --split splits/msrs_dev_eval.txt \\
        --a ivif_ros/weights/student.safetensors experiments/weights/seeds/student_s1.safetensors \\
        --b experiments/weights/student_ir_distilled.safetensors \\
            experiments/weights/seeds/student_ir_distilled_s1.safetensors

Runs every model on the pairs of ``--split`` (MSRS test-folder names; default msrs_dev_eval), each
on the input it was trained on (its sidecar's ``input_mode``: a single-camera student gets that
camera twice), and prints one JSON object: each model's mAP@0.5, the gap of the group means
(A minus B) and its paired bootstrap over images (``map_bootstrap``): 95 %
interval and the fraction of resamples where A is ahead. Seeds of one recipe go in one group,
so the interval holds both the image noise and, through the mean, some of the seed noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_args import add_data_argument, add_split_argument, split_path  # noqa: E402
from model_card import evaluate_model, load_pairs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", nargs="+", required=True, type=Path, help="weights of group A (.safetensors)")
    ap.add_argument("--b", nargs="+", required=True, type=Path, help="weights of group B (.safetensors)")
    add_data_argument(ap)
    add_split_argument(ap)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0, help="of the resampling")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from map_bootstrap import match_at_50, paired_map_bootstrap
    from ivif_ros.training.data import trained_input_mode
    from ivif_ros.weights import load_model

    torch.set_num_threads(args.threads)
    split = split_path(args)
    pairs = load_pairs(args.data / "msrs" / "test", split)
    maps, groups = {}, {"a": [], "b": []}
    for group, paths in (("a", args.a), ("b", args.b)):
        for path in paths:
            model, meta = load_model(path)
            keep: dict = {}
            _, det = evaluate_model(model, meta, trained_input_mode(meta, str(path)), pairs, desc=path.name, keep=keep)
            maps[str(path)] = round(det["map50"], 4)
            groups[group].append(match_at_50(keep["preds"], keep["gts"], len(meta["detection_classes"])))
    gap = paired_map_bootstrap(groups["a"], groups["b"], resamples=args.resamples, seed=args.seed)
    print(
        json.dumps(
            {
                "split": str(args.split),
                "map50": maps,
                "gap_a_minus_b": round(gap["observed"], 4),
                "ci95": [round(v, 4) for v in gap["ci95"]],
                "p_a_better": round(gap["p_a_better"], 3),
                "resamples": gap["resamples"],
                "images": gap["images"],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
