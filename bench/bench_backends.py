#!/usr/bin/env python3
"""Benchmark the inference backends; the same as ``ivif bench`` (see ``ivif bench --help``).

python bench/bench_backends.py --out bench/results          # table + bench.json/md/png
python bench/bench_backends.py --models student --sizes 640x480 --json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

from ivif_ros.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
