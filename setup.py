"""``pip install .``: the ivif_ros package and its messages, no ROS install needed.

The messages are built by the same CMakeLists.txt that ``colcon build`` uses
(rosidl, from the ROS 2 pip wheels listed in requirements-build.txt). This file:

1. runs that CMake project into a staging prefix under ``build/pip`` (command
   ``build_ros_interfaces``, a sub-command of ``build``), with
   ``IVIF_INSTALL_PYTHON_SOURCES=OFF`` because setuptools packages the sources itself;
2. adds the generated ``ivif_ros.msg`` package and its typesupport extensions to the
   wheel's ``ivif_ros`` package (``build_py``);
3. makes the environment an ament prefix (a ``.pth`` file appends it to
   ``AMENT_PREFIX_PATH``), as sourcing ``install/setup.bash`` does for a colcon install;
4. installs the generated C libraries into ``<venv>/lib`` (the directory the ROS wheels
   put on ``LD_LIBRARY_PATH``, where rmw looks them up by name) and the ament index,
   CMake config and share files into ``<venv>/share`` (``install_data``), so that
   ``ament_index_python`` and ``ros2``-style lookups find the package like any other.

Project metadata, dependencies and the ``ivif`` console script are in pyproject.toml.
Incremental: ``build/pip`` is kept between runs, so a rebuild after a Python-only change
costs a few seconds. Delete it to force a clean build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Command, Distribution, find_packages, setup
from setuptools.command.build import build
from setuptools.command.build_py import build_py
from distutils.command.install_data import install_data  # setuptools ships distutils

ROOT = Path(__file__).resolve().parent
PACKAGE = "ivif_ros"
CMAKE_BUILD_DIR = ROOT / "build" / "pip"
STAGE_DIR = CMAKE_BUILD_DIR / "stage"


def ros_prefixes() -> list[str]:
    """Install prefixes that hold ROS packages visible to this interpreter.

    The ROS wheels install CMake and ament-index files under ``<prefix>/share`` of the
    environment they are installed into (the venv, or pip's isolated build env), and
    rosidl only finds its typesupports through ``AMENT_PREFIX_PATH``.
    """
    prefixes: list[str] = []
    for entry in sys.path:
        path = Path(entry)
        if path.name != "site-packages":
            continue
        prefix = path.parents[2]  # <prefix>/lib/pythonX.Y/site-packages
        if (prefix / "share" / "ament_cmake_core").is_dir() and str(prefix) not in prefixes:
            prefixes.append(str(prefix))
    for entry in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if entry and entry not in prefixes:
            prefixes.append(entry)
    if not prefixes:
        sys.exit(
            "setup.py: no ROS 2 CMake packages found (looked for share/ament_cmake_core next to "
            f"every site-packages on sys.path and in AMENT_PREFIX_PATH). Install the build "
            f"requirements first: pip install -r {ROOT / 'requirements-build.txt'}"
        )
    return prefixes


class BuildRosInterfaces(Command):
    """Generate and compile msg/*.msg with CMakeLists.txt into build/pip/stage."""

    description = "build the ROS 2 messages with CMakeLists.txt (rosidl)"
    user_options: list = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        prefixes = ros_prefixes()
        # The cmake wheel next to this interpreter, else the one on PATH.
        cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or shutil.which("cmake")
        if cmake is None:
            sys.exit(f"setup.py: cmake not found; pip install -r {ROOT / 'requirements-build.txt'}")
        # A CMake cache made with another cmake, interpreter or ROS prefixes (e.g. by an
        # isolated build, whose temporary environment is gone) points at paths that no
        # longer exist: start that build over.
        toolchain = "\n".join([cmake, sys.executable, *prefixes])
        toolchain_stamp = CMAKE_BUILD_DIR / "toolchain.txt"
        if CMAKE_BUILD_DIR.exists() and (not toolchain_stamp.exists() or toolchain_stamp.read_text() != toolchain):
            shutil.rmtree(CMAKE_BUILD_DIR)
        CMAKE_BUILD_DIR.mkdir(parents=True, exist_ok=True)
        toolchain_stamp.write_text(toolchain)

        env = dict(os.environ, AMENT_PREFIX_PATH=os.pathsep.join(prefixes))
        configure = [
            cmake,
            "-S",
            str(ROOT),
            "-B",
            str(CMAKE_BUILD_DIR),
            f"-DCMAKE_INSTALL_PREFIX={STAGE_DIR}",
            f"-DCMAKE_PREFIX_PATH={';'.join(prefixes)}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_TESTING=OFF",
            "-DIVIF_INSTALL_PYTHON_SOURCES=OFF",
        ]
        if not (CMAKE_BUILD_DIR / "CMakeCache.txt").exists() and shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        self.spawn_checked(configure, env)
        self.spawn_checked([cmake, "--build", str(CMAKE_BUILD_DIR), "--parallel"], env)
        shutil.rmtree(STAGE_DIR, ignore_errors=True)  # no stale files from removed messages
        self.spawn_checked([cmake, "--install", str(CMAKE_BUILD_DIR)], env)

    @staticmethod
    def spawn_checked(cmd: list[str], env: dict[str, str]) -> None:
        try:
            subprocess.run(cmd, check=True, env=env)
        except subprocess.CalledProcessError as exc:
            sys.exit(
                f"setup.py: `{' '.join(cmd)}` failed with exit code {exc.returncode}; "
                f"see the CMake output above (build dir {CMAKE_BUILD_DIR})."
            )


def staged_site_packages() -> Path:
    matches = sorted(STAGE_DIR.glob(f"lib/python3*/site-packages/{PACKAGE}"))
    if len(matches) != 1:
        sys.exit(
            f"setup.py: expected one generated {PACKAGE} Python package under {STAGE_DIR}, "
            f"found {len(matches)}; delete {CMAKE_BUILD_DIR} and build again."
        )
    return matches[0]


# Installed as a .pth file: Python runs it at every start of this environment. ROS finds
# packages (ament_index_python.get_package_share_directory, rosidl typesupports) only
# through AMENT_PREFIX_PATH, which `source install/setup.bash` sets in a ROS install; here
# the environment prefix is the ament prefix, so it is appended when missing.
AMENT_PREFIX_PTH = (
    "import os, sys; _p = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]; "
    "sys.prefix in _p or os.environ.__setitem__('AMENT_PREFIX_PATH', os.pathsep.join(_p + [sys.prefix]))\n"
)


class BuildPyWithMessages(build_py):
    """Add the generated ``ivif_ros.msg`` and typesupport modules to the hand-written package,
    and the ament-prefix ``.pth`` file to the site-packages root."""

    def run(self) -> None:
        super().run()
        (Path(self.build_lib) / "ivif_ros_ament_prefix.pth").write_text(AMENT_PREFIX_PTH)
        generated = staged_site_packages()
        target = Path(self.build_lib) / PACKAGE
        for source in generated.rglob("*"):
            relative = source.relative_to(generated)
            # Keep the hand-written __init__.py; skip C sources and bytecode.
            if source.is_dir() or relative == Path("__init__.py") or source.suffix in {".c", ".pyc"}:
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


class InstallDataWithInterfaces(install_data):
    """Install the generated libraries, headers and share files into the environment prefix."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.data_files = list(self.data_files or [])
        staged = [p for p in STAGE_DIR.rglob("*") if p.is_file()]
        for path in staged:
            relative = path.relative_to(STAGE_DIR)
            top = relative.parts[0]
            # lib/: the C libraries and the lib/ivif_ros launchers (`ros2 run`, launch_ros'
            # Node(executable=...)); lib/python3.X is the Python package (build_py).
            launcher = relative.parts[:2] == ("lib", PACKAGE) and len(relative.parts) == 3
            if top == "lib" and not launcher and (len(relative.parts) != 2 or path.suffix != ".so"):
                continue
            if top not in {"lib", "include", "share"} or relative == Path("share", PACKAGE, "package.xml"):
                continue
            self.data_files.append((str(relative.parent), [str(path)]))


class BuildMessagesFirst(build):
    sub_commands = [("build_ros_interfaces", None)] + build.sub_commands


class BinaryDistribution(Distribution):
    """The wheel carries compiled typesupport libraries: tag it for this platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    distclass=BinaryDistribution,
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    # The shipped models with their sidecars, the model card and the licence notice of
    # third-party weights (weights/ only, no subfolders): the set CMakeLists.txt installs.
    package_data={
        PACKAGE: [
            "weights/*.safetensors",
            "weights/*.json",
            "weights/MODEL_CARD.md",
            "weights/*[Ll][Ii][Cc][Ee][Nn][CcSs][Ee]*",
            "weights/*[Nn][Oo][Tt][Ii][Cc][Ee]*",
        ]
    },
    # package.xml is listed as ament_python packages list it (and it makes setuptools run
    # install_data); everything else the CMake install produced, launch/ and config/
    # included, is added by InstallDataWithInterfaces.
    data_files=[(f"share/{PACKAGE}", ["package.xml"])],
    cmdclass={
        "build": BuildMessagesFirst,
        "build_ros_interfaces": BuildRosInterfaces,
        "build_py": BuildPyWithMessages,
        "install_data": InstallDataWithInterfaces,
    },
)
