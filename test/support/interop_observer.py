"""A ROS 2 node with middleware defaults watching the fusion graph (run by test_interop.py).

    python test/support/interop_observer.py NAMESPACE

It is what ``ros2 node list`` / ``ros2 topic list`` / ``ros2 topic echo`` would be when
started from a plain shell. It prints one JSON line when it has discovered the graph's
nodes and topics (with the seconds it took), then, on SIGINT, one JSON line with the
fusion node's last /diagnostics values and the number of fused images it received.
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

GRAPH_NODES = ("ivif_fusion", "ivif_overlay")
GRAPH_TOPICS = ("fused/image", "fusion/status", "detections", "semantic/mask", "ir/image_raw", "visible/image_raw")


def main() -> None:
    ns = sys.argv[1].rstrip("/")
    rclpy.init()
    node = rclpy.create_node("interop_observer")
    start = time.monotonic()
    state = {"diag": {}, "fused_images": 0}

    def on_diag(array: DiagnosticArray) -> None:
        for status in array.status:
            if status.name.startswith(f"{ns}/ivif_fusion"):
                state["diag"] = {kv.key: kv.value for kv in status.values}

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    node.create_subscription(
        Image,
        f"{ns}/fused/image",
        lambda _: state.__setitem__("fused_images", state["fused_images"] + 1),
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
    )
    discovered = False
    try:
        while True:
            rclpy.spin_once(node, timeout_sec=0.05)
            if not discovered:
                nodes = {f"{n_ns.rstrip('/')}/{name}" for name, n_ns in node.get_node_names_and_namespaces()}
                topics = {name for name, _ in node.get_topic_names_and_types()}
                missing = [n for n in GRAPH_NODES if f"{ns}/{n}" not in nodes] + [
                    t for t in GRAPH_TOPICS if f"{ns}/{t}" not in topics
                ]
                if not missing:
                    discovered = True
                    print(
                        json.dumps(
                            {
                                "discovered_after_s": time.monotonic() - start,
                                "nodes": sorted(nodes),
                                "topics": sorted(topics),
                            }
                        ),
                        flush=True,
                    )
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(json.dumps({"diagnostics": state["diag"], "fused_images": state["fused_images"]}), flush=True)
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
