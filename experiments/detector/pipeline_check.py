"""The shipped pipeline end to end on msrs_dev_eval: FusionPipeline (student fusion, then the
detector named by --detector at its sidecar's input size), scored by ``ivif eval``'s code
against labels_det/fusion and the IR/visible union. Confirms that evaluate.py's figures on
cached fused images are the pipeline's.

    IVIF_DATA=/path/to/data python experiments/detector/pipeline_check.py --detector detector
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's ivif_ros, not an installed copy


def main(argv=None) -> int:
    from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
    from ivif_ros.datasets.paired import PairedDataset
    from ivif_ros.engines import EngineConfig
    from ivif_ros.metrics.dataset_eval import DETECTION_CLASSES, MAP_SCORE_FLOOR, LearnedMethod, evaluate
    from ivif_ros.training.detector_config import data_root
    from ivif_ros.weights import resolve

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="detector")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = data_root(args.data)
    meta = json.loads(resolve(args.detector)[1].read_text())
    h, w = meta["input"]["native_hw"]
    engine = EngineConfig(
        backend="torch", height=480, width=640, dynamic=True, min_size=(32, 32), max_size=(2048, 2048)
    )
    cfg = PipelineConfig(
        model="student",
        engine=engine,
        detector=args.detector,
        detector_size=[w, h],
        score_threshold=MAP_SCORE_FLOOR,
        class_map=list(DETECTION_CLASSES),
    )
    ds = PairedDataset(root / "msrs" / "test", root / "splits" / "msrs_dev_eval.txt")
    result = evaluate(ds, {"student+detector": LearnedMethod(FusionPipeline(cfg))}, sample_count=0)
    det, union = result.detection["student+detector"], result.detection_union["student+detector"]
    out = {
        "detector": args.detector,
        "detector_size_wh": [w, h],
        "ground_truth": result.ground_truth,
        "map50": det["map50"],
        "ap50": {c: v["ap50"] for c, v in det["per_class"].items()},
        "map50_union": union["map50"],
    }
    print(json.dumps(out, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            f.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
