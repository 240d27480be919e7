"""Convert the authors' FastestDet COCO checkpoint to the shipped safetensors + sidecar.

    .venv/bin/python experiments/convert_fastestdet.py [--pretrained ../shared/pretrained]

Loads ``fastestdet/fastestdet_coco.pth`` into ``ivif_ros.models.fastestdet`` with
``strict=True`` (so every tensor has a home and nothing is left out), then writes
``ivif_ros/weights/detector_coco.safetensors`` and its ``.json`` sidecar (class names from
``coco.names``, provenance from ``MANIFEST.tsv``, paths relative to the repository).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from ivif_ros.core.hashing import file_sha256  # noqa: E402
from ivif_ros.models.fastestdet import build_fastestdet  # noqa: E402
from ivif_ros.weights import WEIGHTS_DIR, save_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pretrained",
        type=Path,
        default=Path(os.environ.get("IVIF_ROS_PRETRAINED", REPO.parent / "shared" / "pretrained")),
    )
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR / "detector_coco")
    args = parser.parse_args()
    folder = args.pretrained / "fastestdet"
    checkpoint = folder / "fastestdet_coco.pth"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    names = [n.strip() for n in (folder / "coco.names").read_text().splitlines() if n.strip()]
    model = build_fastestdet(num_classes=len(names))
    model.load_state_dict(state, strict=True)
    with open(args.pretrained / "MANIFEST.tsv") as f:
        manifest = {row["path"]: row for row in csv.DictReader(f, delimiter="\t")}
    origin = manifest["fastestdet/fastestdet_coco.pth"]
    meta = {
        "detection_classes": names,
        "input": {
            "channel_order": "BGR",
            "scale": "1/255, no mean or std",
            "native_hw": [352, 352],
            "size_multiple": 32,
        },
        "licence": "BSD-3-Clause, Copyright (c) 2022 xuehao.ma; see LICENSE.fastestdet.md beside this file",
        "source": {
            "repository": origin["source_repo"],
            "commit": origin["source_commit"],
            "path": origin["source_path"],
            "file": "../shared/pretrained/fastestdet/fastestdet_coco.pth",  # the CI layout: ../shared beside the clone
            "file_sha256": file_sha256(checkpoint),
            "tensors": len(state),
            "parameters": sum(t.numel() for t in state.values()),
        },
        "training": {"data": "COCO 2017 (by the authors)", "command": "experiments/convert_fastestdet.py"},
    }
    print(save_model(model, args.out, meta))


if __name__ == "__main__":
    main()
