"""``ivif replay BAG --out DIR``: one command from a bag to a report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "replay",
        help=help_text,
        description=(
            "Replay a rosbag2 bag (mcap or sqlite3) through the fusion pipeline and write OUT/output_bag "
            "(fused image, mask, detections, status), OUT/summary.json, OUT/frames.csv and OUT/report.md. "
            "Offline (default) pairs and fuses as fast as it can; --live plays the bag into the node graph "
            "over DDS at bag timing and records what the graph publishes."
        ),
    )
    p.add_argument("bag", type=Path, help="rosbag2 folder (with metadata.yaml) or a single .mcap/.db3 file")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--live", action="store_true", help="play into the running node graph over DDS")
    p.add_argument("--rate", type=float, default=1.0, help="live: playback speed factor (default 1.0)")
    p.add_argument("--ir-topic", help="infrared Image/CompressedImage topic (default: auto-detect)")
    p.add_argument("--vis-topic", help="visible Image/CompressedImage topic (default: auto-detect)")
    p.add_argument("--gt-topic", help="ground-truth DetectionArray topic (default: auto-detect)")
    p.add_argument(
        "--config",
        type=Path,
        help="fusion config YAML, a ROS 2 parameters file or plain sections "
        "(default: the built-in defaults, as in config/fusion.yaml)",
    )
    p.add_argument("--backend", help="inference backend, overrides the config (e.g. onnxruntime, openvino, torch)")
    p.add_argument(
        "--metrics-every",
        type=int,
        default=0,
        help="score fusion metrics on every N-th fused frame (default: every frame up to 200 "
        "frames, then subsampled to about 200)",
    )
    p.add_argument(
        "--storage-format",
        choices=("mcap", "sqlite3"),
        default="mcap",
        help="storage of the output bag (input storage is detected from the bag)",
    )
    p.add_argument(
        "--keep-input-qos",
        action="store_true",
        help="live: keep the config's input QoS (sensor-data best effort) instead of reliable inputs, "
        "to measure what the graph loses on the way in",
    )
    p.add_argument("--samples", type=int, default=4, help="number of sample frames in the report (default 4)")
    p.add_argument(
        "--max-message-mb",
        type=float,
        default=None,
        help="IR/visible messages larger than this (MiB of serialized data) are dropped unread as "
        "message_too_large (default 513: the 512 MiB image limit plus the header)",
    )
    p.add_argument(
        "--segment-s",
        type=float,
        default=None,
        help="the output bag is written as a series of finished files, a new one every N seconds, so a "
        "killed replay loses at most the last N seconds of output (default 5)",
    )
    return p


def run(args) -> int:
    from ivif_ros.errors import ConfigError
    from ivif_ros.replay.run import ReplayOptions, print_summary, run_replay

    if args.rate <= 0:
        raise ConfigError(f"--rate must be positive, got {args.rate}")
    if args.metrics_every < 0:
        raise ConfigError(f"--metrics-every must be >= 0 (0 = automatic), got {args.metrics_every}")
    limits = {}
    if args.max_message_mb is not None:
        if not args.max_message_mb > 0:
            raise ConfigError(f"--max-message-mb must be positive, got {args.max_message_mb}")
        limits["max_message_bytes"] = int(args.max_message_mb * (1 << 20))
    if args.segment_s is not None:
        if not args.segment_s > 0:
            raise ConfigError(f"--segment-s must be positive, got {args.segment_s}")
        limits["segment_s"] = args.segment_s
    opts = ReplayOptions(
        bag=args.bag,
        out=args.out,
        live=args.live,
        rate=args.rate,
        ir_topic=args.ir_topic,
        vis_topic=args.vis_topic,
        gt_topic=args.gt_topic,
        config=args.config,
        backend=args.backend,
        metrics_every=args.metrics_every,
        storage_format=args.storage_format,
        samples=args.samples,
        keep_input_qos=args.keep_input_qos,
        **limits,
    )
    result = run_replay(opts)
    print_summary(result)
    return 1 if result.summary["partial"] else 0
