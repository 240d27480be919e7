"""backend: auto -- TensorRT preference, measured CPU choice, its cache, forced backends, missing packages."""

import json

import pytest

from ivif_ros.engines import EngineConfig, create_engine, require_backend, tensorrt_available
from ivif_ros.engines.selection import CHOICE_FILE, choose_backend
from ivif_ros.errors import BackendUnavailable, ConfigError

HOST = "Test CPU x2"
TIMES = {"onnxruntime": 12.0, "openvino": 9.0, "torch": 30.0}


class Stopwatch:
    """A measure() that reports fixed timings and records which backends were timed."""

    def __init__(self, times=TIMES, missing=()):
        self.times, self.missing, self.calls = dict(times), set(missing), []

    def __call__(self, backend):
        self.calls.append(backend)
        if backend in self.missing:
            raise BackendUnavailable(f"backend '{backend}' needs the Python package '{backend}'")
        return self.times[backend]


def choose(cfg, measure, tensorrt=False, host=HOST, weights="w" * 64, now=None, load=0.1):
    return choose_backend(
        cfg, weights, tensorrt_available=tensorrt, measure=measure, host=host, now=now, load=lambda: load
    )


def test_tensorrt_is_preferred_when_available(tmp_path):
    measure = Stopwatch()
    choice = choose(EngineConfig(cache_dir=tmp_path, precision="fp16"), measure, tensorrt=True)
    assert (choice.backend, choice.reason, measure.calls) == ("tensorrt", "TensorRT available", [])


def test_fastest_measured_cpu_backend_wins_and_is_cached(tmp_path):
    measure = Stopwatch()
    choice = choose(EngineConfig(cache_dir=tmp_path), measure)
    assert choice.backend == "openvino" and choice.reason == "measured"
    assert measure.calls == ["onnxruntime", "openvino", "torch"]  # torch_compile excluded by default
    stored = json.loads((tmp_path / CHOICE_FILE).read_text())
    (entry,) = stored.values()
    assert entry["backend"] == "openvino" and entry["timings_ms"] == TIMES


def test_cache_hit_skips_measurement(tmp_path):
    choose(EngineConfig(cache_dir=tmp_path), Stopwatch())
    again = Stopwatch(times={"onnxruntime": 1.0, "openvino": 9.0, "torch": 30.0})
    choice = choose(EngineConfig(cache_dir=tmp_path), again)
    assert (choice.backend, choice.reason, again.calls) == ("openvino", "cached measurement", [])


@pytest.mark.parametrize(
    "change",
    [
        {"host": "Other CPU x8"},
        {"weights": "v" * 64},
        {"cfg": {"threads": 1}},
        {"cfg": {"auto_candidates": ("onnxruntime", "torch")}},
    ],
)
def test_stale_cache_re_measures(tmp_path, change):
    choose(EngineConfig(cache_dir=tmp_path), Stopwatch())
    faster_ort = Stopwatch(times={"onnxruntime": 1.0, "openvino": 9.0, "torch": 30.0})
    cfg = EngineConfig(cache_dir=tmp_path, **change.get("cfg", {}))
    choice = choose(cfg, faster_ort, host=change.get("host", HOST), weights=change.get("weights", "w" * 64))
    assert choice.backend == "onnxruntime" and choice.reason.startswith("measured") and faster_ort.calls


def test_package_version_change_makes_the_cache_stale(tmp_path):
    choose(EngineConfig(cache_dir=tmp_path), Stopwatch())
    path = tmp_path / CHOICE_FILE
    stored = json.loads(path.read_text())
    (slot,) = stored
    stored[slot]["key_digest"] = "digest-of-an-older-onnxruntime"
    path.write_text(json.dumps(stored))
    measure = Stopwatch()
    reason = choose(EngineConfig(cache_dir=tmp_path), measure).reason
    assert reason == "measured (cached choice stale: software, host or model changed)" and measure.calls


def test_forced_backend_is_respected_without_measuring(tmp_path):
    measure = Stopwatch()
    choice = choose(EngineConfig(cache_dir=tmp_path, backend="torch"), measure, tensorrt=True)
    assert (choice.backend, choice.reason, measure.calls) == ("torch", "forced by config", [])


def test_unavailable_candidates_are_skipped_and_compile_can_be_opted_in(tmp_path):
    measure = Stopwatch(times={**TIMES, "torch_compile": 5.0}, missing={"openvino"})
    cfg = EngineConfig(cache_dir=tmp_path, auto_candidates=("onnxruntime", "openvino", "torch", "torch_compile"))
    choice = choose(cfg, measure)
    assert choice.backend == "torch_compile" and "openvino" not in choice.timings_ms


def test_bf16_is_a_hint_the_other_backends_are_timed_as_they_run_in_fp32(tmp_path):
    measure = Stopwatch(times={"onnxruntime": 12.0, "openvino": 14.0, "torch": 30.0})
    choice = choose(EngineConfig(cache_dir=tmp_path, precision="bf16"), measure)
    assert measure.calls == ["onnxruntime", "openvino", "torch"] and choice.backend == "onnxruntime"
    assert EngineConfig(backend="onnxruntime", precision="bf16").precision == "fp32"  # what runs; no error


