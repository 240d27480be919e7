"""``ivif make-bag``: turn a paired IR/visible image dataset into a rosbag2 bag."""

from __future__ import annotations

import argparse

from ivif_ros.cli.bag_output_args import add_storage_arguments, add_timing_arguments, timing_from_args


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "make-bag",
        help=help_text,
        description=(
            "Write the pairs of a paired-folder dataset (ir/, vi/, optional labels_det/) into a rosbag2 bag: "
            "IR and visible images stamped like two free-running cameras, ground-truth boxes as "
            "ivif_ros/msg/DetectionArray and each pair's name as std_msgs/Header (frame_id = name)."
        ),
    )
    p.add_argument(
        "--data", required=True, help="dataset folder with ir/ and vi/ (e.g. msrs/test or a sample's pairs/)"
    )
    p.add_argument("--split", help="text file with one pair name per line (default: all pairs)")
    p.add_argument("--out", required=True, help="output bag folder (must not exist unless --overwrite)")
    add_storage_arguments(p, "40")
    add_timing_arguments(p)
    p.add_argument("--limit", type=int, help="write at most N pairs")
    p.add_argument("--seed", type=int, default=0, help="seed of the jitter and drops (default 0)")
    p.add_argument("--ir-topic", default="/ir/image_raw", help="IR image topic (default /ir/image_raw)")
    p.add_argument("--vis-topic", default="/visible/image_raw", help="visible image topic (default /visible/image_raw)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bag folder")
    return p


def run(args) -> int:
    from ivif_ros.bag.make_bag import MakeBagOptions, make_bag

    opts = MakeBagOptions(
        split=args.split,
        storage=args.storage,
        compress=args.compress,
        limit=args.limit,
        ir_topic=args.ir_topic,
        vis_topic=args.vis_topic,
        seed=args.seed,
        timing=timing_from_args(args),
    )
    result = make_bag(args.data, args.out, opts, overwrite=args.overwrite)
    counts = ", ".join(f"{t} {n}" for t, n in result.messages.items())
    print(
        f"wrote {result.pairs} pairs to {result.bag} ({result.bytes / 1e6:.1f} MB) in {result.seconds:.1f} s: {counts}"
    )
    return 0
