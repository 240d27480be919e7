"""The data-folder argument the experiment scripts share."""

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
