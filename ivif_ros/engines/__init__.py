"""Inference backends behind one interface (``Engine``), their caches and ``auto`` selection.

Typical use::

    from ivif_ros.engines import EngineConfig, create_engine
    engine = create_engine("student", EngineConfig(backend="auto", width=640, height=480))
    fused, seg_logits = engine.infer(ir, vis)
"""

from ivif_ros.engines.base import (
    FUSION_IO,
    INPUT_NAMES,
    OUTPUT_NAMES,
    Engine,
    ModelIO,
    ModelOutputs,
    model_io,
    require_backend,
    tensorrt_available,
)
from ivif_ros.engines.config import BACKENDS, PRECISIONS, EngineConfig
from ivif_ros.engines.factory import build_backend, create_engine

__all__ = [
    "BACKENDS",
    "FUSION_IO",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "PRECISIONS",
    "Engine",
    "EngineConfig",
    "ModelIO",
    "ModelOutputs",
    "build_backend",
    "create_engine",
    "model_io",
    "require_backend",
    "tensorrt_available",
]
