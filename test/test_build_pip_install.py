"""The pip route (./scripts/setup.sh -> pip install . -> setup.py -> CMakeLists.txt).

Checks the environment this test runs in, as a user would meet it: a fresh process with no
ROS variables, started outside the checkout, finds the package, its share files, the
generated message libraries and the ``ivif`` command.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ros_harness import REPO_ROOT

try:
    DISTRIBUTION = importlib.metadata.distribution("ros-ivif-ros")
except importlib.metadata.PackageNotFoundError:
    DISTRIBUTION = None

pytestmark = pytest.mark.skipif(
    DISTRIBUTION is None, reason="ivif_ros is not pip-installed here (./scripts/setup.sh installs it)")

PROBE = textwrap.dedent("""
    import json, os
    import ivif_ros.msg
    from ivif_ros.msg import DetectionArray, Detection
    from rclpy.serialization import deserialize_message, serialize_message
    from ament_index_python.packages import get_package_share_directory

    msg = DetectionArray(detections=[Detection(class_name="person", x_max=4.0)])
    back = deserialize_message(serialize_message(msg), DetectionArray)
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "libivif_ros__rosidl" in line})
    print(json.dumps({"msg": ivif_ros.msg.__file__, "share": get_package_share_directory("ivif_ros"),
                      "libs": libs, "round_trip": [back.detections[0].class_name, back.detections[0].x_max]}))
""")


def clean_env() -> dict[str, str]:
    """The environment of a new shell: no ROS variables, no bootstrap done, no PYTHONPATH."""
    drop = {"AMENT_PREFIX_PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE",
            "ROS_DOMAIN_ID", "FASTDDS_BUILTIN_TRANSPORTS"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_installed_package_works_without_any_ros_environment(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    prefix = Path(sys.prefix)
    assert Path(found["msg"]).is_relative_to(prefix), found["msg"]
    assert Path(found["share"]) == prefix / "share" / "ivif_ros"
    assert found["libs"] and all(Path(lib).parent == prefix / "lib" for lib in found["libs"]), found["libs"]
    assert found["round_trip"] == ["person", 4.0]


def test_installed_share_holds_manifest_and_messages():
    share = Path(sys.prefix) / "share" / "ivif_ros"
    assert (share / "package.xml").read_text() == (REPO_ROOT / "package.xml").read_text(), (
        "installed package.xml is out of date: run ./scripts/setup.sh")
    assert sorted(p.name for p in (share / "msg").glob("*.msg")) == sorted(
        p.name for p in (REPO_ROOT / "msg").glob("*.msg"))


def test_ivif_console_script(tmp_path):
    script = Path(sys.prefix) / "bin" / "ivif"
    result = subprocess.run([str(script), "--help"], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: ivif" in result.stdout


def test_installed_package_carries_the_weights():
    """Weights are package data: the model loader finds them next to ivif_ros/weights/__init__.py,
    with the licence notices of the checkpoints they derive from."""
    installed = Path(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                     "site-packages", "ivif_ros", "weights")
    source = REPO_ROOT / "ivif_ros" / "weights"
    shipped = sorted(p.relative_to(source) for p in source.rglob("*")
                     if p.suffix in {".safetensors", ".json", ".jsonl"} or p.name.startswith("LICENSE."))
    assert any(p.name == "LICENSE.fastestdet.md" for p in shipped)
    missing = [str(p) for p in shipped if not (installed / p).is_file()]
    assert not missing, f"not installed: {missing}; run ./scripts/setup.sh"
