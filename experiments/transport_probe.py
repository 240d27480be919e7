"""How many camera images reach a subscriber, by the subscriber's Fast DDS settings.

The publisher is ``bench/camera_publisher.py`` in an environment without any FASTDDS_* /
FASTRTPS_* variable (a camera driver from a plain shell). The subscriber, a second process,
counts the images it receives per camera with sensor-data QoS; it runs with

  default        no settings either
  profile        FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_profile.xml (what the graph uses)
  shm_announced  the same without its UDP-only locator list (experiments/fastdds_profiles/)
  udp_only       UDPv4 only with 4 MB socket buffers (experiments/fastdds_profiles/)
  large          FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA (the old setting: never discovered)

With ``--reverse`` the setting applies to the publisher and the subscriber has none (the
graph's outputs reaching rviz2). One JSON line per setting.

    python experiments/transport_probe.py --rate 30 --seconds 8 [--reverse]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "config" / "fastdds_profile.xml"
VARIANTS = REPO / "experiments" / "fastdds_profiles"
SETTINGS = {
    "default": {},
    "profile": {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)},
    "shm_announced": {"FASTDDS_DEFAULT_PROFILES_FILE": str(VARIANTS / "shm_announced.xml")},
    "udp_only": {"FASTDDS_DEFAULT_PROFILES_FILE": str(VARIANTS / "udp_only.xml")},
    "large": {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
}

SUBSCRIBER = r"""
import json, sys, time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
ns, seconds = sys.argv[1], float(sys.argv[2])
rclpy.init()
node = rclpy.create_node("probe_subscriber")
got = {"ir": 0, "visible": 0}
bad = {"ir": 0, "visible": 0}
def cb(cam):
    def f(m):
        got[cam] += 1
        if len(m.data) != m.step * m.height:
            bad[cam] += 1
    return f
subs = [node.create_subscription(Image, f"{ns}/{c}/image_raw", cb(c), qos_profile_sensor_data) for c in got]
end = time.monotonic() + seconds
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps({"received": got, "truncated": bad}), flush=True)
"""


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_", "RMW_FASTRTPS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def run(setting: str, args) -> dict:
    domain = str(random.randint(1, 200))
    ns = f"/probe_{setting}"
    sub_env = {**clean_env(), **SETTINGS[setting], "ROS_DOMAIN_ID": domain}
    pub_env = {**clean_env(), "ROS_DOMAIN_ID": domain}
    if args.reverse:  # the setting on the publisher (the graph's outputs to a default subscriber)
        sub_env, pub_env = pub_env, sub_env
    sub = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, ns, str(args.seconds + 25)], env=sub_env, stdout=subprocess.PIPE, text=True
    )
    pub = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "camera_publisher.py"),
            "--ns",
            ns,
            "--rate",
            str(args.rate),
            "--seconds",
            str(args.seconds),
            "--ir-encoding",
            args.ir_encoding,
            "--wait-s",
            "20",
        ],
        env=pub_env,
        capture_output=True,
        text=True,
    )
    sent = json.loads(pub.stdout.strip().splitlines()[-1]) if pub.stdout.strip() else {"error": pub.stderr[-500:]}
    time.sleep(1.0)
    sub.terminate()
    out, _ = sub.communicate(timeout=30)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    received = json.loads(lines[-1]) if lines else {}
    return {
        "setting": setting,
        "side": "publisher" if args.reverse else "subscriber",
        "rate_hz": args.rate,
        "ir_encoding": args.ir_encoding,
        "sent": sent.get("sent", sent.get("error")),
        **received,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ir-encoding", choices=("mono8", "mono16"), default="mono8")
    parser.add_argument("--reverse", action="store_true", help="apply the setting to the publisher instead")
    args = parser.parse_args()
    for setting in args.settings:
        print(json.dumps(run(setting, args)), flush=True)


if __name__ == "__main__":
    main()
