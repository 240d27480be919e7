"""The config schema (ivif_ros.core.config) and config/fusion.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivif_ros.core.config import FusionConfig, load_config, param_specs, parse_override, read_param_file
from ivif_ros.errors import ConfigError

FUSION_YAML = Path(__file__).resolve().parents[2] / "config" / "fusion.yaml"


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_fusion_yaml_holds_every_parameter_and_nothing_else():
    in_file = set(flatten(read_param_file(FUSION_YAML)))
    assert in_file == {s.name for s in param_specs()}


def test_fusion_yaml_values_are_the_defaults():
    loaded, default = load_config(FUSION_YAML), FusionConfig()
    flat_loaded, flat_default = loaded.to_flat(), default.to_flat()
    flat_loaded.pop("engine.cache_dir"), flat_default.pop("engine.cache_dir")  # "~" vs expanded home
    assert flat_loaded == flat_default


def test_fusion_yaml_is_a_valid_ros_parameters_file():
    rclpy_parameter = pytest.importorskip("rclpy.parameter", reason="rclpy is not installed")
    params = rclpy_parameter.parameter_dict_from_yaml_file(str(FUSION_YAML), use_wildcard=True)
    assert params["sync.slop_s"].value.double_value == pytest.approx(0.02)
    assert list(params["registration.homography"].value.double_array_value) == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert params["graph.mode"].value.string_value == "multi_process"


def test_flat_round_trip_and_pipeline_shares_the_engine_config():
    cfg = FusionConfig.from_flat({"sync.slop_s": 0.05, "engine.backend": "torch", "engine.width": 320})
    assert cfg.sync.slop_s == 0.05 and cfg.sync.queue_size == 10
    assert cfg.pipeline.engine is cfg.engine and cfg.engine.width == 320
    assert FusionConfig.from_flat(cfg.to_flat()) == cfg


@pytest.mark.parametrize(
    "flat, message",
    [
        ({"sync.slp_s": 0.1}, "did you mean 'slop_s'"),
        ({"sink.slop_s": 0.1}, "unknown config section 'sink'"),
        ({"sync.slop_s": -1.0}, r"sync.slop_s.*outside \[0.0, 10.0\]"),
        ({"sync.queue_size": "ten"}, "sync.queue_size.*expected int"),
        ({"sync.policy": "nearest"}, "sync.policy.*not one of approximate, optimal, exact"),
        ({"registration.homography": [1.0, 0.0]}, "registration.homography.*9 values"),
        ({"ir_normalize.low_percentile": 99.5}, "low_percentile .* must be below"),
        ({"registration.mode": "crop"}, "crop_xywh"),
        ({"engine.backend": "cuda"}, "engine.backend"),
        ({"pipeline.palette": "rainbow"}, "pipeline.palette"),
    ],
)
def test_invalid_values_name_the_key(flat, message):
    with pytest.raises(ConfigError, match=message):
        FusionConfig.from_flat(flat, "test.yaml")


def test_integers_are_accepted_for_floats_but_not_bools_for_numbers():
    assert FusionConfig.from_flat({"sync.slop_s": 1}).sync.slop_s == 1.0
    with pytest.raises(ConfigError, match="expected float"):
        FusionConfig.from_flat({"sync.slop_s": True})


def test_node_block_overrides_wildcard_block(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    sync: {slop_s: 0.03, queue_size: 7}\n"
        "/cam/ivif_fusion:\n  ros__parameters:\n    sync: {slop_s: 0.04}\n"
    )
    assert load_config(path).sync.slop_s == 0.03
    cfg = load_config(path, node_name="ivif_fusion")
    assert (cfg.sync.slop_s, cfg.sync.queue_size) == (0.04, 7)


def test_plain_yaml_and_overrides(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("dropout:\n  timeout_s: 2.0\n")
    cfg = load_config(
        path,
        overrides=dict(
            [parse_override("graph.mode=single_process"), parse_override("registration.crop_xywh:=[1, 2, 3, 4]")]
        ),
    )
    assert cfg.dropout.timeout_s == 2.0 and cfg.graph.mode == "single_process"
    assert cfg.registration.crop_xywh == [1, 2, 3, 4]
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_override("graph.mode")


def test_missing_or_broken_files_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("sync: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_every_parameter_in_fusion_yaml_has_a_comment():
    lines = FUSION_YAML.read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        is_leaf = line.startswith("      ") and not stripped.startswith("#") and ":" in stripped
        if is_leaf:
            assert lines[i - 1].strip().startswith("#"), f"config/fusion.yaml:{i + 1}: {stripped} has no comment"
