"""ONNX Runtime engine on the CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ivif_ros.engines.base import FUSION_IO, Engine, ModelIO


class OnnxRuntimeEngine(Engine):
    """Runs a (dynamic-shape) ONNX export; intra-op threads = ``threads``, all graph optimisations on."""

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: int, io: ModelIO = FUSION_IO):
        import onnxruntime as ort

        self.io = io
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one model, sequential graph: extra inter-op threads only contend
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def _run(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(list(self.io.outputs), dict(zip(self.io.inputs, inputs))))
