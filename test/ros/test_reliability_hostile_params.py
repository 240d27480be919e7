"""Run-time parameters that point at hostile or broken files are refused; the graph keeps fusing.

A calibration file is read when ``registration.mode`` becomes ``homography``. A file with a
YAML syntax error, a ``!!python`` tag or an alias bomb must be refused by the real
``set_parameters`` service with a reason naming the setting, never raise out of the
parameter callback (that ends the executor, so the node and ``ivif launch``'s whole graph).
"""

from __future__ import annotations

import pytest
from rcl_interfaces.srv import SetParameters, SetParametersAtomically

from fusion_graph_harness import CameraRig, engine_cache, student_weights  # noqa: F401  (fixtures)
from reliability_graph import fusion_graph, settle, wait_for_subscribers  # noqa: F401  (fixture)
from test_reliability_params import S, call, param_msg

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("engine_cache")]

BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))
    + "homography: *i\n"
)

BAD_CALIBRATIONS = {
    "syntax error": ("homography: [[1, 0, 0], [0, 1, 0]\n  - oops: [", "not valid YAML"),
    "python tag": ("homography: !!python/object/apply:os.system ['echo pwned']\n", "no !!python"),
    "alias bomb": (BOMB, "aliases"),
}


def test_broken_calibration_file_is_refused_and_the_graph_keeps_fusing(fusion_graph, tmp_path):
    fusion, probe, probe_node, thread = fusion_graph()
    rig = CameraRig(probe_node)
    wait_for_subscribers(rig.pub.values())
    for case, (body, reason) in BAD_CALIBRATIONS.items():
        path = tmp_path / f"{case.replace(' ', '_')}.yaml"
        path.write_text(body)
        # the file alone is accepted (mode resize does not read it); switching to homography reads it
        first = call(
            probe_node,
            SetParameters,
            "/ivif_fusion/set_parameters",
            SetParameters.Request(parameters=[param_msg("registration.calibration_file", S, str(path))]),
        ).results[0]
        assert first.successful, first.reason
        result = call(
            probe_node,
            SetParameters,
            "/ivif_fusion/set_parameters",
            SetParameters.Request(parameters=[param_msg("registration.mode", S, "homography")]),
        ).results[0]
        assert not result.successful, f"{case}: mode homography with {path} was accepted"
        assert "registration.calibration_file" in result.reason and str(path) in result.reason, result.reason
        assert reason in result.reason, f"{case}: {result.reason!r} lacks {reason!r}"
        assert len(result.reason) < 1000 and "\n" not in result.reason, result.reason
        assert thread.is_alive(), f"{case}: the executor died"
        # both at once, atomically: the same refusal
        atomic = call(
            probe_node,
            SetParametersAtomically,
            "/ivif_fusion/set_parameters_atomically",
            SetParametersAtomically.Request(
                parameters=[
                    param_msg("registration.mode", S, "homography"),
                    param_msg("registration.calibration_file", S, str(path)),
                ]
            ),
        ).result
        assert not atomic.successful and reason in atomic.reason, atomic.reason
    assert fusion.params.config.registration.mode == "resize"
    rig.run(1.5)
    settle(probe)
    assert thread.is_alive() and fusion._worker.is_alive()
    assert probe.count("fused/image") > 0, "the node stopped fusing after the refused calibration files"


def test_model_cannot_change_at_run_time_without_a_word(fusion_graph):
    """The engine is built for ``pipeline.model`` at start: a run-time change is refused, not
    reported as applied while the old engine keeps running."""
    fusion, probe, probe_node, thread = fusion_graph()
    before = fusion.params.config.pipeline.model
    result = call(
        probe_node,
        SetParameters,
        "/ivif_fusion/set_parameters",
        SetParameters.Request(parameters=[param_msg("pipeline.model", S, "teacher")]),
    ).results[0]
    assert not result.successful and "pipeline.model" in result.reason, result.reason
    assert fusion.params.config.pipeline.model == before and thread.is_alive()
