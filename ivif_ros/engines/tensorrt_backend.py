"""TensorRT engine through torch_tensorrt's dynamo (``torch.export``) path, with an on-disk engine cache.

Building a TensorRT engine takes minutes on a Jetson, so the compiled program is
saved with ``torch_tensorrt.save(..., output_format="exported_program")`` and
reloaded with ``torch_tensorrt.load(path).module()`` while its cache key
(weights, shapes, precision, TensorRT / torch_tensorrt / torch versions, GPU)
still matches; see ``engines.cache`` for the stale/corrupt rules.

``import torch_tensorrt`` happens only inside this module's functions, because
it fails on machines without libnvinfer.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch

from ivif_ros.engines.base import FUSION_IO, Engine, ModelIO, model_io
from ivif_ros.engines.cache import ArtifactCache
from ivif_ros.engines.config import EngineConfig
from ivif_ros.engines.fingerprint import gpu_name, package_versions
from ivif_ros.errors import InputError

log = logging.getLogger(__name__)

_TORCH_PRECISION = {"fp32": torch.float32, "fp16": torch.float16}


def input_profile(config: EngineConfig, channels: int = 1) -> dict[str, tuple[int, int, int, int]]:
    """min/opt/max shapes ``(N, channels, H, W)`` of an input; all three equal for a static engine."""
    opt = (1, channels, *config.input_hw)
    if not config.dynamic:
        return {"min": opt, "opt": opt, "max": opt}
    return {"min": (1, channels, *config.min_size), "opt": opt, "max": (1, channels, *config.max_size)}


def engine_cache_key(
    weights_hash: str, config: EngineConfig, versions: dict[str, str], gpu: str, io: ModelIO = FUSION_IO
) -> dict:
    """Everything a serialized TensorRT engine depends on; any change forces a rebuild."""
    shapes = {name: input_profile(config, c) for name, c in zip(io.inputs, io.channels)}
    return {"model": weights_hash, "shapes": shapes, "precision": config.precision, "gpu": gpu, **versions}


def engine_slot(weights_hash: str, config: EngineConfig) -> str:
    """Cache file name: one slot per (weights, shape profile, precision); versions live in the key."""
    h, w = config.input_hw
    kind = "dyn" if config.dynamic else "static"
    return f"tensorrt-{weights_hash[:16]}-{h}x{w}-{kind}-{config.precision}.ep"


def build_tensorrt(model: torch.nn.Module, config: EngineConfig, path: Path) -> None:
    """Compile ``model`` with torch_tensorrt (dynamo IR) and save it as an ExportedProgram at ``path``."""
    import torch_tensorrt

    profiles = [input_profile(config, c) for c in model_io(model).channels]
    inputs = [
        torch_tensorrt.Input(min_shape=p["min"], opt_shape=p["opt"], max_shape=p["max"], dtype=torch.float32)
        for p in profiles
    ]
    log.info(
        "tensorrt: building %s engine for %s (minutes on embedded GPUs; cached afterwards)", config.precision, profiles
    )
    # A copy goes to the GPU: the caller's module stays on the CPU for the other backends.
    gpu_model = copy.deepcopy(model).eval().cuda()
    trt_gm = torch_tensorrt.compile(
        gpu_model, ir="dynamo", inputs=inputs, enabled_precisions={_TORCH_PRECISION[config.precision]}
    )
    torch_tensorrt.save(trt_gm, str(path), output_format="exported_program", inputs=inputs)


def load_tensorrt(path: Path) -> torch.nn.Module:
    import torch_tensorrt

    return torch_tensorrt.load(str(path)).module()


class TensorRTEngine(Engine):
    """A cached TensorRT program on CUDA device 0; numpy in, numpy out."""

    name = "tensorrt"

    def __init__(self, model: torch.nn.Module, config: EngineConfig, weights_hash: str):
        self.precision = config.precision
        self.io = model_io(model)
        self.profile = input_profile(config, self.io.channels[0])
        versions = package_versions("tensorrt", "torch_tensorrt", "torch")
        cache = ArtifactCache(config.cache_dir / "engines")
        self.module = cache.get_or_build(
            engine_slot(weights_hash, config),
            engine_cache_key(weights_hash, config, versions, gpu_name(), self.io),
            build=lambda p: build_tensorrt(model, config, p),
            load=load_tensorrt,
        )

    def _run(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        lo, hi = self.profile["min"], self.profile["max"]
        if not all(a <= s <= b for a, s, b in zip(lo, inputs[0].shape, hi)):
            raise InputError(
                f"tensorrt engine: input {inputs[0].shape} is outside the engine profile {lo}..{hi}; "
                "set engine.width/height to the camera size or enable engine.dynamic with a wider min/max_size"
            )
        with torch.inference_mode():
            outs = self.module(*(torch.from_numpy(x).cuda() for x in inputs))
        if isinstance(outs, torch.Tensor):  # a single-output model (the detector)
            outs = (outs,)
        return tuple(o.float().cpu().numpy() for o in outs)
