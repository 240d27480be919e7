"""PyTorch eager and ``torch.compile`` engines (the reference every other backend is compared to)."""
from __future__ import annotations

import logging
import time

import numpy as np
import torch

from ivif_ros.engines.base import Engine

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
        self.model = model.eval().to(memory_format=torch.channels_last)

    def _forward(self, ir: torch.Tensor, vis: torch.Tensor):
        return self.model(ir, vis)

    def _run(self, ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            outs = self._forward(
                torch.from_numpy(ir).contiguous(memory_format=torch.channels_last),
                torch.from_numpy(vis).contiguous(memory_format=torch.channels_last),
            )
        return tuple(o.float().contiguous().numpy() for o in outs)


class TorchCompileEngine(TorchEngine):
    """``torch.compile`` (Inductor). Compiles lazily on the first frame, which takes ~30 s on 2 cores."""

    name = "torch_compile"

    def __init__(self, model: torch.nn.Module, threads: int = 0):
        super().__init__(model, threads)
        # dynamic=False: one specialised graph per frame size; a size change recompiles (logged by dynamo).
        self.compiled = torch.compile(self.model, dynamic=False)
        self._compiled_once = False

    def _forward(self, ir: torch.Tensor, vis: torch.Tensor):
        if self._compiled_once:
            return self.compiled(ir, vis)
        log.info("torch_compile: compiling the model on the first frame %s; this takes ~30 s", tuple(ir.shape))
        start = time.perf_counter()
        outs = self.compiled(ir, vis)
        self._compiled_once = True
        log.info("torch_compile: compiled in %.1f s", time.perf_counter() - start)
        return outs
