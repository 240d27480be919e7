"""The one interface every inference backend implements.

An ``Engine`` runs one model, described by its ``ModelIO``: named inputs ``(N, C, H, W)``
float32 (all of one size, H and W multiples of 32) and named outputs, returned as numpy
arrays in that order. The fusion models take the two inputs of docs/contracts.md (``ir``,
``vis``: ``(N, 1, H, W)`` in [0, 1]) and return two outputs (``ModelOutputs``); the
detector takes one BGR image ``(N, 3, H, W)`` and returns one map. A model declares its
I/O with the class attributes ``input_names``, ``input_channels`` and ``output_names``;
a model without them is a fusion model.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ivif_ros.errors import BackendUnavailable, InputError

INPUT_NAMES = ("ir", "vis")
OUTPUT_NAMES = ("fused", "seg_logits")


@dataclass(frozen=True)
class ModelIO:
    """Names and channel counts of a model's inputs (in call order) and its output names."""

    inputs: tuple[str, ...]
    channels: tuple[int, ...]
    outputs: tuple[str, ...]

    def example(self, height: int, width: int, batch: int = 1):
        """Random torch inputs of this shape (tracing, export)."""
        import torch

        return tuple(torch.rand(batch, c, height, width) for c in self.channels)

    def shapes(self, height: int, width: int, batch: int = 1) -> list[tuple[int, int, int, int]]:
        return [(batch, c, height, width) for c in self.channels]


#: The fusion models' contract (student, teacher).
FUSION_IO = ModelIO(INPUT_NAMES, (1, 1), OUTPUT_NAMES)


def model_io(model) -> ModelIO:
    """The I/O a model declares (``input_names``, ``input_channels``, ``output_names``), else ``FUSION_IO``."""
    if hasattr(model, "input_names"):
        return ModelIO(tuple(model.input_names), tuple(model.input_channels), tuple(model.output_names))
    return FUSION_IO


#: Python packages each backend imports, with the install hint shown when missing.
REQUIREMENTS = {
    "torch": (("torch", "pip install torch"),),
    "torch_compile": (("torch", "pip install torch"),),
    "onnxruntime": (("onnxruntime", "pip install onnxruntime==1.31.1"), ("onnx", "pip install onnx==1.23.2")),
    "openvino": (("openvino", "pip install openvino==2026.4.1"), ("onnx", "pip install onnx==1.23.2")),
    "tensorrt": (
        ("torch_tensorrt", "pip install torch-tensorrt tensorrt --extra-index-url https://pypi.nvidia.com"),
        ("tensorrt", "pip install tensorrt --extra-index-url https://pypi.nvidia.com"),
    ),
}


class ModelOutputs(NamedTuple):
    """Model outputs as numpy arrays, contract order (a plain tuple for callers that unpack)."""

    fused: np.ndarray  # (N, 1, H, W) fused Y in [0, 1]
    seg_logits: np.ndarray  # (N, C, H/4, W/4)


def require_backend(backend: str) -> None:
    """Raise ``BackendUnavailable`` naming the package to install if ``backend`` cannot be imported.

    ``find_spec`` is not enough for TensorRT: ``torch_tensorrt`` is often installed
    but fails to import without libnvinfer / CUDA, so that one is really imported.
    """
    for module, hint in REQUIREMENTS[backend]:
        if backend == "tensorrt":
            try:
                importlib.import_module(module)
            except Exception as exc:  # ImportError, OSError (missing libnvinfer), RuntimeError
                raise BackendUnavailable(
                    f"backend 'tensorrt' needs the Python package '{module}' and a CUDA GPU "
                    f"({hint}); importing it failed: {exc}"
                ) from exc
        elif importlib.util.find_spec(module) is None:
            raise BackendUnavailable(f"backend '{backend}' needs the Python package '{module}' ({hint})")
    if backend == "tensorrt":
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailable("backend 'tensorrt' needs a CUDA GPU, but torch.cuda.is_available() is False")


def tensorrt_available() -> bool:
    """True when TensorRT can run here (torch_tensorrt imports and a CUDA GPU is present)."""
    try:
        require_backend("tensorrt")
    except BackendUnavailable:
        return False
    return True


def as_input_array(x, name: str, channels: int) -> np.ndarray:
    """Accept a numpy array or torch tensor ``(N, channels, H, W)`` and return contiguous float32 numpy."""
    if not isinstance(x, np.ndarray):
        x = x.detach().cpu().numpy()
    if x.ndim != 4 or x.shape[1] != channels:
        raise InputError(f"model input '{name}': expected shape (N, {channels}, H, W), got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


class Engine(ABC):
    """A loaded model on one backend. ``name`` and ``precision`` are for logs and reports; ``io`` its I/O."""

    name: str
    precision: str = "fp32"
    io: ModelIO = FUSION_IO

    def infer(self, *inputs) -> tuple[np.ndarray, ...]:
        """Run the model on its inputs (fusion: ``ir``, ``vis`` ``(N, 1, H, W)`` float32 in [0, 1]).

        Returns ``ModelOutputs`` for a fusion model, else a tuple in ``io.outputs`` order.
        """
        io = self.io
        if len(inputs) != len(io.inputs):
            raise InputError(
                f"{self.name} engine: the model takes {len(io.inputs)} inputs {io.inputs}, got {len(inputs)}"
            )
        arrays = [as_input_array(x, name, c) for x, name, c in zip(inputs, io.inputs, io.channels)]
        first = arrays[0]
        for name, arr in zip(io.inputs[1:], arrays[1:]):
            if arr.shape[0] != first.shape[0] or arr.shape[2:] != first.shape[2:]:
                raise InputError(
                    f"model inputs '{io.inputs[0]}' {first.shape} and '{name}' {arr.shape} must have the "
                    "same batch and size"
                )
        if first.shape[2] % 32 or first.shape[3] % 32:
            raise InputError(f"model input size {first.shape[2:]} must be multiples of 32; pad it (core.preprocess)")
        outputs = self._run(*arrays)
        return ModelOutputs(*outputs) if io == FUSION_IO else tuple(outputs)

    @abstractmethod
    def _run(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """Backend-specific inference on validated float32 arrays (``io.inputs`` order)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, precision={self.precision!r})"
