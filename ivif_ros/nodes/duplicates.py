"""Noticing a second node under this node's full name (e.g. an orphan of a killed graph, or two
``ivif launch`` in the same namespace): both would publish on the same topics and answer the
same parameter services, and nothing in ROS refuses it.

``DuplicateNameWatch`` looks at the ROS graph a few seconds after start and then periodically
(on the steady clock, so it also runs under ``use_sim_time`` before any ``/clock``), and logs
one error naming the node, the domain and the fix whenever the count of nodes with its name
goes above one.
"""

from __future__ import annotations

import os

from rclpy.clock import Clock, ClockType
from rclpy.node import Node

CHECK_PERIOD_S = 5.0


class DuplicateNameWatch:
    def __init__(self, node: Node, period_s: float = CHECK_PERIOD_S):
        self._node = node
        self.count = 1  # nodes seen with this full name at the last check
        self._reported = False
        self._timer = node.create_timer(period_s, self.check, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def check(self) -> int:
        node = self._node
        me = (node.get_name(), node.get_namespace())
        self.count = sum(1 for entry in node.get_node_names_and_namespaces() if tuple(entry) == me)
        if self.count > 1 and not self._reported:
            node.get_logger().error(
                f"{self.count} nodes named {node.get_fully_qualified_name()} run on ROS_DOMAIN_ID "
                f"{os.environ.get('ROS_DOMAIN_ID', '0')}: they publish on the same topics. Stop the other graph "
                "(an orphan of a killed run? `ros2 node list`, `ps -ef | grep ivif_ros.nodes`) or start this one "
                "with another namespace (--ns)"
            )
        self._reported = self.count > 1
        return self.count
