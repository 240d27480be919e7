"""PyTorch eager and ``torch.compile`` engines (the reference every other backend is compared to)."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from ivif_ros.engines.base import Engine, model_io

log = logging.getLogger(__name__)


class TorchEngine(Engine):
    """Eager PyTorch on CPU, channels_last (oneDNN's fast convolution layout), inference mode."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, threads: int = 0):
        """``threads`` > 0 sets torch's intra-op pool (process-wide: torch has only one).

        On a loaded 2-core machine 2 OpenMP threads wait on each other at every barrier:
        the student took 200-900 ms per 640x480 frame with 2 threads and 45-50 ms with 1
        (load average 3.5). With 0 torch keeps its default (all cores).
        """
        if threads:
            torch.set_num_threads(threads)
        self.io = model_io(model)
        self.model = model.eval().to(memory_format=torch.channels_last)

    def _forward(self, *inputs: torch.Tensor):
        return self.model(*inputs)

    def _run(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            outs = self._forward(*(torch.from_numpy(x).contiguous(memory_format=torch.channels_last) for x in inputs))
        if isinstance(outs, torch.Tensor):  # a single-output model (the detector)
            outs = (outs,)
        return tuple(o.float().contiguous().numpy() for o in outs)


class TorchCompileEngine(TorchEngine):
    """``torch.compile`` (Inductor). Compiles lazily on the first frame, which takes ~30 s on 2 cores."""

    name = "torch_compile"

    def __init__(self, model: torch.nn.Module, threads: int = 0):
        super().__init__(model, threads)
        # dynamic=False: one specialised graph per frame size; a size change recompiles (logged by dynamo).
        self.compiled = torch.compile(self.model, dynamic=False)
        self._compiled_once = False

    def _forward(self, *inputs: torch.Tensor):
        if self._compiled_once:
            return self.compiled(*inputs)
        log.info("torch_compile: compiling the model on the first frame %s; this takes ~30 s", tuple(inputs[0].shape))
        start = time.perf_counter()
        outs = self.compiled(*inputs)
        self._compiled_once = True
        log.info("torch_compile: compiled in %.1f s", time.perf_counter() - start)
        return outs