def test_a_choice_timed_under_load_or_long_ago_is_timed_again(tmp_path):
    cfg = EngineConfig(cache_dir=tmp_path)
    loaded = choose(cfg, Stopwatch(), now=1000.0, load=3.5)
    assert loaded.reason == "measured" and loaded.load_per_core == 3.5 and "3.50/core" in loaded.describe()
    again = Stopwatch()
    choice = choose(cfg, again, now=1100.0, load=0.2)
    assert again.calls and choice.reason == "measured (cached choice made under load (3.50/core))"
    quiet = Stopwatch()
    assert choose(cfg, quiet, now=1200.0).reason == "cached measurement" and quiet.calls == []
    old = Stopwatch()
    assert "days old" in choose(cfg, old, now=1100.0 + 8 * 86400).reason and old.calls


def test_candidates_are_timed_in_interleaved_rounds_on_the_sample_pair():
    from ivif_ros.engines.selection import time_engines

    calls = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def infer(self, ir, vis):
            assert ir.shape == vis.shape == (1, 1, 64, 64) and ir.dtype == "float32"
            calls.append(self.name)

    timings = time_engines({"a": Recorder("a"), "b": Recorder("b")}, (64, 64), runs=3, warmup=1)
    assert set(timings) == {"a", "b"} and all(t >= 0 for t in timings.values())
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up each, then one call of each per round


def test_auto_stops_timing_a_candidate_that_cannot_win():
    import time

    from ivif_ros.engines.selection import PRUNE_AFTER, time_engines

    calls = []

    class Sleeper:
        def __init__(self, name, seconds):
            self.name, self.seconds = name, seconds

        def infer(self, ir, vis):
            calls.append(self.name)
            time.sleep(self.seconds)

    timings = time_engines(
        {"fast": Sleeper("fast", 0.001), "slow": Sleeper("slow", 0.05)}, (64, 64), runs=6, warmup=0, prune=True
    )
    assert calls.count("slow") == PRUNE_AFTER and calls.count("fast") == 6
    assert timings["slow"] > timings["fast"]


def test_no_runnable_candidate_is_a_clear_error(tmp_path):
    with pytest.raises(BackendUnavailable, match="install onnxruntime or openvino"):
        choose(EngineConfig(cache_dir=tmp_path), Stopwatch(missing=set(TIMES)))


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT can run here, so its missing-package error cannot occur")
def test_missing_tensorrt_names_the_packages_to_install(tmp_path):
    with pytest.raises(BackendUnavailable, match=r"torch_tensorrt.*pip install torch-tensorrt tensorrt"):
        require_backend("tensorrt")
    with pytest.raises(BackendUnavailable, match="backend 'tensorrt' needs"):
        create_engine(__import__("torch").nn.Conv2d(1, 1, 1), EngineConfig(backend="tensorrt", cache_dir=tmp_path))


def test_bad_config_values_name_the_field():
    with pytest.raises(ConfigError, match="engine.backend: unknown backend 'tflite'"):
        EngineConfig(backend="tflite")
    with pytest.raises(ConfigError, match="engine.precision: 'fp16' is not supported by backend 'onnxruntime'"):
        EngineConfig(backend="onnxruntime", precision="fp16")
    with pytest.raises(ConfigError, match="outside min_size"):
        EngineConfig(dynamic=True, width=2000, height=480)


def test_create_engine_auto_measures_once_then_reuses_the_choice(tmp_path, caplog, monkeypatch):
    """End to end on the real CPU backends with a small student and a 64x64 frame."""
    import logging

    import torch

    from ivif_ros.engines import selection

    monkeypatch.setattr(selection, "LOADED_PER_CORE", float("inf"))  # this shared machine is always loaded

    from ivif_ros.models.student import build_student

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_student().eval()
    cfg = EngineConfig(backend="auto", width=64, height=64, threads=1, auto_runs=1, cache_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="ivif_ros.engines"):
        first = create_engine(model, cfg, tensorrt_available=False)
        second = create_engine(model, cfg, tensorrt_available=False)
    assert first.name in cfg.auto_candidates and second.name == first.name
    choices = [r.getMessage() for r in caplog.records if r.getMessage().startswith("engine: using")]
    assert "(measured:" in choices[0] and "(cached measurement" in choices[1]


def test_bench_times_a_weights_file_with_the_backends_of_its_architecture(tmp_path):
    """``ivif bench --models PATH``: a student file (here one with a 1/16 stage) is timed on every
    student backend, ONNX Runtime included, and the report names the file, not the shipped weights."""
    import importlib.util

    import torch

    from ivif_ros.engines.benchmark import DEFAULT_BACKENDS, PARTS, run_benchmark
    from ivif_ros.core.pipeline import DEFAULT_DETECTOR
    from ivif_ros.models import build_student
    from ivif_ros.weights import save_model

    torch.manual_seed(0)
    path = save_model(build_student({"blocks16": 2}), tmp_path / "p", {})
    rows, conditions = run_benchmark(
        [str(path)], [(64, 64)], runs=1, warmup=0, progress=False, cache_dir=tmp_path / "cache"
    )
    timed = {(r.backend, r.precision) for r in rows}
    available = {b for b in ("onnxruntime", "openvino") if importlib.util.find_spec(b)}
    assert timed == {(b, p) for b, p in DEFAULT_BACKENDS["student"] if b == "torch" or b in available}
    assert conditions["weights"][str(path)] == f"weights file {path}"
    # every backend has the three parts; the detector alone is named by its weights
    assert {(r.part, r.backend, r.precision) for r in rows} == {(part, b, p) for part in PARTS for b, p in timed}
    assert {r.model for r in rows if r.part == "detector"} == {DEFAULT_DETECTOR}
    assert {r.model for r in rows if r.part == "fusion+detector"} == {f"{path}+{DEFAULT_DETECTOR}"}
