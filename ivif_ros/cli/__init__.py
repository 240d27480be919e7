"""The ``ivif`` command: one subcommand per user task.

Each subcommand lives in its own module under ``ivif_ros.cli`` and exposes
``add_parser(subparsers)`` (cheap: no heavy imports) and ``run(args) -> int``.
Heavy imports (torch, rclpy, matplotlib) happen inside ``run`` so that
``ivif --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ivif_ros.errors import UserFacingError

# (subcommand module, one-line help). Order is the order shown in --help.
COMMANDS = [
    ("sample", "generate the synthetic IR/visible sample (images + bag)"),
    ("make_bag", "turn a paired image dataset into a rosbag2 bag"),
    ("metrics", "score one fused image against its IR and visible sources"),
    ("eval", "evaluate fusion methods on a paired dataset"),
    ("train", "train the teacher or distil the student"),
    ("export", "export the student for ONNX Runtime, OpenVINO or TensorRT"),
    ("bench", "benchmark inference backends"),
    ("replay", "replay a bag through the pipeline and write a report"),
    ("launch", "start the node graph without launch_ros"),
    ("demo", "the README demo: sample bag -> live replay -> report"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivif", description="Infrared-visible image fusion for ROS 2.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, help_text in COMMANDS:
        module = importlib.import_module(f"ivif_ros.cli.{module_name}")
        p = module.add_parser(sub, help_text)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from ivif_ros.cli.contract import check_out, error_line
    from ivif_ros.core.heap import retain_freed_buffers

    retain_freed_buffers()  # replay, demo and bench run frames as the node does (core.heap)

    try:
        check_out(args.command, getattr(args, "out", None), getattr(args, "force", False))
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (UserFacingError, OSError) as exc:  # bad input, explained: one line, no traceback
        print(error_line(args.command, exc), file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001  a bug: still one line, the traceback on request
        if os.environ.get("IVIF_TRACEBACK"):
            raise
        print(
            error_line(args.command, exc) + " (an internal error: please report it with the traceback "
            "that IVIF_TRACEBACK=1 prints)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
