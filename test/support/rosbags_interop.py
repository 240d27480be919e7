"""Reading a bag as a user with plain ``rosbags`` would: a distro typestore, nothing of ivif_ros."""

from __future__ import annotations

from pathlib import Path

DISTROS = ("humble", "jazzy", "kilted")


def read_every_message(bag: Path, distro: str) -> dict[str, int]:
    """Deserialize every message of ``bag`` with rosbags' AnyReader and the stock typestore of
    ``distro`` (ivif_ros types are not registered: the bag's own definitions must suffice);
    return the message count per topic."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(
        {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY, "kilted": Stores.ROS2_KILTED}[distro]
    )
    counts: dict[str, int] = {}
    with AnyReader([Path(bag)], default_typestore=store) as reader:
        for connection, _, raw in reader.messages():
            reader.deserialize(raw, connection.msgtype)
            counts[connection.topic] = counts.get(connection.topic, 0) + 1
    return counts
