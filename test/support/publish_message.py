"""Publish one message, given as JSON, over and over (a stand-in for ``ros2 topic pub``).

``ros2cli`` is not available from pip, so tests start this script in a separate process
to put real messages on the wire::

    python test/support/publish_message.py ivif_ros/msg/DetectionArray /detections \
        '{"header": {"frame_id": "cam"}, "detections": [{"class_id": 2, "score": 0.5}]}'

Nested messages are JSON objects, sequences of messages are lists of objects. The
message is published every ``--period-s`` until the process gets SIGINT.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re

import rclpy
from rclpy.executors import ExternalShutdownException

SEQUENCE_OF_MESSAGES = re.compile(r"^sequence<(\w+)/(\w+)(?:, \d+)?>$")


def message_class(type_name: str):
    """``pkg/msg/Name`` or ``pkg/Name`` -> the generated Python class."""
    parts = type_name.split("/")
    package, name = parts[0], parts[-1]
    return getattr(importlib.import_module(f"{package}.msg"), name)


def build_message(cls, fields: dict):
    msg = cls()
    types = cls.get_fields_and_field_types()
    for name, value in fields.items():
        if name not in types:
            raise SystemExit(f"publish_message.py: {cls.__name__} has no field {name!r}; fields are {sorted(types)}")
        field_type = types[name]
        if isinstance(value, dict):
            value = build_message(type(getattr(msg, name)), value)
        elif isinstance(value, list) and (match := SEQUENCE_OF_MESSAGES.match(field_type)):
            element_cls = message_class("/".join(match.groups()))
            value = [build_message(element_cls, item) for item in value]
        setattr(msg, name, value)
    return msg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("type", help="message type, e.g. ivif_ros/msg/FusionStatus")
    parser.add_argument("topic")
    parser.add_argument("fields", help="field values as a JSON object")
    parser.add_argument("--period-s", type=float, default=0.05)
    args = parser.parse_args()

    cls = message_class(args.type)
    msg = build_message(cls, json.loads(args.fields))
    rclpy.init()
    node = rclpy.create_node("publish_message")
    publisher = node.create_publisher(cls, args.topic, 10)
    node.create_timer(args.period_s, lambda: publisher.publish(msg))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
