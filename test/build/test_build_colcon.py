"""The ROS install path: ``colcon build`` of this checkout gives a working install tree.

Builds the package as a ROS workspace would (ament_cmake, rosidl, install of the Python
package), then imports it in a fresh process that sees only the install tree and the ROS
runtime, as after ``source install/setup.bash``. About 20 s; select with ``-m colcon``,
skip with ``-m 'not colcon'``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import install_set
from fusion_graph_harness import student_weights  # noqa: F401  (fixture)
from process_table import command_line
from ros_harness import REPO_ROOT

pytestmark = pytest.mark.colcon

# Run inside the install-tree environment: where every part was loaded from.
PROBE = textwrap.dedent("""
    import json, sys
    import ivif_ros, ivif_ros.cli, ivif_ros.msg
    from ivif_ros.msg import FusionStatus
    from rclpy.serialization import deserialize_message, serialize_message
    from ament_index_python.packages import get_package_share_directory

    status = deserialize_message(serialize_message(FusionStatus(mode="fused", infer_ms=1.5)), FusionStatus)
    with open("/proc/self/maps") as maps:
        typesupport = sorted({line.split()[-1] for line in maps if "libivif_ros__rosidl_typesupport" in line})
    json.dump({
        "package": ivif_ros.__file__, "cli": ivif_ros.cli.__file__, "msg": ivif_ros.msg.__file__,
        "share": get_package_share_directory("ivif_ros"), "typesupport_libs": typesupport,
        "round_trip": [status.mode, status.infer_ms],
    }, sys.stdout)
