"""package.xml is a valid ROS manifest that declares what the code uses, and versions agree."""
from __future__ import annotations

import re
import tomllib

from catkin_pkg.package import parse_package

import ivif_ros
from ros_harness import REPO_ROOT

# Python modules that come from ROS packages of the same name (besides <pkg>.msg imports).
ROS_PYTHON_PACKAGES = {"rclpy", "message_filters", "launch", "launch_ros", "ament_index_python", "cv_bridge"}
IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)(\.msg)?\b", re.M)


def manifest():
    package = parse_package(str(REPO_ROOT))
    package.validate()  # raises InvalidPackage with the reason
    return package


def declared_dependencies(package) -> set[str]:
    groups = (package.build_depends, package.buildtool_depends, package.exec_depends,
              package.build_export_depends)
    return {dep.name for group in groups for dep in group}


def test_manifest_is_format_3_ament_cmake_interface_package():
    package = manifest()
    assert package.name == "ivif_ros"
    assert package.package_format == 3
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in {group.name for group in package.member_of_groups}
    deps = declared_dependencies(package)
    assert {"rosidl_default_generators", "rosidl_default_runtime", "python3-numpy", "python3-opencv",
            "python3-torch"} <= deps


def test_manifest_declares_every_ros_package_the_code_imports():
    imported = set()
    for path in (REPO_ROOT / "ivif_ros").rglob("*.py"):
        for module, is_msg in IMPORT.findall(path.read_text()):
            if is_msg and module != "ivif_ros" or module in ROS_PYTHON_PACKAGES:
                imported.add(module)
    missing = imported - declared_dependencies(manifest())
    assert not missing, f"ivif_ros imports ROS packages that package.xml does not declare: {sorted(missing)}"


def test_versions_agree():
    version = manifest().version
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == version, "pyproject.toml and package.xml versions differ"
    assert ivif_ros.__version__ == version, "ivif_ros.__version__ and package.xml version differ"
