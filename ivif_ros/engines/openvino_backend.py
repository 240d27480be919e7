"""OpenVINO CPU engine, f32 or bf16 (``INFERENCE_PRECISION_HINT``), latency-tuned."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ivif_ros.engines.base import INPUT_NAMES, OUTPUT_NAMES, Engine
from ivif_ros.errors import InputError

log = logging.getLogger(__name__)

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoEngine(Engine):
    """Reads the ONNX export and compiles it for one frame size.

    A static shape lets OpenVINO pick its fastest kernels, so the model is
    reshaped to the frame size once at start-up; a later frame of another size
    reshapes and recompiles (logged, ~1 s) rather than failing. With
    ``dynamic=True`` the model keeps symbolic H/W instead.
    """

    name = "openvino"

    def __init__(self, onnx_path: Path, input_hw: tuple[int, int], precision: str, threads: int, dynamic: bool = False):
        import openvino as ov

        self.precision = precision
        self.dynamic = dynamic
        self._core = ov.Core()
        self._model = self._core.read_model(str(onnx_path))
        self._properties = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "INFERENCE_NUM_THREADS": threads,
        }
        self._compiled_hw: tuple[int, int] | None = None
        self._compile(input_hw)

    def _compile(self, hw: tuple[int, int]) -> None:
        if not self.dynamic:
            self._model.reshape({name: [1, 1, *hw] for name in INPUT_NAMES})
        compiled = self._core.compile_model(self._model, "CPU", self._properties)
        self._request = compiled.create_infer_request()
        self._outputs = [compiled.output(name) for name in OUTPUT_NAMES]
        self._compiled_hw = hw

    def _run(self, ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, ...]:
        hw = ir.shape[2:]
        if not self.dynamic and (ir.shape[0] != 1 or hw != self._compiled_hw):
            if ir.shape[0] != 1:
                raise InputError(f"openvino engine: batch size {ir.shape[0]} needs engine.dynamic: true (the static model is batch 1)")
            log.warning("openvino: frame size changed %s -> %s; reshaping and recompiling", self._compiled_hw, hw)
            self._compile(tuple(hw))
        self._request.infer({"ir": ir, "vis": vis})
        # The request reuses its output buffers on the next call, so hand out copies.
        return tuple(self._request.get_tensor(o).data.copy() for o in self._outputs)
