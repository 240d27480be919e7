"""The default graph among nodes that run with the middleware's defaults (no FASTDDS_* variable).

A camera driver, rviz2 or ``ros2 topic`` started from a plain shell carries no Fast DDS
setting. Here the graph is started by ``ivif launch`` with its default config (its own Fast
DDS profile is its business), the cameras are a separate best-effort publisher process and
the observer another process, both with no Fast DDS variable at all. Asserted: the observer
discovers the graph's nodes and topics, every image published reaches the fusion node
(nothing lost in transport), every pair is accounted for, and SIGINT stops the graph with
exit code 0 and no C++ ``terminate``. No timing is asserted (figures: bench/graph_latency.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fusion_graph_harness import assert_every_message_accounted, engine_cache  # noqa: F401
from ros_harness import REPO_ROOT, SUPPORT_DIR, process_output, ros_process

pytestmark = pytest.mark.usefixtures("engine_cache")
NS = "/interop"
RATE_HZ, SECONDS = 10.0, 5.0


def default_env(ros_env: dict[str, str]) -> dict[str, str]:
    """The test's domain, logs and PYTHONPATH, without any Fast DDS setting."""
    return {k: v for k, v in ros_env.items() if not k.startswith(("FASTDDS_", "FASTRTPS_", "RMW_FASTRTPS_"))}


def read_json_line(proc: subprocess.Popen, timeout_s: float, what: str) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in process_output(proc).splitlines():
            if line.startswith("{") and what in line:
                return json.loads(line)
        if proc.poll() is not None and time.monotonic() > deadline - timeout_s + 1:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {what!r} line from the observer within {timeout_s:.0f} s:\n{process_output(proc)}")


def test_default_settings_nodes_discover_the_graph_and_lose_no_image(ros_env):
    env = default_env(ros_env)
    launch = ["-m", "ivif_ros.cli", "launch", "--ns", NS, "--param", "diagnostics.period_s=0.5"]
    with (
        ros_process(launch, env, stop_timeout_s=30.0) as graph,
        ros_process([str(SUPPORT_DIR / "interop_observer.py"), NS], env) as observer,
    ):
        found = read_json_line(observer, 60.0, "discovered_after_s")
        cameras = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "bench" / "camera_publisher.py"),
                "--ns",
                NS,
                "--rate",
                str(RATE_HZ),
                "--seconds",
                str(SECONDS),
                "--ir-encoding",
                "mono16",
                "--wait-s",
                "120",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        sent = json.loads(cameras.stdout.strip().splitlines()[-1]) if cameras.stdout.strip() else {}
        assert "pairs_sent" in sent, (
            f"camera publisher failed: {cameras.stdout}\n{cameras.stderr}\n{process_output(graph)[-3000:]}"
        )
        time.sleep(3.0)  # the last frames through the pipeline, then a /diagnostics after them
        assert graph.poll() is None, process_output(graph)
        observer.send_signal(2)
        observer.wait(timeout=20)
        graph.send_signal(2)
        graph_code = graph.wait(timeout=30)
    seen = read_json_line(observer, 5.0, "fused_images")
    d = seen["diagnostics"]
    out = process_output(graph)

    # discovery by a default-settings node: nodes and topics, as ros2 node/topic list would show
    assert {f"{NS}/ivif_fusion", f"{NS}/ivif_overlay"} <= set(found["nodes"])
    assert {f"{NS}/fused/image", f"{NS}/fusion/status"} <= set(found["topics"])
    # nothing lost in transport: every 640x480 image the default publisher sent reached the node
    n = sent["pairs_sent"]
    assert int(d["received ir"]) == n and int(d["received visible"]) == n, d
    # every pair accounted for: fused, or dropped with a reason
    assert_every_message_accounted(d, {"ir": [None] * n, "vis": [None] * n})
    assert int(d["frames fused"]) > 0 and seen["fused_images"] > 0  # the outputs reach the default node too
    assert d["backend choice"].startswith(f"backend '{d['backend']}'")  # the choice and its timings are shown
    # SIGINT: every node stops cleanly
    assert graph_code == 0, out[-3000:]
    assert "terminate called" not in out, out[-3000:]
