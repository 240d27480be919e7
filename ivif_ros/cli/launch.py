"""``ivif launch``: the fusion graph from config/fusion.yaml, without launch_ros."""

from __future__ import annotations

import argparse


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "launch",
        help=help_text,
        description=(
            "Start the fusion node and the overlay node (graph.mode: one process each, or both in one "
            "process) from a ROS 2 parameters file; Ctrl-C or SIGTERM stops them cleanly."
        ),
        epilog="example: ivif launch --ns car1 --remap ir/image_raw:=/thermal/image_raw "
        "--param sync.slop_s=0.03 --backend openvino",
    )
    p.add_argument("--config", help="ROS 2 parameters file (default: config/fusion.yaml)")
    p.add_argument("--ns", default="", help="namespace of the nodes and their relative topics")
    p.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="FROM:=TO",
        help="topic remap, e.g. ir/image_raw:=/thermal/image_raw (repeatable)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="parameter override, e.g. sync.slop_s=0.03 or graph.mode=single_process (repeatable)",
    )
    p.add_argument("--use-sim-time", action="store_true", help="follow /clock (bag replay)")
    p.add_argument("--backend", help="engine.backend, e.g. auto, onnxruntime, openvino, torch, tensorrt")
    p.add_argument("--model", help="pipeline.model: student, teacher or a path to <name>.safetensors")
    p.add_argument("--mode", choices=("single_process", "multi_process"), help="graph.mode")
    p.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    return p


def run(args: argparse.Namespace) -> int:
    from ivif_ros.nodes.launcher import LaunchRequest, default_config_path, plan, supervise

    request = LaunchRequest(
        config=args.config or default_config_path(),
        namespace=args.ns,
        remaps=args.remap,
        params=args.param,
        use_sim_time=args.use_sim_time,
        backend=args.backend,
        model=args.model,
        mode=args.mode,
    )
    graph = plan(request)
    if args.dry_run:
        for label, argv in graph.commands:
            print(f"{label}: {' '.join(argv)}")
        return 0
    return supervise(graph)
