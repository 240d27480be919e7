"""Export a model to ONNX (the common input of ONNX Runtime and OpenVINO).

Uses the TorchScript-based exporter (``dynamo=False``): it needs no extra
package (the dynamo exporter needs ``onnxscript``) and gives plain named
dynamic H/W axes that both runtimes accept.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ivif_ros.engines.base import model_io
from ivif_ros.engines.cache import ArtifactCache, key_digest, private_dir
from ivif_ros.engines.fingerprint import model_hash, package_versions
from ivif_ros.errors import BackendUnavailable

OPSET = 17


class NotExportable(BackendUnavailable):
    """The model uses an operator the ONNX exporter cannot write (e.g. the teacher's FFT)."""


def export_onnx(model: torch.nn.Module, path: Path, height: int, width: int, dynamic: bool = True) -> None:
    """Write ``model`` to ``path`` with its named inputs (fusion: ``ir``, ``vis`` ``(1, 1, H, W)``).

    With ``dynamic`` the batch, H and W axes are symbolic, so one file serves every frame size.
    """
    model = model.eval()
    io = model_io(model)
    example = io.example(height, width)
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in io.inputs}
    axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in io.outputs})
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter warns that it is deprecated on every call; the choice is deliberate (see module doc).
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            torch.onnx.export(
                model,
                example,
                str(path),
                dynamo=False,
                input_names=list(io.inputs),
                output_names=list(io.outputs),
                dynamic_axes=axes if dynamic else None,
                opset_version=OPSET,
                do_constant_folding=True,
            )
        except torch.onnx.errors.UnsupportedOperatorError as exc:
            raise NotExportable(
                f"{type(model).__name__} cannot be exported to ONNX: {exc}; "
                "run it with backend 'torch' or 'openvino' (which converts from PyTorch directly)"
            ) from exc


def cached_onnx(model: torch.nn.Module, cache: ArtifactCache, weights_hash: str | None = None) -> Path:
    """Path of a dynamic-shape ONNX export of ``model`` in ``cache``, exported on first use.

    A model that cannot be exported is remembered too (``<slot>.unsupported`` holding the key
    digest and the reason), so later starts raise ``NotExportable`` at once instead of
    re-tracing the model for seconds to fail the same way.
    """
    weights_hash = weights_hash or model_hash(model)
    key = {"model": weights_hash, "opset": OPSET, "axes": "batch,height,width", **package_versions("torch", "onnx")}
    slot = f"onnx-{weights_hash[:16]}.onnx"
    unsupported = cache.root / f"{slot}.unsupported"
    if unsupported.exists():
        digest, _, reason = unsupported.read_text().partition("\n")
        if digest == key_digest(key):
            raise NotExportable(reason)
    try:
        return cache.get_or_build(slot, key, build=lambda p: export_onnx(model, p, 256, 320), load=lambda p: p)
    except NotExportable as exc:
        private_dir(cache.root)
        unsupported.write_text(f"{key_digest(key)}\n{exc}")
        unsupported.chmod(0o600)
        raise
