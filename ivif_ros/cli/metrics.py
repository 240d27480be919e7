"""``ivif metrics``: score one fused image against its infrared and visible sources.

Colour images are reduced to their BT.601 luma (the visible Y that fusion methods fuse and the
Y of a colour fused result). Example::

    ivif metrics --ir ir/00001D.png --vis vi/00001D.png --fused fused/00001D.png --json
"""

from __future__ import annotations

import argparse


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "metrics", help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ir", required=True, help="infrared source image")
    p.add_argument("--vis", required=True, help="visible source image (colour or grey)")
    p.add_argument("--fused", required=True, help="fused image (colour or grey)")
    p.add_argument(
        "--variant",
        choices=["cddfuse", "matlab"],
        default="cddfuse",
        help="metric conventions (default cddfuse; see ivif_ros.metrics.fusion)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def run(args) -> int:
    import json
    import math
    from pathlib import Path

    from ivif_ros.core.color import rgb_to_y_u8
    from ivif_ros.datasets.paired import read_image
    from ivif_ros.errors import InputError
    from ivif_ros.metrics.fusion import fusion_metrics

    paths = {"infrared": Path(args.ir), "visible": Path(args.vis), "fused": Path(args.fused)}
    images = {role: rgb_to_y_u8(read_image(path)) for role, path in paths.items()}
    sizes = {role: img.shape for role, img in images.items()}
    if len(set(sizes.values())) != 1:
        listing = ", ".join(f"{role} {paths[role]} is {s[1]}x{s[0]}" for role, s in sizes.items())
        raise InputError(f"the three images must have one size ({listing}); register/resize the sources first")
    scores = fusion_metrics(images["fused"], images["infrared"], images["visible"], args.variant)
    if args.json:
        print(json.dumps({k: (v if math.isfinite(v) else None) for k, v in scores.items()} | {"variant": args.variant}))
    else:
        for name, value in scores.items():
            print(f"{name:>5} {value:10.4f}")
        print(f"(variant {args.variant})")
    return 0
