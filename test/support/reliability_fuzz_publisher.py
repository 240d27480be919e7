"""Publish a fuzz stream (reliability_fuzz_stream.fuzz_stream) from its own process.

    python test/support/reliability_fuzz_publisher.py --seed 5 --messages 2000 --t0-ns 1795300000000000000

Waits for the fusion node to subscribe, then publishes in bursts with reliable QoS and waits
after each burst until every subscriber acknowledged it, so that the node's counters can be
compared with the stream exactly. Prints ``published N`` at the end.
"""

from __future__ import annotations

import argparse
import sys
import time

import rclpy
from rclpy.duration import Duration
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from reliability_fuzz_stream import TOPIC, fuzz_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--t0-ns", type=int, required=True)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()

    stream = fuzz_stream(args.seed, args.messages, args.t0_ns)
    rclpy.init()
    node = rclpy.create_node("fuzz_publisher")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {cam: node.create_publisher(Image, topic, qos) for cam, topic in TOPIC.items()}
    deadline = time.monotonic() + 30
    while not all(p.get_subscription_count() for p in pubs.values()):
        if time.monotonic() > deadline:
            sys.exit("fuzz_publisher: the fusion node did not subscribe within 30 s")
        time.sleep(0.05)
    for start in range(0, len(stream), args.burst):
        for s in stream[start : start + args.burst]:
            pubs[s.cam].publish(s.msg)
        for pub in pubs.values():
            if not pub.wait_for_all_acked(Duration(seconds=30)):
                sys.exit(f"fuzz_publisher: burst at message {start} not acknowledged within 30 s")
        time.sleep(0.05)  # let the node's callbacks drain its reader history (depth 1000)
    print(f"published {len(stream)}", flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