""")


def prepend_paths(first: list[str], variable: str) -> str:
    """``first`` followed by the current value of the path list ``variable``, without repeats."""
    rest = filter(None, os.environ.get(variable, "").split(os.pathsep))
    return os.pathsep.join(dict.fromkeys([*first, *rest]))


def colcon_env() -> dict[str, str]:
    """colcon finds rosidl and the typesupports through AMENT_PREFIX_PATH (the venv)."""
    return dict(os.environ, AMENT_PREFIX_PATH=prepend_paths([sys.prefix], "AMENT_PREFIX_PATH"),
                PATH=prepend_paths([str(Path(sys.executable).parent)], "PATH"))


def install_tree_env(install: Path) -> dict[str, str]:
    """What ``source install/setup.bash`` sets for this package, with the venv's ROS as underlay.

    LD_LIBRARY_PATH is set here, in order: the install tree first, then the ROS wheels'
    own library dirs. The wheels' bootstrap, which would re-exec Python with those dirs in
    set (random) order, is marked done, so that the install tree's libraries come before
    any copy that ``pip install .`` put in the venv.
    """
    try:
        from ros_wheels_bootstrapper import get_ros_paths
    except ImportError:  # ROS from a system install: its setup.bash already set the path
        def get_ros_paths() -> str:
            return os.environ.get("LD_LIBRARY_PATH", "")

    prefix = install / "ivif_ros"
    site = next(prefix.glob("lib/python3*/site-packages"))
    env = dict(os.environ)
    env.update(
        AMENT_PREFIX_PATH=prepend_paths([str(prefix), sys.prefix], "AMENT_PREFIX_PATH"),
        PYTHONPATH=prepend_paths([str(site)], "PYTHONPATH"),
        LD_LIBRARY_PATH=os.pathsep.join([str(prefix / "lib"), get_ros_paths()]),
        _ROS_WHEELS_BOOTSTRAP_COMPLETE="1",
        PATH=prepend_paths([str(prefix / "bin")], "PATH"),
    )
    return env


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which("colcon")
    if colcon is None:
        pytest.fail("colcon not found: install requirements-build.txt (./scripts/setup.sh does)")
    work = tmp_path_factory.mktemp("colcon")
    cmd = [colcon, "--log-base", str(work / "log"), "build",
           "--base-paths", str(REPO_ROOT),
           "--build-base", str(work / "build"), "--install-base", str(work / "install"),
           "--event-handlers", "console_direct-",
           "--cmake-args", "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={sys.executable}"]
    result = subprocess.run(cmd, cwd=work, env=colcon_env(), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=600)
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout}\n{result.stderr}"
    return work / "install"


def test_install_tree_provides_messages_cli_and_share(colcon_install):
    prefix = colcon_install / "ivif_ros"
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=colcon_install,
                           env=install_tree_env(colcon_install), capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)

    for module in ("package", "cli", "msg"):
        assert Path(found[module]).is_relative_to(prefix), f"{module} imported from {found[module]}"
    assert Path(found["share"]) == prefix / "share" / "ivif_ros"
    assert found["typesupport_libs"], "no ivif_ros typesupport library was loaded"
    assert all(Path(lib).is_relative_to(prefix) for lib in found["typesupport_libs"]), found["typesupport_libs"]
    assert found["round_trip"] == ["fused", 1.5]
    assert (prefix / "share" / "ivif_ros" / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "ivif_ros").is_file()


def test_install_tree_has_the_ivif_command(colcon_install):
    prefix = colcon_install / "ivif_ros"
    for script in (prefix / "bin" / "ivif", prefix / "lib" / "ivif_ros" / "ivif"):  # PATH, ros2 run
        result = subprocess.run([str(script), "--help"], env=install_tree_env(colcon_install),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{script} --help failed:\n{result.stderr}"
        assert "usage: ivif" in result.stdout


def test_install_tree_node_executables_resolve(colcon_install):
    """Every launcher in lib/ivif_ros (what launch_ros runs) names a function that exists."""
    launchers = sorted((colcon_install / "ivif_ros" / "lib" / "ivif_ros").iterdir())
    assert {"fusion_node", "overlay_node", "fusion_graph", "ivif"} <= {p.name for p in launchers}
    targets = []
    for launcher in launchers:
        assert os.access(launcher, os.X_OK), f"{launcher} is not executable"
        module, function = re.search(r"^from (\S+) import (\S+)$", launcher.read_text(), re.M).groups()
        targets.append((module, function))
    check = "import importlib, sys\n" + "\n".join(
        f"assert callable(getattr(importlib.import_module({m!r}), {f!r}))" for m, f in targets)
    result = subprocess.run([sys.executable, "-c", check], cwd=colcon_install,
                            env=install_tree_env(colcon_install), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_install_tree_holds_the_pip_install_set_and_nothing_unlisted(colcon_install):
    """colcon installs the same sources, weights, configs and launch files as pip, nothing
    outside the install set (test/support/install_set.py), and no second copy of the weights."""
    prefix = colcon_install / "ivif_ros"
    package_dir = next(prefix.glob("lib/python3*/site-packages/ivif_ros"))
    package = install_set.tree_files(package_dir)
    share = install_set.tree_files(prefix / "share" / "ivif_ros")
    assert install_set.unlisted_package_files(package) == []
    assert install_set.unlisted_share_files(share) == []
    size = install_set.weights_bytes(package_dir, package)
    print(f"colcon install: {size / 1e6:.2f} MB of weights in {package_dir}")
    assert size <= install_set.MAX_WEIGHTS_BYTES, f"{size / 1e6:.1f} MB of installed weights (at most 8 MB)"
    distribution = install_set.pip_distribution()
    if distribution is None:
        pytest.skip("ivif_ros is not pip-installed here: nothing to compare with")
    pip_package, pip_share, _, _ = install_set.pip_installed_files(distribution)
    colcon_set = install_set.product_files(package, share)
    pip_set = install_set.product_files(pip_package, pip_share)
    assert colcon_set == pip_set, (f"only colcon: {sorted(colcon_set - pip_set)}; only pip: {sorted(pip_set - colcon_set)} "
                                   "(a stale pip install? run ./scripts/setup.sh)")


@pytest.mark.ros_extras
def test_ros2_run_starts_the_node_from_the_install_tree(colcon_install, ros_env, student_weights, tmp_path):
    """`ros2 run ivif_ros fusion_node` after `source install/setup.bash`: the install tree's launcher
    starts the node, which comes up and stops cleanly on Ctrl-C (SIGINT to its process group)."""
    import signal
    import time

    ros2 = shutil.which("ros2", path=str(Path(sys.executable).parent))
    if ros2 is None:
        pytest.skip("the ros2 command (ros2cli: not on PyPI) is not installed; a ROS 2 install has it, "
                    "CI's second pass installs it from ../shared/ros-extras")
    launcher = colcon_install / "ivif_ros" / "lib" / "ivif_ros" / "fusion_node"
    cmd = [ros2, "run", "ivif_ros", "fusion_node", "--ros-args", "-r", f"__ns:=/colcon_{os.getpid()}",
           "-p", f"pipeline.model:={student_weights}", "-p", "engine.backend:=torch", "-p", "engine.threads:=1"]
    log = tmp_path / "ros2_run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=install_tree_env(colcon_install), cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "fusion node ready" not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the node did not come up:\n{log.read_text()}"
            time.sleep(0.2)
        commands = _group_commands(proc.pid)
        assert any(str(launcher) in c for c in commands), commands
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _group_commands(pgid: int) -> list[str]:
    """Command lines of the processes in process group ``pgid``."""
    commands = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == pgid:
                commands.append(command_line(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue
    return commands
