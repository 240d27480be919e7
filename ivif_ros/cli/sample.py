"""``ivif sample``: generate the synthetic night-drive sample (image pairs + rosbag2 bag)."""

from __future__ import annotations

import argparse

from ivif_ros.cli.bag_output_args import add_storage_arguments, add_timing_arguments, timing_from_args


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sample",
        help=help_text,
        description=(
            "Render a synthetic night drive seen by a visible and an IR camera: registered image pairs "
            "with YOLO boxes (DIR/pairs, readable as a paired dataset), a rosbag2 bag with both cameras, "
            "CameraInfo and ground-truth detections (DIR/bag), and the exact IR->visible homography "
            "(DIR/calibration.yaml). Same seed and options give identical bytes."
        ),
    )
    p.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="scene, noise and timing seed (default 0)")
    p.add_argument("--frames", type=int, default=90, help="number of frames (default 90 = 3 s at 30 Hz)")
    p.add_argument("--width", type=int, default=640, help="visible image width (default 640)")
    p.add_argument("--height", type=int, default=480, help="visible image height (default 480)")
    p.add_argument("--ir-width", type=int, default=640, help="IR image width (default 640)")
    p.add_argument("--ir-height", type=int, default=512, help="IR image height (default 512)")
    add_storage_arguments(p, "35")
    p.add_argument(
        "--ir-encoding",
        choices=("mono16", "mono8"),
        default="mono16",
        help="IR image encoding in the bag: raw thermal counts (mono16, default) or 8-bit",
    )
    p.add_argument("--vis-encoding", choices=("rgb8", "bgr8"), default="rgb8", help="visible encoding (default rgb8)")
    add_timing_arguments(p)
    p.add_argument("--no-pairs", action="store_true", help="write only the bag and calibration")
    p.add_argument("--no-bag", action="store_true", help="write only the image pairs and calibration")
    p.add_argument(
        "--no-preview",
        action="store_true",
        help="skip DIR/preview.png (a plot of the middle frame and the stamp timing, read from the bag)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing `ivif sample` output folder")
    return p


def run(args) -> int:
    from ivif_ros.bag.sample import SampleOptions, generate_sample

    opts = SampleOptions(
        seed=args.seed,
        frames=args.frames,
        width=args.width,
        height=args.height,
        ir_width=args.ir_width,
        ir_height=args.ir_height,
        storage=args.storage,
        compress=args.compress,
        ir_encoding=args.ir_encoding,
        vis_encoding=args.vis_encoding,
        timing=timing_from_args(args),
        write_pairs=not args.no_pairs,
        write_bag=not args.no_bag,
    )
    result = generate_sample(args.out, opts, overwrite=args.overwrite)
    print(f"wrote {result.frames} frames in {result.seconds:.1f} s to {result.out}")
    if result.pairs:
        print(f"  pairs:       {result.pairs}  (paired-folder dataset)")
    if result.bag:
        counts = ", ".join(f"{t} {n}" for t, n in result.messages.items())
        print(f"  bag:         {result.bag}  ({counts})")
    print(f"  calibration: {result.calibration}")
    if result.bag and not args.no_preview:
        from ivif_ros.bag.preview import write_sample_preview

        print(f"  preview:     {write_sample_preview(result.out, frame=result.frames // 2)}")
    return 0
