"""Fingerprints that key the caches: model weights, host CPU, package versions.

A cached artefact (exported ONNX, TensorRT engine, auto-selected backend) is only
valid for the exact weights, shapes and software that produced it; these
helpers make those identities explicit and cheap to compute.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform

import torch

from ivif_ros.engines.config import usable_cores


def model_hash(model: torch.nn.Module) -> str:
    """SHA-256 over the class name and every state_dict tensor (name, dtype, shape, bytes).

    Hashing the live tensors (not a file) means a model loaded from any path, or
    built in a test, gets the same key as long as its weights are the same.
    """
    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)  # 1-D: view() cannot reinterpret 0-d tensors
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def package_versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (``"missing"`` for the absent ones)."""
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "missing"
    return versions


def cpu_description() -> str:
    """CPU model name and core count, e.g. ``'AMD EPYC x2'`` (timings depend on both)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} x{usable_cores()}"


def gpu_name() -> str:
    """Name of CUDA device 0, or ``'none'``."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
