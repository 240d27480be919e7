"""TensorRT via torch_tensorrt (dynamo): parity with eager, static/dynamic shapes, engine cache reuse.

Runs only where a CUDA GPU and an importable torch_tensorrt exist; the cache logic
itself is covered without TensorRT in test_engines_cache.py.
"""

import numpy as np
import pytest
import torch

from ivif_ros.engines import EngineConfig, build_backend, require_backend
from ivif_ros.engines.cache import ArtifactCache
from ivif_ros.engines.fingerprint import gpu_name, model_hash, package_versions
from ivif_ros.engines.tensorrt_backend import engine_cache_key, engine_slot
from ivif_ros.errors import BackendUnavailable


def _why_unavailable() -> str | None:
    try:
        require_backend("tensorrt")
    except BackendUnavailable as exc:
        return f"TensorRT tests need CUDA and torch_tensorrt: {exc}"
    return None


UNAVAILABLE = _why_unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")

HW = (256, 320)


@pytest.fixture(scope="module")
def student():
    from ivif_ros.models.student import build_student

    torch.manual_seed(0)
    return build_student().eval()


def frame(hw=HW, seed=0):
    return np.random.default_rng(seed).random((1, 1, *hw), dtype=np.float32)


def eager(student, x):
    return build_backend("torch", student, EngineConfig(backend="torch"), "ref").infer(x, x)


@pytest.mark.parametrize("precision,tol", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_static_engine_matches_eager(student, tmp_path, precision, tol):
    cfg = EngineConfig(backend="tensorrt", precision=precision, height=HW[0], width=HW[1], cache_dir=tmp_path)
    x = frame()
    out = build_backend("tensorrt", student, cfg, model_hash(student)).infer(x, x)
    ref = eager(student, x)
    assert np.abs(out.fused - ref.fused).max() <= tol
    assert np.abs(out.seg_logits - ref.seg_logits).max() <= 10 * tol  # logits are unbounded: 10x


def test_dynamic_engine_serves_sizes_within_its_profile(student, tmp_path):
    cfg = EngineConfig(
        backend="tensorrt",
        dynamic=True,
        height=HW[0],
        width=HW[1],
        min_size=(128, 160),
        max_size=(512, 640),
        cache_dir=tmp_path,
    )
    engine = build_backend("tensorrt", student, cfg, model_hash(student))
    for hw in ((128, 160), HW, (512, 640)):
        x = frame(hw)
        assert np.abs(engine.infer(x, x).fused - eager(student, x).fused).max() <= 1e-3


def test_saved_engine_is_reused_and_rebuilt_when_stale(student, tmp_path):
    cfg = EngineConfig(backend="tensorrt", height=HW[0], width=HW[1], cache_dir=tmp_path)
    weights = model_hash(student)
    build_backend("tensorrt", student, cfg, weights)
    cache = ArtifactCache(tmp_path / "engines")
    slot = engine_slot(weights, cfg)
    key = engine_cache_key(weights, cfg, package_versions("tensorrt", "torch_tensorrt", "torch"), gpu_name())
    assert cache.status(slot, key) == "hit"
    artefact, _ = cache.paths(slot)
    built_at = artefact.stat().st_mtime_ns
    build_backend("tensorrt", student, cfg, weights)  # loads, does not rebuild
    assert artefact.stat().st_mtime_ns == built_at
    artefact.write_bytes(artefact.read_bytes()[:100])  # truncated engine file
    x = frame()
    out = build_backend("tensorrt", student, cfg, weights).infer(x, x)
    assert cache.status(slot, key) == "hit" and artefact.stat().st_mtime_ns != built_at
    assert np.abs(out.fused - eager(student, x).fused).max() <= 1e-3


def test_detector_engine_matches_eager(tmp_path):
    """The detector (one 3-channel input, one output) through the same TensorRT path."""
    from ivif_ros.weights import load_model

    detector, _ = load_model("detector_coco")
    cfg = EngineConfig(backend="tensorrt", height=352, width=352, cache_dir=tmp_path)
    x = np.random.default_rng(0).random((1, 3, 352, 352), dtype=np.float32)
    (out,) = build_backend("tensorrt", detector, cfg, model_hash(detector)).infer(x)
    (ref,) = build_backend("torch", detector, EngineConfig(backend="torch"), "ref").infer(x)
    assert out.shape == (1, 85, 22, 22) and np.abs(out - ref).max() <= 1e-3
