"""What an install of ivif_ros may hold: the set both install routes (pip: setup.py's
package_data; colcon: CMakeLists.txt) must produce, and nothing more.

The package carries what the node and the CLI load: the Python sources, the generated
messages, and in ``weights/`` the shipped models with their sidecars, the model card and the
licence notice of third-party weights. ``share/ivif_ros`` carries the launch files, the graph
config, one training config per trainable model, DDS profiles and what ament and rosidl
generate. Experiments (``experiments/``) are never installed.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

MODELS = ("student", "teacher", "detector_coco", "detector")
WEIGHT_FILES = {f"{m}{s}" for m in MODELS for s in (".safetensors", ".json")} | {"MODEL_CARD.md", "__init__.py"}
LICENCE_NOTICE = re.compile(r"licen[cs]e|notice", re.I)
CONFIGS = {"fusion.yaml", "train_student.yaml", "train_teacher.yaml", "train_detector.yaml"}
GENERATED_SHARE_DIRS = {"msg", "cmake", "environment", "hook"}  # rosidl and ament
GENERATED_SHARE_FILE = re.compile(r"^(package|local_setup)\.[a-z0-9]+$")
MAX_WEIGHTS_BYTES = 8 * 1000**2  # 8 MB


def _is_bytecode(path: PurePosixPath) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def unlisted_package_files(files) -> list[str]:
    """Files (relative to the installed ``ivif_ros`` package) outside the allowed set."""
    bad, notices = [], []
    for name in map(PurePosixPath, files):
        if _is_bytecode(name):
            continue
        if name.parts[0] == "weights":
            if len(name.parts) == 2 and name.name in WEIGHT_FILES:
                continue
            if len(name.parts) == 2 and LICENCE_NOTICE.search(name.name):
                notices.append(str(name))
                continue
            bad.append(str(name))
        elif name.suffix == ".py" or name.parts[0] == "msg":
            continue
        elif len(name.parts) == 1 and name.suffix in (".so", ".c") and "rosidl_typesupport" in name.name:
            continue  # rosidl's Python extensions (colcon also installs their C sources)
        else:
            bad.append(str(name))
    return bad + (notices if len(notices) > 1 else [])  # one licence notice at most


def unlisted_share_files(files) -> list[str]:
    """Files (relative to ``share/ivif_ros``) outside the allowed set."""
    bad = []
    for name in map(PurePosixPath, files):
        if _is_bytecode(name):  # pip compiles the launch files it installs
            continue
        elif name.parts[0] == "config" and len(name.parts) == 2 and (name.name in CONFIGS or name.suffix == ".xml"):
            continue
        elif name.parts[0] == "launch" and len(name.parts) == 2 and name.name.endswith(".launch.py"):
            continue
        elif name.parts[0] in GENERATED_SHARE_DIRS and len(name.parts) > 1:
            continue
        elif len(name.parts) == 1 and GENERATED_SHARE_FILE.match(name.name):
            continue
        else:
            bad.append(str(name))
    return bad


def product_files(package_files, share_files) -> set[str]:
    """The hand-made part of an install (sources, weights, configs, launch files), which pip and
    colcon must install alike; generated and compiled files differ between the two routes."""
    package = {
        f"ivif_ros/{p}"
        for p in map(PurePosixPath, package_files)
        if not _is_bytecode(p) and p.parts[0] != "msg" and (p.suffix == ".py" or p.parts[0] == "weights")
    }
    share = {
        f"share/{p}"
        for p in map(PurePosixPath, share_files)
        if not _is_bytecode(p) and p.parts[0] in ("config", "launch")
    }
    return package | share


def weights_bytes(package_dir: Path, package_files) -> int:
    return sum((package_dir / p).stat().st_size for p in package_files if PurePosixPath(p).parts[0] == "weights")


def pip_installed_files(distribution) -> tuple[list[str], list[str], list[str], Path]:
    """(package files, share/ivif_ros files, other files, package dir) of a pip install, from
    its RECORD; other files are relative to the environment prefix."""
    import os
    import sys

    site = Path(distribution.locate_file(""))
    package_dir, share_dir, prefix = site / "ivif_ros", Path(sys.prefix) / "share" / "ivif_ros", Path(sys.prefix)
    package, share, other = [], [], []
    for entry in distribution.files:
        path = Path(os.path.normpath(site / entry))
        if path.is_relative_to(package_dir):
            package.append(path.relative_to(package_dir).as_posix())
        elif path.is_relative_to(share_dir):
            share.append(path.relative_to(share_dir).as_posix())
        else:
            other.append(path.relative_to(prefix).as_posix())
    return package, share, other, package_dir


def tree_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def pip_distribution():
    """The pip-installed ivif_ros of this environment, or None. Looked up in site-packages
    only: the checkout, first on sys.path for the tests, may hold a build's egg-info."""
    import importlib.metadata
    import sysconfig

    found = list(importlib.metadata.distributions(name="ros-ivif-ros", path=[sysconfig.get_paths()["purelib"]]))
    return found[0] if found else None
