"""Starting the node graph without launch_ros (``ivif launch``): plan the processes, run them,
forward SIGINT/SIGTERM, and stop them all when one fails.

The plan is the same graph ``launch/fusion.launch.py`` builds: the parameters file is
passed to every node as it is (``--params-file``), command-line settings follow as
``-p`` overrides, and namespace and remaps as ``-r`` rules. Nothing here imports rclpy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivif_ros.core.config import FusionConfig, load_config, parse_override
from ivif_ros.errors import ConfigError

FUSION_MODULE = "ivif_ros.nodes.fusion_node"
OVERLAY_MODULE = "ivif_ros.nodes.overlay_node"
GRAPH_MODULE = "ivif_ros.nodes.graph"
STOP_TIMEOUT_S = 15.0  # a node finishing its current frame on a slow CPU backend


def default_config_path() -> Path:
    """``config/fusion.yaml`` of this checkout, else the installed share directory's."""
    here = Path(__file__).resolve().parents[2] / "config" / "fusion.yaml"
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("ivif_ros")) / "config" / "fusion.yaml"
    except (ImportError, LookupError, ValueError):
        return here


#: Environment variables by which a user chooses Fast DDS' transports; any of them set wins over the profile.
FASTDDS_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
DEFAULT_PROFILE = "fastdds_profile.xml"
#: Socket buffer the shipped profile asks for; the kernel caps it at net.core.rmem_max.
PROFILE_SOCKET_BUFFER = 4 * 1024 * 1024


def profile_path(name: str = DEFAULT_PROFILE) -> Path:
    """``graph.fastdds_profile`` as a path: relative names live beside ``config/fusion.yaml``."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else default_config_path().parent / path


def transport_env(profile: str, environ) -> dict[str, str]:
    """``environ`` with the graph's Fast DDS profile, unless the user chose transports already.

    The profile (``config/fastdds_profile.xml``) keeps Fast DDS' default discovery, so nodes
    with default settings see the graph; an empty ``profile`` leaves the environment alone.
    """
    env = dict(environ)
    if profile and not any(v in env for v in FASTDDS_VARIABLES):
        path = profile_path(profile)
        if not path.is_file():
            raise ConfigError(
                f"graph.fastdds_profile: {path} does not exist; give an existing Fast DDS XML "
                "profile, or '' to leave the transport settings to the environment"
            )
        env[PROFILE_VARIABLE] = str(path)
    return env


def apply_default_profile(environ=os.environ) -> None:
    """Before ``rclpy.init`` in a node process: use the shipped profile when no launcher or user
    chose the transports (a node started by hand, ``ros2 run``)."""
    if not any(v in environ for v in FASTDDS_VARIABLES) and profile_path().is_file():
        environ[PROFILE_VARIABLE] = str(profile_path())


def socket_buffer_warning() -> str | None:
    """A warning when the kernel caps the profile's UDP receive buffer (Linux), else None."""
    try:
        limit = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return None
    if limit >= PROFILE_SOCKET_BUFFER:
        return None
    return (
        f"net.core.rmem_max is {limit} bytes: UDP receive buffers are capped below the "
        f"{PROFILE_SOCKET_BUFFER >> 20} MB the transport profile asks for, so large images from other "
        f"processes may be lost at 30 Hz. Raise it: sudo sysctl -w net.core.rmem_max={PROFILE_SOCKET_BUFFER}"
    )


@dataclass
class LaunchRequest:
    config: Path
    namespace: str = ""
    remaps: list[str] = field(default_factory=list)  # "from:=to"
    params: list[str] = field(default_factory=list)  # "name=value" or "name:=value"
    use_sim_time: bool = False
    backend: str | None = None
    model: str | None = None
    mode: str | None = None  # overrides graph.mode


@dataclass
class Plan:
    config: FusionConfig
    commands: list[tuple[str, list[str]]]  # (label, argv)
    env: dict[str, str]


def ros_arguments(req: LaunchRequest) -> tuple[list[str], dict]:
    """``--ros-args ...`` for every node, and the schema settings they override (validated by ``plan``).

    Names without a section (``use_sim_time``) are ROS' own node parameters: passed on, not in the schema.
    """
    overrides = dict(parse_override(p) for p in req.params)
    check_node_parameters(overrides)
    if req.backend:
        overrides["engine.backend"] = req.backend
    if req.model:
        overrides["pipeline.model"] = req.model
    args = ["--ros-args", "--params-file", str(req.config)]
    for name, value in overrides.items():
        if not name.startswith("graph."):  # launcher settings, not node parameters
            args += ["-p", f"{name}:={_ros_value(value)}"]
    if req.use_sim_time:
        args += ["-p", "use_sim_time:=true"]
    if req.namespace:
        ns = req.namespace if req.namespace.startswith("/") else "/" + req.namespace
        args += ["-r", f"__ns:={ns}"]
    for rule in req.remaps:
        source, sep, target = rule.partition(":=")
        if not sep or not source or not target:
            raise ConfigError(f"remap {rule!r}: expected FROM:=TO, e.g. ir/image_raw:=/thermal/image_raw")
        args += ["-r", rule]
    return args, {k: v for k, v in overrides.items() if "." in k}


