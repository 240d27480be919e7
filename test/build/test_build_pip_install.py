"""The pip route (./scripts/setup.sh -> pip install . -> setup.py -> CMakeLists.txt).

Checks the environment this test runs in, as a user would meet it: a fresh process with no
ROS variables, started outside the checkout, finds the package, its share files, the
generated message libraries and the ``ivif`` command.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import install_set
from ros_harness import REPO_ROOT

DISTRIBUTION = install_set.pip_distribution()

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


def test_installed_package_carries_the_weights_and_nothing_unlisted():
    """The RECORD of the pip install: the shipped weights are package data, next to
    ivif_ros/weights/__init__.py where the loader finds them, and nothing outside the install
    set (test/support/install_set.py) ships: no experiment weights, no second copy under share/."""
    package, share, other, package_dir = install_set.pip_installed_files(DISTRIBUTION)
    source = REPO_ROOT / "ivif_ros" / "weights"
    shipped = [f"weights/{p.name}" for p in source.iterdir() if p.is_file() and p.suffix in {".safetensors", ".json"}]
    missing = sorted(set(shipped) - set(package))
    assert "weights/LICENSE.fastestdet.md" in package, "the FastestDet licence notice is not installed"
    assert not missing, f"not installed: {missing}; run ./scripts/setup.sh"
    assert install_set.unlisted_package_files(package) == [], "the wheel ships files outside the install set"
    assert install_set.unlisted_share_files(share) == [], "share/ivif_ros holds files outside the install set"
    outside = [p for p in other if not re.match(
        r"^(bin/ivif|lib/ivif_ros/(fusion_node|overlay_node|fusion_graph|ivif)|lib/libivif_ros__rosidl_\w+\.so|include/ivif_ros/.+|share/ament_index/resource_index/\w+/ivif_ros"
        r"|lib/python3\.\d+/site-packages/(ros_ivif_ros-[^/]+\.dist-info/.+|ivif_ros_ament_prefix\.pth))$", p)]
    assert outside == []
    size = install_set.weights_bytes(package_dir, package)
    print(f"pip install: {size / 1e6:.2f} MB of weights in {package_dir}")
    assert size <= install_set.MAX_WEIGHTS_BYTES, f"{size / 1e6:.1f} MB of installed weights (at most 8 MB)"


def test_pip_install_has_the_node_launchers_ros2_run_uses(tmp_path):
    """lib/ivif_ros/<executable> in the environment prefix, where `ros2 run` and launch_ros'
    Node(package='ivif_ros', executable=...) look; each runs this interpreter and names a
    function that exists."""
    libexec = Path(sys.prefix) / "lib" / "ivif_ros"
    launchers = sorted(libexec.iterdir()) if libexec.is_dir() else []
    assert {"fusion_node", "overlay_node", "fusion_graph", "ivif"} <= {p.name for p in launchers}, (
        f"{libexec}: {launchers}; run ./scripts/setup.sh")
    for launcher in launchers:
        assert os.access(launcher, os.X_OK), f"{launcher} is not executable"
        assert launcher.read_text().splitlines()[0] == f"#!{sys.executable}", launcher
    result = subprocess.run([str(libexec / "ivif"), "--help"], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: ivif" in result.stdout, result.stderr
    check = "\n".join(
        f"from {module} import {function}; assert callable({function})"
        for module, function in (re.search(r"^from (\S+) import (\S+)$", p.read_text(), re.M).groups()
                                 for p in launchers))
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
