"""The bag-writing options ``ivif sample`` and ``ivif make-bag`` share: storage and camera timing."""

from __future__ import annotations

import argparse


def add_storage_arguments(p: argparse.ArgumentParser, compress_saving: str) -> None:
    """``--storage`` and ``--compress``; ``compress_saving`` is the size saving measured on that tool's output."""
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default mcap)")
    p.add_argument(
        "--compress",
        action="store_true",
        help=f"zstd-compress the MCAP chunks (about {compress_saving} %% smaller; mcap only)",
    )


def add_timing_arguments(p: argparse.ArgumentParser) -> None:
    """How the two simulated free-running cameras stamp their frames (``bag.timing.TimingConfig``)."""
    p.add_argument("--rate", type=float, default=30.0, help="camera frame rate in Hz (default 30)")
    p.add_argument(
        "--jitter-ms", type=float, default=3.0, help="each camera's stamp jitter, uniform +-N ms (default 3)"
    )
    p.add_argument("--ir-offset-ms", type=float, default=4.0, help="IR stamp lag behind visible (default 4 ms)")
    p.add_argument(
        "--drop-prob",
        type=float,
        default=0.0,
        help="probability that a camera frame is missing from the bag (default 0)",
    )


def timing_from_args(args):
    """The ``TimingConfig`` of the arguments added by :func:`add_timing_arguments`."""
    from ivif_ros.bag.timing import TimingConfig

    return TimingConfig(
        rate_hz=args.rate, jitter_ms=args.jitter_ms, ir_offset_ms=args.ir_offset_ms, drop_prob=args.drop_prob
    )
