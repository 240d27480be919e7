"""A short soak of the fusion node (bench/soak.py): memory stays flat, queues stay bounded,
every message and pair is accounted for.

1,000 frames of the synthetic sample at 128x96 through the real node over DDS (ONNX
Runtime, one thread), in a separate process so that its RSS is the node's alone. The full
run is ``python bench/soak.py --frames 10000`` (figures in the reliability report).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ros_harness import REPO_ROOT

pytestmark = pytest.mark.reliability

FRAMES = 1000


def test_soak_memory_queues_and_accounting(ros_env, tmp_path):
    env = {**ros_env, "IVIF_ROS_CACHE_DIR": str(tmp_path / "engine_cache")}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "soak.py"),
            "--frames",
            str(FRAMES),
            "--json",
            "--out",
            str(tmp_path / "soak"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = {
        k: result[k]
        for k in ("rss_warm_mb", "rss_end_mb", "rss_growth_pct", "rss_slope_mb_per_1000", "max_pending", "counters")
    }
    assert result["rss_growth_pct"] < 5.0, summary
    assert max(result["max_pending"].values()) <= 2, summary  # a first image waiting for its partner
    assert all(result["accounting"].values()), result["accounting"]
    c = result["counters"]
    assert c["received ir"] == c["received visible"] == FRAMES
    # paced one pair at a time: every pair is matched on its second image, and nearly all are fused
    assert c["pairs matched"] == FRAMES, c
    assert c["frames fused"] + c.get("dropped fused: pipeline_busy", 0) == c["pairs matched"]
    assert c["frames fused"] >= 0.99 * c["pairs matched"], c
    assert result["ok"] and proc.returncode == 0
    assert (tmp_path / "soak" / "soak.png").stat().st_size > 10_000
    print(
        f"soak {FRAMES}: RSS {result['rss_warm_mb']:.1f} -> {result['rss_end_mb']:.1f} MB "
        f"({result['rss_growth_pct']:+.2f} %), {result['frames'] / result['seconds']:.0f} frames/s"
    )
