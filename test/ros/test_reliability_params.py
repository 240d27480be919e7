"""Parameters are validated where they enter: at start-up (params files, ``-p``) and at set time.

* On a running fusion node, ``set_parameters`` requests (the real service, from another node)
  with invalid values are refused with a reason naming the parameter and the limit, the node's
  configuration is unchanged, and it keeps fusing. ``set_parameters_atomically`` with one bad
  value applies none.
* A node started with an invalid params file exits with code 2 and one explained line: no
  traceback, no half-started node.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters, SetParametersAtomically

from fusion_graph_harness import (  # noqa: F401  (fixtures)
    CameraRig,
    engine_cache,
    fusion_diagnostics,
    graph_params,
    student_weights,
)
from reliability_graph import fusion_graph, settle, wait_for_subscribers  # noqa: F401  (fixture)
from ros_harness import REPO_ROOT

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("engine_cache")]

_FIELDS = {
    ParameterType.PARAMETER_DOUBLE: "double_value",
    ParameterType.PARAMETER_INTEGER: "integer_value",
    ParameterType.PARAMETER_STRING: "string_value",
    ParameterType.PARAMETER_DOUBLE_ARRAY: "double_array_value",
}


def param_msg(name, type_, value) -> ParameterMsg:
    return ParameterMsg(name=name, value=ParameterValue(type=type_, **{_FIELDS[type_]: value}))


def call(node, srv_type, service, request, timeout_s=10.0):
    client = node.create_client(srv_type, service)
    assert client.wait_for_service(timeout_sec=timeout_s), f"{service} not available"
    future = client.call_async(request)
    deadline = time.monotonic() + timeout_s
    while not future.done():
        assert time.monotonic() < deadline, f"no answer from {service}"
        time.sleep(0.01)
    return future.result()


D, I, S, DA = (
    ParameterType.PARAMETER_DOUBLE,
    ParameterType.PARAMETER_INTEGER,
    ParameterType.PARAMETER_STRING,
    ParameterType.PARAMETER_DOUBLE_ARRAY,
)
SINGULAR = [1.0, 2.0, 0.0, 2.0, 4.0, 0.0, 0.0, 0.0, 1.0]  # rank 2: maps the image onto a line

INVALID_AT_SET_TIME = [
    # (name, type, value, what the reason must say). Type, range and read-only are rclpy's checks
    # against the ParameterDescriptor; choices, list lengths and cross-field rules the schema's.
    ("sync.slop_s", D, -0.5, ["sync.slop_s", "Max: 10.0", "-0.5"]),
    ("sync.slop_s", D, math.nan, ["sync.slop_s", "out of range", "nan"]),
    ("sync.slop_s", S, "fast", ["Wrong parameter type"]),  # rclpy's message names no parameter
    ("sync.queue_size", I, 0, ["sync.queue_size", "Min: 1", "value: 0"]),
    ("dropout.timeout_s", D, math.inf, ["dropout.timeout_s", "out of range", "inf"]),
    ("ir_normalize.mode", S, "log", ["ir_normalize.mode", "'log' is not one of percentile, fixed"]),
    ("ir_normalize.low_percentile", D, 99.5, ["low_percentile (99.5) must be below high_percentile"]),
    ("registration.mode", S, "magic", ["registration.mode", "'magic' is not one of"]),
    ("registration.homography", DA, [1.0] * 8, ["registration.homography", "expected a list of 9 values, got 8"]),
    (
        "registration.homography",
        DA,
        [1.0, 0.0, math.inf, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        ["registration.homography", "inf is outside"],
    ),
    ("engine.backend", S, "cuda_magic", ["read-only parameter: engine.backend"]),
    ("qos.input_depth", I, 1, ["read-only parameter: qos.input_depth"]),
]


@pytest.mark.ros_extras  # the running policy (builtin or message_filters) must keep its settings
def test_invalid_values_are_refused_at_set_time_and_the_node_keeps_fusing(fusion_graph):
    fusion, probe, probe_node, thread = fusion_graph()
    rig = CameraRig(probe_node)
    wait_for_subscribers(rig.pub.values())
    before = fusion.params.config.to_flat()
    service = "/ivif_fusion/set_parameters"
    for name, type_, value, reason in INVALID_AT_SET_TIME:
        result = call(
            probe_node, SetParameters, service, SetParameters.Request(parameters=[param_msg(name, type_, value)])
        ).results[0]
        assert not result.successful, f"{name} = {value!r} was accepted"
        for fragment in reason:
            assert fragment in result.reason, f"{name} = {value!r}: reason {result.reason!r} lacks {fragment!r}"

    atomically = call(
        probe_node,
        SetParametersAtomically,
        "/ivif_fusion/set_parameters_atomically",
        SetParametersAtomically.Request(
            parameters=[param_msg("sync.slop_s", D, 0.05), param_msg("sync.queue_size", I, 0)]
        ),
    ).result
    assert not atomically.successful and "sync.queue_size" in atomically.reason
    assert fusion.params.config.to_flat() == before, "a refused request changed the configuration"
    assert fusion.policy.slop_ns == round(before["sync.slop_s"] * 1e9) and fusion.policy.queue_size == 10

    rig.run(1.5)
    settle(probe)
    assert thread.is_alive() and fusion._worker.is_alive()
    assert probe.count("fused/image") > 0, "the node stopped fusing after the refused requests"


def test_homography_that_cannot_be_used_is_refused_at_set_time(fusion_graph):
    """A singular (or non-finite) homography passes the per-field checks; switching to it must
    still be refused up front rather than fail in the callback that applies it."""
    fusion, probe, probe_node, thread = fusion_graph()
    rig = CameraRig(probe_node)
    wait_for_subscribers(rig.pub.values())
    service = "/ivif_fusion/set_parameters_atomically"
    result = call(
        probe_node,
        SetParametersAtomically,
        service,
        SetParametersAtomically.Request(
            parameters=[
                param_msg("registration.mode", S, "homography"),
                param_msg("registration.homography", DA, SINGULAR),
            ]
        ),
    ).result
    assert not result.successful and "registration.homography" in result.reason and "invertible" in result.reason
    assert fusion.params.config.registration.mode == "resize"
    ok = call(
        probe_node,
        SetParametersAtomically,
        service,
        SetParametersAtomically.Request(
            parameters=[
                param_msg("registration.mode", S, "homography"),
                param_msg("registration.homography", DA, [1.0, 0.0, 2.0, 0.0, 1.0, -3.0, 0.0, 0.0, 1.0]),
            ]
        ),
    ).result
    assert ok.successful, ok.reason
    np.testing.assert_allclose(
        fusion.registration.homography((320, 240), (320, 240)), [[1, 0, 2], [0, 1, -3], [0, 0, 1]]
    )
    rig.run(1.0)
    settle(probe)
    assert thread.is_alive() and fusion._worker.is_alive() and probe.count("fused/image") > 0


# -- start-up ------------------------------------------------------------------------------------

PARAMS_FILES = {
    # case: (params file body under ros__parameters, fragments of the one error line)
    "negative slop": ("sync: {slop_s: -0.5}", ["sync.slop_s", "-0.5", "Max: 10.0"]),
    "queue size 0": ("sync: {queue_size: 0}", ["sync.queue_size", "Min: 1"]),
    "unknown backend": ("engine: {backend: cuda_magic}", ["engine.backend", "'cuda_magic' is not one of"]),
    "unknown IR normalisation": ("ir_normalize: {mode: log}", ["ir_normalize.mode", "'log' is not one of"]),
    "homography of 8 values": (
        "registration: {mode: homography, homography: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]}",
        ["registration.homography", "expected a list of 9 values, got 8"],
    ),
    "singular homography": (
        f"registration: {{mode: homography, homography: {SINGULAR}}}",
        ["homography", "invertible"],
    ),
    "string for a float": ("sync: {slop_s: fast}", ["sync.slop_s", "expecting type 'DOUBLE'"]),
    "integer for a float": ("sync: {slop_s: 1}", ["sync.slop_s", "e.g. 2.0, not 2"]),
    "misspelt name": ("sync: {slop: 0.05}", ["sync.slop given to node", "does not exist", "did you mean sync.slop_s?"]),
    "not YAML": ("sync: {slop_s: 0.02\n  bad: [", ["ROS could not start", "Couldn't parse params file"]),
    "missing file": (None, ["ROS could not start", "Error opening YAML file"]),
}


@pytest.fixture(scope="module")
def started_with_bad_params(ros_env, student_weights, tmp_path_factory):
    """Start one fusion node per case, all at once (each exits on its own), and collect (code, output)."""
    folder = tmp_path_factory.mktemp("bad_params")
    overrides = [arg for k, v in graph_params(student_weights).items() for arg in ("-p", f"{k}:={v}")]
    procs = {}
    for i, (case, (body, _)) in enumerate(PARAMS_FILES.items()):
        path = folder / f"case{i}.yaml"
        if body is not None:
            path.write_text("/**:\n  ros__parameters:\n    " + body.replace("\n", "\n    ") + "\n")
        # the file's values come after -p here on purpose: rcl applies the last occurrence
        args = [
            sys.executable,
            "-m",
            "ivif_ros.nodes.fusion_node",
            "--ros-args",
            *overrides,
            "--params-file",
            str(path),
            "-r",
            f"__ns:=/case{i}",
        ]
        procs[case] = subprocess.Popen(
            args, env=ros_env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results = {}
    for case, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        results[case] = (proc.returncode, out)
    return results


@pytest.mark.parametrize("case", list(PARAMS_FILES))
def test_invalid_params_file_stops_the_node_with_one_explained_line(started_with_bad_params, case):
    code, out = started_with_bad_params[case]
    assert code == 2, f"exit code {code}:\n{out}"
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("ivif_ros: error:")]
    assert len(errors) == 1, out
    for fragment in PARAMS_FILES[case][1]:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
