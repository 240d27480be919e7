"""The data-folder and split arguments the experiment scripts share."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_data_argument(ap: argparse.ArgumentParser) -> None:
    """``--data``: the folder holding msrs/ and splits/; required unless $IVIF_DATA names it."""
    ap.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("IVIF_DATA"),
        required="IVIF_DATA" not in os.environ,
        help="folder holding msrs/ and splits/ (default: $IVIF_DATA)",
    )


def add_split_argument(ap: argparse.ArgumentParser, default: str = "splits/msrs_dev_eval.txt") -> None:
    """``--split``: a names file, relative to ``--data`` unless absolute (``split_path`` resolves it)."""
    ap.add_argument("--split", type=Path, default=Path(default), help="names file, relative to --data unless absolute")


def split_path(args: argparse.Namespace) -> Path:
    return args.split if args.split.is_absolute() else args.data / args.split
