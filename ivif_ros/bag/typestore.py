"""rosbags typestores with the ROS 2 distro's standard messages plus ``ivif_ros/msg/*``.

The ivif_ros message types are read from the package's own ``msg/*.msg`` files (the
same files the ROS build generates its classes from), so bags written here carry the
exact definitions the nodes publish, and any new ``.msg`` file is picked up without
code changes.
"""

from __future__ import annotations

import os
from pathlib import Path

from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ivif_ros.errors import ConfigError, InputError

PACKAGE = "ivif_ros"

DISTROS = {
    "humble": Stores.ROS2_HUMBLE,
    "jazzy": Stores.ROS2_JAZZY,
    "kilted": Stores.ROS2_KILTED,
}
DEFAULT_DISTRO = "kilted"  # the rclpy wheels this project runs on


def find_msg_dir() -> Path | None:
    """Locate ivif_ros's ``msg/`` folder: the source tree first, then installed ``share/``."""
    candidates = [Path(__file__).resolve().parents[2] / "msg"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / PACKAGE / "msg")
    return next((c for c in candidates if any(c.glob("*.msg"))), None)


def package_msg_types(msg_dir: Path | None = None) -> dict:
    """Parse every ``msg/*.msg`` of ivif_ros into a rosbags types dict."""
    msg_dir = msg_dir or find_msg_dir()
    if msg_dir is None:
        return {}
    types: dict = {}
    for path in sorted(msg_dir.glob("*.msg")):
        try:
            types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
        except TypesysError as exc:
            raise InputError(f"{path}: not a valid ROS message definition: {exc}") from None
    return types


def make_typestore(distro: str = DEFAULT_DISTRO, *, with_package_types: bool = True) -> Typestore:
    """A fresh typestore for ``distro`` (humble, jazzy or kilted) with ivif_ros types registered."""
    try:
        store = get_typestore(DISTROS[distro])
    except KeyError:
        raise ConfigError(f"unknown ROS distro {distro!r}; use one of {', '.join(DISTROS)}") from None
    if with_package_types:
        store.register(package_msg_types())
    return store


def require_type(store: Typestore, msgtype: str) -> None:
    """Fail with an explanation when ``msgtype`` is not in ``store``."""
    if msgtype not in store.types:
        hint = (
            f"the {PACKAGE} msg/ folder was not found (looked in the source tree and AMENT_PREFIX_PATH)"
            if msgtype.startswith(f"{PACKAGE}/")
            else "check the spelling (package/msg/Name)"
        )
        raise InputError(f"message type {msgtype} is unknown to the typestore: {hint}")
