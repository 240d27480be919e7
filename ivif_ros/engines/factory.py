"""``create_engine``: build the configured backend (or pick one with ``auto``) for a model."""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from ivif_ros.engines.base import Engine, model_io, require_backend, tensorrt_available as probe_tensorrt
from ivif_ros.engines.cache import ArtifactCache
from ivif_ros.engines.config import PRECISIONS, EngineConfig
from ivif_ros.engines.fingerprint import model_hash
from ivif_ros.engines.model_source import resolve_model
from ivif_ros.engines.onnx_export import NotExportable, cached_onnx
from ivif_ros.engines.selection import choose_backend, time_engines
from ivif_ros.errors import BackendUnavailable

log = logging.getLogger(__name__)


def build_backend(backend: str, model: torch.nn.Module, config: EngineConfig, weights_hash: str) -> Engine:
    """Build one named backend; ``BackendUnavailable`` (naming the package) if it cannot run here.

    A precision the backend lacks (bf16 outside OpenVINO) runs in fp32."""
    require_backend(backend)
    if config.precision not in PRECISIONS[backend]:
        config = replace(config, backend=backend, precision="fp32")
    if backend == "torch":
        from ivif_ros.engines.torch_backend import TorchEngine

        return TorchEngine(model, config.threads)
    if backend == "torch_compile":
        from ivif_ros.engines.torch_backend import TorchCompileEngine

        return TorchCompileEngine(model, config.threads)
    if backend == "tensorrt":
        from ivif_ros.engines.tensorrt_backend import TensorRTEngine

        return TensorRTEngine(model, config, weights_hash)
    cache = ArtifactCache(config.cache_dir / "engines")
    if backend == "onnxruntime":
        from ivif_ros.engines.onnxruntime_backend import OnnxRuntimeEngine

        return OnnxRuntimeEngine(cached_onnx(model, cache, weights_hash), config.num_threads, model_io(model))
    from ivif_ros.engines.openvino_backend import OpenVinoEngine

    try:
        source = cached_onnx(model, cache, weights_hash)
    except NotExportable as exc:
        log.info("openvino: no ONNX export (%s)", exc.__cause__)
        source = model
    return OpenVinoEngine(
        source, config.input_hw, config.precision, config.num_threads, config.dynamic, model_io(model)
    )


def create_engine(model_or_path, config: EngineConfig, *, tensorrt_available: bool | None = None) -> Engine:
    """Build the engine ``config`` asks for.

    ``model_or_path`` is an ``nn.Module`` or a name/path for ``ivif_ros.weights.load_model``.
    With ``backend: auto``, ``tensorrt_available`` overrides the probe (tests,
    or to keep TensorRT out); CPU candidates are timed once and the result cached.
    """
    model, _meta = resolve_model(model_or_path)
    weights_hash = model_hash(model)
    built: dict[str, Engine] = {}

    def measure_all(backends: list[str]) -> dict[str, float]:
        for backend in backends:
            try:
                built[backend] = build_backend(backend, model, config, weights_hash)
            except BackendUnavailable as exc:
                log.info("engine auto-selection: skipping %s: %s", backend, exc)
        return time_engines(built, config.input_hw, config.auto_runs, prune=True)

    if tensorrt_available is None:
        tensorrt_available = config.backend == "auto" and probe_tensorrt()
    choice = choose_backend(config, weights_hash, tensorrt_available=tensorrt_available, measure_all=measure_all)
    engine = built.get(choice.backend) or build_backend(choice.backend, model, config, weights_hash)
    built.clear()  # the losers' sessions and compiled models hold memory and threads
    engine.choice = choice  # the node shows it on /diagnostics
    log.info("engine: using %s, precision %s", choice.describe(), engine.precision)
    return engine
