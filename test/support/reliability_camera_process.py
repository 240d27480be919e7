"""A stand-in IR camera driver in its own process, for the publisher-restart test.

Publishes a 64x48 mono16 image on ``ir/image_raw`` (relative: namespace/remap it with
``--ros-args``) at ``--rate-hz`` once a subscriber matched, stamped with the ROS clock
(reliable QoS), and appends each stamp to
``--stamps-file`` right after publishing (flushed, so a SIGKILL loses at most the line of
a message that may itself never have left the process)::

    python test/support/reliability_camera_process.py --stamps-file /tmp/ir_stamps.txt
"""

from __future__ import annotations

import argparse

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ivif_ros.nodes import messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stamps-file", required=True)
    parser.add_argument("--rate-hz", type=float, default=30.0)
    parser.add_argument("--frame-id", default="ir_optical")
    args = parser.parse_args(rclpy.utilities.remove_ros_args()[1:])

    rclpy.init()
    node = rclpy.create_node("ir_camera")
    pub = node.create_publisher(Image, "ir/image_raw", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    gradient = (29000 + 40 * np.arange(64, dtype=np.uint16))[None, :].repeat(48, 0)
    stamps = open(args.stamps_file, "a", buffering=1)  # line-buffered

    def publish() -> None:
        if not pub.get_subscription_count():
            return  # nobody to account for it yet: the test counts what a subscriber could receive
        now = node.get_clock().now().nanoseconds
        pub.publish(
            messages.image_msg(
                gradient, "mono16", messages.Header(stamp=messages.time_msg(now), frame_id=args.frame_id)
            )
        )
        stamps.write(f"{now}\n")

    node.create_timer(1.0 / args.rate_hz, publish)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stamps.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
