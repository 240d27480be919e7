"""The fusion node and a probe node in one executor, for the reliability tests.

Inputs are subscribed with reliable QoS: these tests count exactly what the node must
account for, so DDS may not drop anything on the way (the transport itself is tested in
test_nodes_processes and the live replay).
"""

from __future__ import annotations

import time

import pytest
from rclpy.parameter import Parameter

from fusion_graph_harness import Probe, SpunNodes, graph_params, output_topics
from fusion_graph_harness import settle as harness_settle


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.fixture
def fusion_graph(rclpy_context, student_weights):
    """``start(**params)`` -> ``(fusion node, probe, probe node, executor thread)``; torn down after the test."""
    import rclpy
    import torch

    from ivif_ros.nodes.fusion_node import FusionNode

    torch.set_num_threads(1)
    made = {}

    def start(**overrides):
        params = {
            **graph_params(student_weights),
            "diagnostics.period_s": 0.25,
            "qos.input_reliability": "reliable",
            "qos.input_depth": 1000,
            **overrides,
        }
        fusion = FusionNode(
            context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
        probe_node = rclpy.create_node("reliability_probe", context=rclpy_context)
        probe = Probe(probe_node, output_topics())
        made["spun"] = SpunNodes(rclpy_context, fusion, probe_node)
        return fusion, probe, probe_node, made["spun"].thread

    yield start
    if made:
        made["spun"].close()


def wait_for_subscribers(publishers, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(p.get_subscription_count() for p in publishers):
        assert time.monotonic() < deadline, "the fusion node did not subscribe in time"
        time.sleep(0.05)


def settle(probe, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
    """``fusion_graph_harness.settle`` on fusion/status, with the longer wait of the reliability runs."""
    harness_settle(probe, "fusion/status", quiet_s, timeout_s)
