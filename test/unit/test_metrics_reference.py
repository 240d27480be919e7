"""Agreement of the vectorised metrics with the literal CDDFuse evaluator (test/support/reference)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ivif_ros.metrics.fusion import METRIC_NAMES, fusion_metrics
from metrics_images import natural_pair

pytest.importorskip("skimage")
pytest.importorskip("sklearn")


def _load_reference():
    path = Path(__file__).resolve().parents[1] / "support" / "reference" / "cddfuse_evaluator.py"
    spec = importlib.util.spec_from_file_location("cddfuse_evaluator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _load_reference()


def _fusions(ir, vis):
    rng = np.random.default_rng(7)
    blend = 0.6 * ir + 0.4 * vis + rng.normal(0, 4, ir.shape)
    return {
        "max": np.maximum(ir, vis),
        "mean": (ir.astype(np.float64) + vis) / 2,
        "noisy_blend": blend,
    }


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["max", "mean", "noisy_blend"])
def test_cddfuse_variant_agrees_with_reference_to_1e_3(seed, method):
    ir, vis = natural_pair(96, 128, seed=seed)
    fused = np.clip(np.rint(_fusions(ir, vis)[method]), 0, 255).astype(np.uint8)
    ours = fusion_metrics(fused, ir, vis, variant="cddfuse")
    # CDDFuse reads images as float32 grey with integer values; do the same for the reference.
    ref = REFERENCE.all_metrics(*(x.astype(np.float32) for x in (fused, ir, vis)))
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(float(ref[name]), abs=1e-3), name
