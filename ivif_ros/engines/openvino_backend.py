"""OpenVINO CPU engine, f32 or bf16 (``INFERENCE_PRECISION_HINT``), latency-tuned."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ivif_ros.engines.base import FUSION_IO, Engine, ModelIO, model_io
from ivif_ros.errors import InputError

log = logging.getLogger(__name__)

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


#: Size of the example frame used to trace a PyTorch model; the converted model keeps H and W
#: symbolic, and a small frame makes tracing several times faster than a camera-sized one.
TRACE_HW = (256, 320)


def read_model(source: Path | torch.nn.Module):
    """An ``openvino.Model`` (symbolic H/W) from an ONNX file, or converted straight from PyTorch.

    The PyTorch route serves models the ONNX exporter cannot write (the teacher's FFT);
    it traces the model, which takes tens of seconds and is not cached.
    """
    import openvino as ov

    if isinstance(source, Path):
        return ov.Core().read_model(str(source))
    log.info("openvino: converting %s from PyTorch directly (tens of seconds)", type(source).__name__)
    start = time.perf_counter()
    model = ov.convert_model(source.eval(), example_input=model_io(source).example(*TRACE_HW))
    log.info("openvino: converted in %.1f s", time.perf_counter() - start)
    return model


class OpenVinoEngine(Engine):
    """Compiles the model for one frame size on the CPU.

    A static shape lets OpenVINO pick its fastest kernels, so the model is
    reshaped to the frame size once at start-up; a later frame of another size
    reshapes and recompiles (logged, ~1 s) rather than failing. With
    ``dynamic=True`` the model keeps symbolic H/W instead.
    Inputs and outputs are addressed by position (``io`` order): models
    converted from PyTorch carry no output names.
    """

    name = "openvino"

    def __init__(
        self,
        source: Path | torch.nn.Module,
        input_hw: tuple[int, int],
        precision: str,
        threads: int,
        dynamic: bool = False,
        io: ModelIO = FUSION_IO,
    ):
        import openvino as ov

        self.io = io
        self.precision = precision
        self.dynamic = dynamic
        self._core = ov.Core()
        self._model = read_model(source)
        # Explicit even for f32: on CPUs with AVX512-BF16/AMX, OpenVINO's default CPU precision is bf16.
        self._properties = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "INFERENCE_NUM_THREADS": threads,
        }
        self._compiled_hw: tuple[int, int] | None = None
        self._compile(input_hw)

    def _compile(self, hw: tuple[int, int]) -> None:
        if not self.dynamic:
            self._model.reshape({i: list(shape) for i, shape in enumerate(self.io.shapes(*hw))})
        compiled = self._core.compile_model(self._model, "CPU", self._properties)
        self._request = compiled.create_infer_request()
        self._compiled_hw = hw

    def _run(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        first = inputs[0]
        hw = first.shape[2:]
        if not self.dynamic and (first.shape[0] != 1 or hw != self._compiled_hw):
            if first.shape[0] != 1:
                raise InputError(
                    f"openvino engine: batch size {first.shape[0]} needs engine.dynamic: true "
                    "(the static model is batch 1)"
                )
            log.warning("openvino: frame size changed %s -> %s; reshaping and recompiling", self._compiled_hw, hw)
            self._compile(tuple(hw))
        self._request.infer(list(inputs))
        # The request reuses its output buffers on the next call, so hand out copies.
        return tuple(self._request.get_output_tensor(i).data.copy() for i in range(len(self.io.outputs)))
