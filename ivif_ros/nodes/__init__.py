"""Thin rclpy nodes of the fusion graph (see docs/nodes.md).

``fusion_node``   IR + visible in; fused image, semantic mask, detections, status, diagnostics out
``overlay_node``  fused image + mask + detections in; semantic/color and detections/image out
``graph``         both nodes in one process; ``spin_nodes`` runs any set of nodes until SIGINT/SIGTERM
``launcher``      the process plan behind ``ivif launch`` (no rclpy import)
``params``        parameters declared from ``core.config`` with descriptors, validated at set time
``messages``      message <-> array/record translation and QoS profiles
``diagnostics``   rate, per-stage latency and drop counters for /diagnostics
"""
