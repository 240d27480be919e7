"""The one interface every inference backend implements.

An ``Engine`` takes the two model inputs of docs/contracts.md (``ir``, ``vis``:
``(N, 1, H, W)`` float32 in [0, 1], H and W multiples of 32) and returns the
four model outputs as numpy arrays, in contract order.
"""
from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np

from ivif_ros.errors import BackendUnavailable, InputError

INPUT_NAMES = ("ir", "vis")
OUTPUT_NAMES = ("fused", "seg_logits", "det_heatmap", "det_box")

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
    det_heatmap: np.ndarray  # (N, K, H/4, W/4), after sigmoid
    det_box: np.ndarray  # (N, 4, H/4, W/4): dx, dy, log w, log h (cells)


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


def as_input_array(x, name: str) -> np.ndarray:
    """Accept a numpy array or torch tensor ``(N, 1, H, W)`` and return contiguous float32 numpy."""
    if not isinstance(x, np.ndarray):
        x = x.detach().cpu().numpy()
    if x.ndim != 4 or x.shape[1] != 1:
        raise InputError(f"model input '{name}': expected shape (N, 1, H, W), got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


class Engine(ABC):
    """A loaded model on one backend. ``name`` and ``precision`` are for logs and reports."""

    name: str
    precision: str = "fp32"

    def infer(self, ir, vis) -> ModelOutputs:
        """Run the model on ``ir``/``vis`` ``(N, 1, H, W)`` float32 in [0, 1]."""
        ir_arr = as_input_array(ir, "ir")
        vis_arr = as_input_array(vis, "vis")
        if ir_arr.shape != vis_arr.shape:
            raise InputError(f"model inputs 'ir' {ir_arr.shape} and 'vis' {vis_arr.shape} must have the same shape")
        if ir_arr.shape[2] % 32 or ir_arr.shape[3] % 32:
            raise InputError(f"model input size {ir_arr.shape[2:]} must be multiples of 32; pad it (core.preprocess)")
        return ModelOutputs(*self._run(ir_arr, vis_arr))

    @abstractmethod
    def _run(self, ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, ...]:
        """Backend-specific inference on validated float32 arrays."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, precision={self.precision!r})"