# Parameters every rclpy node has besides the schema's: name -> the Python type rcl accepts.
ROS_NODE_PARAMETERS = {"use_sim_time": bool, "start_type_description_service": bool}


def check_node_parameters(overrides: dict) -> None:
    """Refuse a ``--param`` without a schema section that no node would accept: a typo (``foo=1``)
    that rcl would ignore, or a ROS parameter of the wrong type (``use_sim_time=1``) that would
    pass here and then stop every node at start. ``qos_overrides.*`` is left to rclpy."""
    for name, value in overrides.items():
        if "." in name:
            continue  # schema settings: validated by load_config in plan()
        kind = ROS_NODE_PARAMETERS.get(name)
        if kind is None:
            raise ConfigError(
                f"--param {name}: no such parameter; the nodes take the settings of config/fusion.yaml "
                f"(section.name, e.g. sync.slop_s=0.03) and {', '.join(ROS_NODE_PARAMETERS)}"
            )
        if not isinstance(value, kind):
            raise ConfigError(
                f"--param {name}={value!r}: expected {kind.__name__} (true or false), e.g. --param {name}=true"
            )


def _ros_value(value) -> str:
    """A value as rcl parses ``-p name:=value`` (YAML); lists in flow style."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_ros_value(v) for v in value) + "]"
    if isinstance(value, str):
        return "''" if value == "" else value
    return repr(value)


def plan(req: LaunchRequest) -> Plan:
    """Validate the configuration and decide the processes to start."""
    ros_args, overrides = ros_arguments(req)
    if req.mode:
        overrides["graph.mode"] = req.mode
    config = load_config(req.config, overrides)  # fail here, with the key named, not in a child
    python = [sys.executable, "-m"]
    if config.graph.mode == "single_process":
        extra = [] if config.graph.overlay else ["--no-overlay"]
        commands = [("graph", python + [GRAPH_MODULE, *extra, *ros_args])]
    else:
        commands = [("fusion", python + [FUSION_MODULE, *ros_args])]
        if config.graph.overlay:
            commands.append(("overlay", python + [OVERLAY_MODULE, *ros_args]))
    env = transport_env(config.graph.fastdds_profile, os.environ)
    return Plan(config, commands, env)


def die_with_parent():
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when the process that
    started it dies, even by SIGKILL (Linux ``prctl(PR_SET_PDEATHSIG)``), so a killed
    ``ivif launch`` or ``ivif replay --live`` leaves no orphaned nodes behind. Elsewhere: ``None``.

    The signal follows the thread that called ``Popen``; call it from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above: nobody will signal us
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _log(text: str) -> None:
    print(text, flush=True)  # interleaves in order with the nodes' output


def supervise(p: Plan, log=_log) -> int:
    """Run the planned processes until SIGINT/SIGTERM or until one exits; stop the rest.

    Returns 0 after a requested stop in which every node exited cleanly, otherwise the
    first non-zero exit code.
    """
    # The handler only appends to a list. A signal handler runs in the main thread between two
    # bytecodes, possibly while that thread holds a lock: threading.Event.set() there took the
    # lock Event.wait() held and hung `ivif launch` for good, nodes and all.
    stop: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _: stop.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    procs: list[tuple[str, subprocess.Popen]] = []
    warning = socket_buffer_warning() if PROFILE_VARIABLE in p.env else None
    if warning:
        log(f"ivif launch: warning: {warning}")
    try:
        for label, argv in p.commands:
            log(f"ivif launch: starting {label}: {' '.join(argv)}")
            # Own process group: a terminal Ctrl-C reaches only us, and we stop the nodes in order.
            procs.append(
                (label, subprocess.Popen(argv, env=p.env, start_new_session=True, preexec_fn=die_with_parent()))
            )
        failed = None
        while not stop:
            failed = next(((label, proc) for label, proc in procs if proc.poll() is not None), None)
            if failed is not None:
                log(f"ivif launch: {failed[0]} exited with code {failed[1].returncode}; stopping the graph")
                break
            time.sleep(0.2)
        else:
            log("ivif launch: stopping the graph")
        return _stop_all(procs, failed, log)
    finally:
        for label, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(procs, failed, log) -> int:
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    code = failed[1].returncode if failed is not None else 0
    for label, proc in procs:
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"ivif launch: {label} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
            proc.kill()
            rc = proc.wait()
        if rc not in (0, -signal.SIGINT) and code == 0:
            code = rc
    return code
