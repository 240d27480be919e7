"""Where a fused student's lift above pixel-max comes from (RECIPES.md, recipe N).

    python experiments/fusion_path_probe.py --split experiments/heldout/msrs_dev_heldout40.txt

Scores VIF, Qabf and SSIM (CDDFuse definitions, as in the card) of three students built from
shipped weights, beside pixel-max:

* ``fused``: the fused student as shipped (default: recipe E, ``student``);
* ``fused, fusion maps zeroed``: the same with the 1/4 fusion maps, the only part of the fusion
  path that reads the trunk, set to zero (the prior and the detail head are kept);
* ``IR trunk + fused fusion path``: the IR-only student's trunk and heads, first convolution
  folded as a warm start folds it, carrying the fused student's whole fusion path.

If the second falls to the level of the untrained prior and the third does too, the fusion path
needs trunk features that see the visible camera, and a trunk shaped on IR alone has none: the
reason recipe N gives the fusion maps an encoder of their own.
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
    ap.add_argument(
        "--fused",
        default="ivif_ros/weights/student.safetensors",
        help="a fused student without a fusion-context encoder",
    )
    ap.add_argument(
        "--ir",
        default="experiments/weights/student_ir_distilled.safetensors",
        help="an IR-only student of the same config",
    )
    add_data_argument(ap)
    ap.add_argument("--split", type=Path, required=True, help="names file of MSRS test-folder pairs")
    args = ap.parse_args()

    import torch

    from ivif_ros.datasets.paired import read_names
    from ivif_ros.metrics.fusion import fusion_metrics
    from ivif_ros.training.loop import FUSION_PATH
    from ivif_ros.training.warm_start import fold_single_camera
    from ivif_ros.weights import load_model

    torch.set_num_threads(1)
    root = Path(args.data)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as split:
        split.write("\n".join(read_names(args.split)) + "\n")
        split.flush()
        pairs = load_pairs(root / "msrs" / "test", Path(split.name))

    fused, _ = load_model(args.fused)
    ir_model, _ = load_model(args.ir)
    if fused.cfg.fusion_context:
        raise SystemExit(f"{args.fused} has a fusion-context encoder; give a student without one")
    fusion_path = tuple(name.removeprefix("net.") for name in FUSION_PATH)  # the training wrapper's prefix
    own = {k: v.clone() for k, v in fused.state_dict().items()}  # a copy: load_state_dict writes in place
    zeroed = {k: (torch.zeros_like(v) if k.startswith("fusion_maps.") else v) for k, v in own.items()}
    grafted = {
        k: (own[k] if k.startswith(fusion_path) else v)
        for k, v in fold_single_camera(ir_model.state_dict(), "ir").items()
    }

    def report(label, means):
        print(
            json.dumps({"model": label, **{k: round(float(means[k]), 4) for k in ("VIF", "Qabf", "SSIM")}}), flush=True
        )

    rows = [fusion_metrics(np.maximum(ir, vis), ir, vis) for _, ir, vis, _ in pairs]
    report("pixel max", {k: np.mean([r[k] for r in rows]) for k in ("VIF", "Qabf", "SSIM")})
    for label, state in (
        ("fused", own),
        ("fused, fusion maps zeroed", zeroed),
        ("IR trunk + fused fusion path", grafted),
    ):
        fused.load_state_dict(state)
        report(label, evaluate_model(fused, pairs, desc=label)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
