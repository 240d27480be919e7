"""How much detection mAP can the visible camera add on these labels, at most?

    python experiments/visible_headroom.py --split splits/msrs_dev_eval.txt \\
        experiments/weights/student_ir_distilled.safetensors

The ground truth is the union of the IR and the visible annotation, de-duplicated at IoU 0.5
(``datasets.paired.merge_boxes``): every IR box, plus each visible box that no same-class IR box
overlaps at IoU >= 0.5. This tool sorts the ground-truth boxes by where they came from:

- ``ir``: an IR annotator's box (something the IR image shows);
- ``vis_near``: a visible box kept by the union that overlaps a same-class IR box at IoU 0.1-0.5,
  mostly the same object boxed a second time from the other camera;
- ``vis_only``: a visible box that no same-class IR box touches (IoU < 0.1): an object the IR
  annotators did not box, the only kind of object that the visible camera alone can reveal.

For each student given (any input), it counts the ground-truth boxes of each origin that the
student finds: matched one-to-one at IoU 0.5 by a same-class detection scoring at least
``--score`` (0.3, the node's default threshold). A fused student that uses the visible camera
should find more ``vis_only`` boxes than its IR-only twin.

For each IR-only student it also scores an oracle that keeps the student's detections and
adds every ``vis_only`` box (and, second, every ``vis_near`` box too) as a perfect detection ranked
above all of them. The oracle's gain over the student bounds what a fused student could gain over
its IR-only twin by seeing what IR does not show; anything beyond it would have to come from
finding IR-visible objects better. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_args import add_data_argument, add_split_argument, split_path  # noqa: E402
from model_card import evaluate_model  # noqa: E402

from ivif_ros.datasets.paired import Boxes  # noqa: E402

ORIGINS = ("ir", "vis_near", "vis_only")


def ground_truth_origins(pair) -> np.ndarray:
    """Each box of ``pair.boxes`` (IR boxes first, then the visible boxes the union kept): its
    origin, an index into ORIGINS."""
    vis_only = pair.visible_only
    from_ir = np.arange(len(vis_only)) < len(pair.boxes_ir or Boxes())  # as pair.boxes treats a missing one
    return np.where(from_ir, 0, np.where(vis_only, ORIGINS.index("vis_only"), ORIGINS.index("vis_near")))


def with_oracle(preds, gts, origins, add: tuple[str, ...]):
    """``preds`` plus every ground-truth box whose origin is in ``add``, as a detection scored
    above every real one (so it is ranked first and matched to itself)."""
    top = 1.0 + max((float(np.max(s)) for _, s, _ in preds if len(s)), default=0.0)
    out = []
    for (p_xyxy, p_scores, p_cls), (g_xyxy, g_cls), origin in zip(preds, gts, origins):
        pick = np.isin(origin, [ORIGINS.index(a) for a in add])
        out.append(
            (
                np.concatenate([np.asarray(p_xyxy, np.float64).reshape(-1, 4), g_xyxy[pick]]),
                np.concatenate([p_scores, np.full(int(pick.sum()), top)]),
                np.concatenate([np.asarray(p_cls, int), g_cls[pick]]),
            )
        )
    return out


def found_by_origin(preds, gts, origins, score: float, iou_thr: float = 0.5) -> dict[str, list[int]]:
    """{origin: [found, total]}: ground-truth boxes matched one-to-one (greedy in score order,
    as COCO matches) by a same-class detection scoring >= ``score`` at IoU >= ``iou_thr``."""
    from ivif_ros.datasets.paired import box_iou

    found = {o: [0, 0] for o in ORIGINS}
    for (p_xyxy, p_scores, p_cls), (g_xyxy, g_cls), origin in zip(preds, gts, origins):
        p_xyxy, p_scores, p_cls = (
            np.asarray(p_xyxy, np.float64).reshape(-1, 4),
            np.asarray(p_scores),
            np.asarray(p_cls, int),
        )
        hit = np.zeros(len(g_cls), bool)
        for d in np.argsort(-p_scores, kind="mergesort"):
            if p_scores[d] < score or hit.all():
                break
            iou = np.where((g_cls == p_cls[d]) & ~hit, box_iou(p_xyxy[d : d + 1], g_xyxy)[0], -1.0)
            if iou.max() >= iou_thr:
                hit[iou.argmax()] = True
        for o, h in zip(origin, hit):
            found[ORIGINS[o]][0] += int(h)
            found[ORIGINS[o]][1] += 1
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "weights",
        nargs="*",
        type=Path,
        help="students (.safetensors), each run on the input it was trained on; IR-only ones also get the oracle",
    )
    add_data_argument(ap)
    add_split_argument(ap)
    ap.add_argument("--score", type=float, default=0.3, help="detection score threshold of the found counts")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from ivif_ros.datasets.paired import PairedDataset, rgb_to_gray
    from ivif_ros.metrics.detection import evaluate_detections
    from ivif_ros.training.data import trained_input_mode
    from ivif_ros.weights import load_model

    torch.set_num_threads(args.threads)
    split = split_path(args)
    pairs, gts, origins = [], [], []
    for p in PairedDataset(args.data / "msrs" / "test", split):
        boxes = p.boxes
        pairs.append((p.name, p.ir, p.vis if p.vis.ndim == 2 else rgb_to_gray(p.vis), boxes))
        gts.append((boxes.xyxy.astype(np.float64), boxes.cls.astype(int)))
        origins.append(ground_truth_origins(p))
    counts: dict = {}
    for (_, cls), origin, (name, *_rest) in zip(gts, origins, pairs):
        period = "day" if name.endswith("D") else "night"
        for c, o in zip(cls, origin):
            key = f"{period}/{int(c)}/{ORIGINS[o]}"
            counts[key] = counts.get(key, 0) + 1
    result = {
        "split": str(args.split),
        "images": len(pairs),
        "gt_by_period_class_origin": dict(sorted(counts.items())),
        "students": {},
    }
    for path in args.weights:
        model, meta = load_model(path)
        mode = trained_input_mode(meta, str(path))
        keep: dict = {}
        evaluate_model(model, meta, mode, pairs, desc=path.name, keep=keep)
        names = meta["detection_classes"]
        row = {"input": mode, "found_by_origin": found_by_origin(keep["preds"], gts, origins, args.score)}
        oracles = (
            (("+vis_only", ("vis_only",)), ("+vis_only+vis_near", ("vis_only", "vis_near"))) if mode == "ir" else ()
        )
        for label, add in (("student", ()), *oracles):
            det = evaluate_detections(with_oracle(keep["preds"], gts, origins, add), gts, len(names), names)
            row[label] = {
                "map50": round(det["map50"], 4),
                **{n: round(v["ap50"], 4) for n, v in det["per_class"].items()},
            }
        result["students"][str(path)] = row
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
