"""Cost of building a 640x480 rgb8 Image message with glibc's default heap settings and with
``ivif_ros.core.heap.retain_freed_buffers`` (each in a fresh process, best of three medians).

    python experiments/heap_probe.py
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
if sys.argv[1] == "retain":
    from ivif_ros.core.heap import retain_freed_buffers
    assert retain_freed_buffers()
from std_msgs.msg import Header
from ivif_ros.nodes.messages import image_msg
rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
mono = rgb[:, :, 0].copy()
times = []
for _ in range(200):
    t = time.perf_counter()
    image_msg(rgb, "rgb8", Header()), image_msg(mono, "mono8", Header())
    times.append((time.perf_counter() - t) * 1e3)
print(json.dumps(float(np.median(times[20:]))))
"""


def median_ms(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = {mode: min(median_ms(mode) for _ in range(3)) for mode in ("default", "retain")}
    print("| heap | fused rgb8 + mask mono8 messages built, ms (median) |\n|---|---:|")
    for mode, ms in rows.items():
        print(f"| {mode} | {ms:.3f} |")
    print(f"ratio default / retain: {rows['default'] / rows['retain']:.1f}x")


if __name__ == "__main__":
    main()
