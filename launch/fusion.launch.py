"""ros2 launch ivif_ros fusion.launch.py [namespace:=car1] [ir_topic:=/thermal/image_raw] ...

The fusion graph of config/fusion.yaml: the fusion node and the overlay node, one
process each (``graph.mode: multi_process``) or both in one process (``single_process``).
``ivif launch`` starts the same graph without launch_ros.

launch and launch_ros are imported inside ``generate_launch_description`` so this file
can be imported (and checked) where they are not installed, e.g. a pip-only ROS.

The nodes are the package's installed executables (``lib/ivif_ros/fusion_node``, ...,
from colcon or ``pip install .``), labelled ivif_fusion / ivif_overlay in the launch log.
Where they are missing (a source checkout on PYTHONPATH) they run as ``python -m`` with
this interpreter. The ``ros2`` process reads only the ``graph`` settings of the config,
with plain YAML, and imports only the launcher's Fast DDS profile helper; the project's
config schema (whose pipeline and engine sections pull in torch) is loaded only when the
file lacks those settings, and the nodes validate everything else when they start.
"""

import sys
from pathlib import Path
from types import SimpleNamespace

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
REMAPPED = {
    "ir_topic": "ir/image_raw",
    "visible_topic": "visible/image_raw",
    "ir_info_topic": "ir/camera_info",
    "visible_info_topic": "visible/camera_info",
    "fused_topic": "fused/image",
}


def _config_path(value: str) -> str:
    if value:
        return value
    try:
        from ament_index_python.packages import get_package_share_directory

        return str(Path(get_package_share_directory("ivif_ros")) / "config" / "fusion.yaml")
    except (ImportError, LookupError, ValueError):
        return str(Path(__file__).resolve().parents[1] / "config" / "fusion.yaml")


GRAPH_SETTINGS = {"mode": str, "overlay": bool, "fastdds_profile": str}
GRAPH_MODES = ("multi_process", "single_process")
# executable in lib/ivif_ros -> (module run with ``python -m`` where it is missing, node name)
EXECUTABLES = {
    "fusion_node": ("ivif_ros.nodes.fusion_node", "ivif_fusion"),
    "overlay_node": ("ivif_ros.nodes.overlay_node", "ivif_overlay"),
    "fusion_graph": ("ivif_ros.nodes.graph", "ivif_graph"),
}


def _graph_settings(config_file: str, overrides: dict):
    """``graph.*`` of the parameters file (the ``/**`` block, or a plain ``graph:`` mapping)."""
    import yaml

    try:
        data = yaml.safe_load(Path(config_file).read_text()) or {}
        block = data.get("/**", {}).get("ros__parameters", data) if isinstance(data, dict) else {}
        graph = block.get("graph") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        graph = {}
    if all(isinstance(graph.get(k), t) for k, t in GRAPH_SETTINGS.items()) and graph["mode"] in GRAPH_MODES:
        return SimpleNamespace(graph=SimpleNamespace(**{k: graph[k] for k in GRAPH_SETTINGS}))
    # Missing or odd graph settings: the project's schema gives the defaults or a clear error.
    from ivif_ros.core.config import load_config

    return load_config(config_file, overrides)


def _installed_executables() -> set:
    """Names of the executables in <prefix>/lib/ivif_ros, where launch_ros looks them up."""
    import os

    try:
        from ament_index_python.packages import get_package_prefix

        libexec = Path(get_package_prefix("ivif_ros")) / "lib" / "ivif_ros"
    except (ImportError, LookupError, ValueError):
        return set()
    return {name for name in EXECUTABLES if os.access(libexec / name, os.X_OK)}


def _graph(context):
    """The node actions, decided when the launch arguments are known (graph.mode is in the config)."""
    import os

    from launch.actions import SetEnvironmentVariable
    from launch_ros.actions import Node

    # The one project import the ros2 process needs: the Fast DDS profile, resolved as `ivif launch` does.
    from ivif_ros.nodes.launcher import transport_env

    arg = {name: context.launch_configurations.get(name, default) for name, (default, _) in ARGUMENTS.items()}
    config_file = _config_path(arg["config"])
    overrides = {k: v for k, v in (("engine.backend", arg["backend"]), ("pipeline.model", arg["model"])) if v}
    config = _graph_settings(config_file, overrides)
    parameters = [config_file, {"use_sim_time": arg["use_sim_time"].lower() == "true", **overrides}]
    remappings = [(topic, arg[name]) for name, topic in REMAPPED.items() if arg[name] != topic]
    actions = []
    # The graph's Fast DDS profile (default discovery kept, large images intact), unless the user chose transports.
    for name, value in transport_env(config.graph.fastdds_profile, os.environ).items():
        if os.environ.get(name) != value:
            actions.append(SetEnvironmentVariable(name, value))

    installed = _installed_executables()

    def node(executable, extra=()):
        module, name = EXECUTABLES[executable]
        common = dict(
            name=None if executable == "fusion_graph" else name,
            namespace=arg["namespace"],
            parameters=parameters,
            remappings=remappings,
            output="screen",
            exec_name=name,
        )
        if executable in installed:
            return Node(package="ivif_ros", executable=executable, arguments=list(extra), **common)
        return Node(executable=sys.executable, arguments=["-m", module, *extra], **common)

    if config.graph.mode == "single_process":
        actions.append(node("fusion_graph", [] if config.graph.overlay else ["--no-overlay"]))
    else:
        actions.append(node("fusion_node"))
        if config.graph.overlay:
            actions.append(node("overlay_node"))
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription(
        [
            DeclareLaunchArgument(name, default_value=default, description=doc)
            for name, (default, doc) in ARGUMENTS.items()
        ]
        + [OpaqueFunction(function=_graph)]
    )
