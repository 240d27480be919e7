"""SSIM split into its two terms, pair by pair: ssim(F, IR) and ssim(F, VIS) (the CDDFuse SSIM
is their sum), with ssim(IR, VIS) beside them, for pixel-max and the given students.

    python experiments/ssim_per_source.py --set vifb experiments/weights/cross_sensor/x2_without_vifb.safetensors

When the two sources share little structure (ssim(IR, VIS) near 0), the sum is highest where
the fused image follows one source per window, as pixel-max does; a fused image that mixes the
texture of both in one window scores lower on both terms. The table shows which pairs lose SSIM
and to which source. Prints a Markdown table; ``--out`` also writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from cross_sensor import SETS  # noqa: E402


def split_rows(dataset, methods: dict) -> list[dict]:
    """One row per pair: ``{pair, sources, <method>: (ssim(F, IR), ssim(F, VIS))}``."""
    from tqdm import tqdm

    from ivif_ros.metrics.fusion import _ssim_skimage, as_grey

    rows = []
    for index in tqdm(range(len(dataset)), desc="ssim split", unit="pair"):
        pair = dataset[index]
        ir, vis = as_grey(pair.ir), as_grey(pair.vis)
        row = {"pair": pair.name, "sources": _ssim_skimage(ir, [vis])[0]}
        for label, method in methods.items():
            row[label] = tuple(_ssim_skimage(as_grey(method(pair.ir, pair.vis)), [ir, vis]))
        rows.append(row)
    return rows


def markdown(rows: list[dict], labels: list[str]) -> list[str]:
    head = "| pair | ssim(IR, VIS) | " + " | ".join(f"{m}: F-IR + F-VIS = SSIM" for m in labels) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(labels)]
    for r in rows:
        cells = [f"{r[m][0]:.2f} + {r[m][1]:.2f} = {sum(r[m]):.3f}" for m in labels]
        lines.append(f"| {r['pair']} | {r['sources']:.2f} | " + " | ".join(cells) + " |")
    means = [sum(sum(r[m]) for r in rows) / len(rows) for m in labels]
    lines.append("| mean | | " + " | ".join(f"{v:.3f}" for v in means) + " |")
    return lines


def main(argv=None) -> int:
    import torch

    from ivif_ros.datasets.paired import PairedDataset
    from ivif_ros.metrics.dataset_eval import MODEL_PREFIX, resolve_methods
    from ivif_ros.training.detector_config import data_root

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("students", nargs="*", type=Path, help="student weights (.safetensors)")
    ap.add_argument("--set", choices=list(SETS), default="vifb", help="the set to split (default vifb)")
    ap.add_argument("--data", default=None, help="data folder (default $IVIF_DATA)")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    root = data_root(args.data)
    s = SETS[args.set]
    dataset = PairedDataset(root / s.root, root / s.split if s.split else None)
    specs = ["max"] + [f"{MODEL_PREFIX}{w}" for w in args.students]
    resolved = resolve_methods(specs, "torch", frame_hw=dataset[0].ir.shape[:2])
    labels = ["pixel-max"] + [w.stem for w in args.students]
    methods = dict(zip(labels, resolved.values()))
    rows = split_rows(dataset, methods)
    print(f"{s.title}: SSIM = ssim(F, IR) + ssim(F, VIS), 7x7 window (CDDFuse)\n")
    print("\n".join(markdown(rows, labels)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"set": args.set, "methods": labels, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
