"""ros2 launch ivif_ros fusion.launch.py [namespace:=car1] [ir_topic:=/thermal/image_raw] ...

The fusion graph of config/fusion.yaml: the fusion node and the overlay node, one
process each (``graph.mode: multi_process``) or both in one process (``single_process``).
``ivif launch`` starts the same graph without launch_ros.

launch and launch_ros are imported inside ``generate_launch_description`` so this file
can be imported (and checked) where they are not installed, e.g. a pip-only ROS.
"""
import sys
from pathlib import Path

ARGUMENTS = {
    # name: (default, description)
    "config": ("", "ROS 2 parameters file (default: config/fusion.yaml of the package)"),
    "namespace": ("", "namespace of the nodes and their relative topics"),
    "ir_topic": ("ir/image_raw", "IR image topic"),
    "visible_topic": ("visible/image_raw", "visible image topic"),
    "ir_info_topic": ("ir/camera_info", "IR CameraInfo topic"),
    "visible_info_topic": ("visible/camera_info", "visible CameraInfo topic"),
    "fused_topic": ("fused/image", "fused image output topic"),
    "use_sim_time": ("false", "follow /clock (bag replay)"),
    "backend": ("", "engine.backend override (auto, onnxruntime, openvino, torch, tensorrt); empty: from config"),
    "model": ("", "pipeline.model override (student, teacher or a .safetensors path); empty: from config"),
}
REMAPPED = {"ir_topic": "ir/image_raw", "visible_topic": "visible/image_raw", "ir_info_topic": "ir/camera_info",
            "visible_info_topic": "visible/camera_info", "fused_topic": "fused/image"}


def _config_path(value: str) -> str:
    if value:
        return value
    try:
        from ament_index_python.packages import get_package_share_directory

        return str(Path(get_package_share_directory("ivif_ros")) / "config" / "fusion.yaml")
    except (ImportError, LookupError, ValueError):
        return str(Path(__file__).resolve().parents[1] / "config" / "fusion.yaml")


def _graph(context):
    """The node actions, decided when the launch arguments are known (graph.mode is in the config)."""
    import os

    from launch.actions import SetEnvironmentVariable
    from launch_ros.actions import Node

    from ivif_ros.core.config import load_config
    from ivif_ros.nodes.launcher import transport_env

    arg = {name: context.launch_configurations.get(name, default) for name, (default, _) in ARGUMENTS.items()}
    config_file = _config_path(arg["config"])
    overrides = {k: v for k, v in (("engine.backend", arg["backend"]), ("pipeline.model", arg["model"])) if v}
    config = load_config(config_file, overrides)  # validate before starting anything
    parameters = [config_file, {"use_sim_time": arg["use_sim_time"].lower() == "true", **overrides}]
    remappings = [(topic, arg[name]) for name, topic in REMAPPED.items() if arg[name] != topic]
    actions = []
    # The graph's Fast DDS profile (default discovery kept, large images intact), unless the user chose transports.
    for name, value in transport_env(config.graph.fastdds_profile, os.environ).items():
        if os.environ.get(name) != value:
            actions.append(SetEnvironmentVariable(name, value))

    def node(module, name, extra=()):
        return Node(executable=sys.executable, arguments=["-m", module, *extra], name=name,
                    namespace=arg["namespace"], parameters=parameters, remappings=remappings, output="screen")

    if config.graph.mode == "single_process":
        actions.append(node("ivif_ros.nodes.graph", None, [] if config.graph.overlay else ["--no-overlay"]))
    else:
        actions.append(node("ivif_ros.nodes.fusion_node", "ivif_fusion"))
        if config.graph.overlay:
            actions.append(node("ivif_ros.nodes.overlay_node", "ivif_overlay"))
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=doc)
         for name, (default, doc) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_graph)]
    )
