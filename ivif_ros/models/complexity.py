"""Count multiply-accumulates (MACs) of a forward pass with forward hooks.

Counted: ``Conv2d`` (incl. grouped/depthwise), ``Linear``, and the two attention matmuls
(QK^T and AV) of ``teacher.Attention``. Element-wise ops, norms, resizes and FFTs are not
counted; they are a few percent of these nets' compute.
"""

from __future__ import annotations

import torch
from torch import nn

from ivif_ros.models.teacher import Attention


def _conv_macs(m: nn.Conv2d, inp, out) -> int:
    k = m.kernel_size[0] * m.kernel_size[1]
    return out.numel() * (m.in_channels // m.groups) * k


def _linear_macs(m: nn.Linear, inp, out) -> int:
    return out.numel() * m.in_features


def _attention_macs(m: Attention, inp, out) -> int:
    x, y = inp
    n, lq, c = x.shape
    return 2 * n * lq * y.shape[1] * c  # QK^T and AV, summed over heads


_COUNTERS = {nn.Conv2d: _conv_macs, nn.Linear: _linear_macs, Attention: _attention_macs}


@torch.no_grad()
def count_macs(model: nn.Module, height: int = 480, width: int = 640) -> int:
    """MACs of ``model(ir, vis)`` for one (1, 1, height, width) pair."""
    total = 0

    def hook(counter):
        def fn(m, inp, out):
            nonlocal total
            total += counter(m, inp, out)

        return fn

    handles = [
        m.register_forward_hook(hook(counter))
        for m in model.modules()
        for cls, counter in _COUNTERS.items()
        if type(m) is cls
    ]
    was_training = model.training
    try:
        model.eval()
        x = torch.rand(1, 1, height, width)
        model(x, x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
