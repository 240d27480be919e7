"""Running nodes: one per process (``python -m ivif_ros.nodes.fusion_node``) or the whole graph
in one process (``python -m ivif_ros.nodes.graph``, ``graph.mode: single_process``).

In one process the nodes share an rclpy context and executor; their messages take Fast
DDS' intra-process path (no serialisation to a socket or shared-memory segment). rclpy
has no zero-copy intra-process mode like rclcpp's. ``--ros-args`` (params file,
``-p``, remaps, ``__ns``) apply to every node of the process.

SIGINT and SIGTERM stop the executor and destroy the nodes in order, so the fusion
node's worker thread finishes its frame before the process exits.
"""

from __future__ import annotations

import argparse
import sys

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from ivif_ros.core.heap import retain_freed_buffers
from ivif_ros.errors import UserFacingError
from ivif_ros.nodes.launcher import apply_default_profile


def spin_nodes(factories, args=None) -> int:
    """Create the nodes (callables returning a Node), spin them until shutdown, clean up."""
    args = sys.argv if args is None else args
    retain_freed_buffers()  # frame-sized buffers reused, not page-faulted in again (core.heap)
    apply_default_profile()  # read by Fast DDS when rclpy.init creates the participant
    try:
        rclpy.init(args=args)  # rclpy's handlers turn SIGINT and SIGTERM (kill, systemd, docker stop) into shutdown
    except RCLError as exc:  # rcl parses --ros-args here: a missing or malformed --params-file
        print(
            f"ivif_ros: error: ROS could not start: {exc}. Check the --ros-args (does every --params-file "
            "exist and parse as YAML?)",
            file=sys.stderr,
        )
        return 2
    nodes = []
    code = 0
    try:
        nodes = [make() for make in factories]
        # One executor thread. The fusion node's callbacks only hand frames to its own worker
        # thread, so a second executor thread buys nothing; rclpy's MultiThreadedExecutor
        # busy-polls its futures in Python and, at 640x480 x 30 Hz on 2 cores, starved that
        # worker of the GIL (live replay of the sample: 23 of 89 pairs fused, preprocess p90
        # 0.6 s; py-spy showed ~70 % of samples in Future.done / _spin_once_impl).
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # A signal's shutdown can race a message take: rclpy then raises a pybind conversion
        # RuntimeError from the half-torn-down subscription (seen once in CI on SIGINT). Once
        # the context is shut down that is a clean stop; while it is still up it is a real error.
        if rclpy.ok():
            raise
    except UserFacingError as exc:
        print(f"ivif_ros: error: {exc}", file=sys.stderr)
        code = 2
    finally:
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def main(argv=None) -> None:
    from ivif_ros.nodes.fusion_node import FusionNode
    from ivif_ros.nodes.overlay_node import OverlayNode

    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m ivif_ros.nodes.graph",
        description="The fusion graph in one process (ROS arguments after --ros-args).",
    )
    parser.add_argument("--no-overlay", action="store_true", help="do not start the overlay node")
    own = rclpy.utilities.remove_ros_args(argv)[1:]
    options = parser.parse_args(own)
    factories = [FusionNode] + ([] if options.no_overlay else [OverlayNode])
    sys.exit(spin_nodes(factories, argv))


if __name__ == "__main__":
    main()
