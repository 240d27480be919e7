"""``ivif bench``: milliseconds per frame of every backend, split into pre-processing, inference and post-processing.

Runs ``FusionPipeline`` (the code path of the node and of replay) on an MSRS pair resized to
each frame size: warm-up frames, then the median of ``--runs`` frames. Each configuration
gives three rows (``part``): ``fusion`` (the fusion model with its pre- and post-processing),
``detector`` (the detector alone on the fused frame: blob, inference, decoding) and
``fusion+detector`` (the whole pipeline, as the node runs it). Prints a table (or, with
``--json``, a list of rows ``{model, part, backend, precision, width, height, pre_ms,
infer_ms, post_ms, total_ms, runs, fps}``). ``--out DIR`` also writes bench.json, bench.md
and bench.png. The machine load is printed: other processes skew the numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ivif_ros.errors import ConfigError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame size '{text}' must look like 640x480") from None
    return w, h


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", nargs="+", default=["student", "teacher"], help="models to time (default both)")
    p.add_argument(
        "--sizes",
        nargs="+",
        type=_size,
        default=[(640, 480), (1280, 1024)],
        metavar="WxH",
        help="frame sizes (default 640x480 1280x1024)",
    )
    p.add_argument("--runs", type=int, default=20, help="timed frames per configuration (median; default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first (default 3)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile for the student (~30 s compile)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime/OpenVINO threads (0 = all cores)")
    p.add_argument(
        "--detector",
        default=None,
        help="detector weights timed on the fused frames (default: pipeline.detector, detector_coco; "
        "'' for fusion rows only)",
    )
    p.add_argument("--json", action="store_true", help="print JSON rows instead of the table")
    p.add_argument("--out", type=Path, help="folder for bench.json, bench.md and bench.png")
    return p


def run(args) -> int:
    if args.runs < 1 or args.warmup < 0:
        raise ConfigError("--runs must be >= 1 and --warmup >= 0")
    from ivif_ros.engines.benchmark import markdown_table, plot, rows_as_dicts, run_benchmark

    rows, conditions = run_benchmark(
        args.models,
        args.sizes,
        args.runs,
        args.warmup,
        include_compile=args.compile,
        threads=args.threads,
        detector=args.detector,
    )
    table = markdown_table(rows)
    header = (
        f"host {conditions['host']}; load average before {conditions['load_before'][0]:.2f}, "
        f"after {conditions['load_after'][0]:.2f}; frames: {conditions['frames']}; "
        f"weights: {conditions['weights']}; median of {args.runs} runs after {args.warmup} warm-up"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench.json").write_text(
            json.dumps({"conditions": conditions, "rows": rows_as_dicts(rows)}, indent=1)
        )
        (args.out / "bench.md").write_text(f"{header}\n\n{table}\n")
        plot(rows, args.out / "bench.png")
    if args.json:
        print(json.dumps(rows_as_dicts(rows), indent=1))
    else:
        print(header)
        print(table)
    return 0
