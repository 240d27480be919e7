"""Two synthetic cameras in their own process, as a camera driver would publish them.

IR (mono8 or mono16) and visible (rgb8) images at a fixed rate on ``<ns>/ir/image_raw``
and ``<ns>/visible/image_raw`` with sensor-data QoS (best effort, keep last 5), the
stamps of a pair within ``--skew-ms`` of each other. It runs with whatever middleware
settings its environment has; the benchmark and the CI test start it with none (no
``FASTDDS_*`` variable, no profile file), like a driver started from a plain shell.

It waits until both image topics have a subscriber (or ``--wait-s`` passes), publishes
``--seconds`` of pairs, and prints one JSON line: pairs sent, images per camera, and the
steady-clock publish time of each visible stamp (the benchmark's end-to-end latency is
measured from it; CLOCK_MONOTONIC is shared by the processes of one host).

    python bench/camera_publisher.py --ns /bench --rate 30 --seconds 10 --ir-encoding mono16
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def frames(width: int, height: int, ir_encoding: str, n: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few precomputed IR / visible frames with a moving warm blob."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for k in range(n):
        blob = np.exp(-((xx - width * (0.2 + 0.08 * k)) ** 2 + (yy - height / 2) ** 2) / (width * 2.0))
        if ir_encoding == "mono16":
            ir = ((285 + 5 * yy / height + 25 * blob) * 100).astype(np.uint16)
        else:
            ir = (40 + 60 * yy / height + 150 * blob).astype(np.uint8)
        vis = np.stack([xx / width * 255, yy / height * 255, 128 + 60 * np.sin(xx / 9)], -1).astype(np.uint8)
        out.append((ir, vis))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ns", default="", help="namespace of the camera topics")
    parser.add_argument("--rate", type=float, default=30.0, help="pairs per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--ir-encoding", choices=("mono8", "mono16"), default="mono8")
    parser.add_argument("--skew-ms", type=float, default=3.0, help="largest |IR - visible| stamp difference")
    parser.add_argument("--reliable", action="store_true", help="reliable QoS instead of sensor data")
    parser.add_argument("--wait-s", type=float, default=60.0, help="how long to wait for subscribers")
    args = parser.parse_args(argv)

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from ivif_ros.nodes import messages

    rclpy.init()
    node = rclpy.create_node("bench_cameras")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE) if args.reliable else qos_profile_sensor_data
    base = args.ns.rstrip("/")
    pub_ir = node.create_publisher(Image, f"{base}/ir/image_raw", qos)
    pub_vis = node.create_publisher(Image, f"{base}/visible/image_raw", qos)
    deadline = time.monotonic() + args.wait_s
    while not (pub_ir.get_subscription_count() and pub_vis.get_subscription_count()):
        if time.monotonic() > deadline:
            print(json.dumps({"error": f"no subscriber on {base}/ir|visible/image_raw within {args.wait_s:.0f} s"}))
            return 3
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(1.0)  # let the subscriber's matching of both topics settle

    data = frames(args.width, args.height, args.ir_encoding)
    rng = np.random.default_rng(0)
    n = int(round(args.seconds * args.rate))
    published: list[tuple[int, int]] = []  # (visible stamp ns, steady ns at publish)
    period = 1.0 / args.rate
    t_next = time.monotonic()
    start_ns = node.get_clock().now().nanoseconds
    for k in range(n):
        ir, vis = data[k % len(data)]
        # Stamped at the frame's capture time on a fixed schedule, as a triggered camera is: the
        # stamps stay one period apart even when a loaded machine delays a publish.
        capture = start_ns + int(k * period * 1e9)
        vis_stamp = capture + int(rng.uniform(-1, 1) * args.skew_ms * 1e6)
        ir_msg = messages.image_msg(
            ir, args.ir_encoding, messages.Header(stamp=messages.time_msg(capture), frame_id="ir")
        )
        vis_msg = messages.image_msg(vis, "rgb8", messages.Header(stamp=messages.time_msg(vis_stamp), frame_id="vis"))
        published.append((vis_stamp, time.monotonic_ns()))
        pub_vis.publish(vis_msg)
        pub_ir.publish(ir_msg)
        t_next += period
        time.sleep(max(0.0, t_next - time.monotonic()))
    time.sleep(0.5)  # best effort has no retransmission; give the last samples time to leave
    print(json.dumps({"pairs_sent": n, "sent": {"ir": n, "visible": n}, "published": published}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
