"""Every backend available here matches PyTorch eager on the student (256x320 input).

Tolerances (max abs difference to eager, per output):
* f32 backends (ONNX Runtime, OpenVINO f32, torch.compile): fused <= 1e-4, seg logits <= 1e-3
  (float re-association only; logits are unbounded so get 10x).
* OpenVINO bf16 (8-bit mantissa): fused <= 8e-2 (mean <= 4e-3), seg logits <= 0.25 and the
  class mask agrees on >= 98 % of pixels.

Uses the shipped trained weights (``ivif_ros/weights/{student,teacher}.safetensors``) when they
exist; otherwise a seeded randomly initialised model of the shipped architecture.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from ivif_ros.engines import EngineConfig, build_backend
from ivif_ros.engines.fingerprint import model_hash

WEIGHTS = Path(__file__).resolve().parents[2] / "ivif_ros" / "weights" / "student.safetensors"
HW = (256, 320)
F32_TOL = {"fused": 1e-4, "seg_logits": 1e-3}
# bf16 keeps 8 mantissa bits. On this noisy synthetic frame the shipped student's worst fused
# pixel moves by 0.053 (mean 0.0009): its gate sigmoid(20 * (ir - vis) + ...) amplifies rounding
# where ir ~ vis, which noise makes common. On the 12 MSRS train frames at 640x480 the worst is
# 1.6 grey levels (0.006), the mean 0.013 grey levels, and VIF/Qabf/SSIM move by < 1.3e-3.
# The mean bound below catches a systematic error the max allows.
BF16_TOL = {"fused": 8e-2, "seg_logits": 0.25}
BF16_MEAN_FUSED_TOL = 4e-3


@pytest.fixture(scope="module")
def student():
    torch.set_num_threads(1)
    if WEIGHTS.exists():
        from ivif_ros.weights import load_model

        return load_model("student")[0].eval()
    from ivif_ros.models.student import build_student

    torch.manual_seed(0)
    return build_student().eval()


@pytest.fixture(scope="module")
def frame():
    """A synthetic frame pair with smooth structure plus noise, in [0, 1]."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0 : HW[0], 0 : HW[1]] / np.float32(max(HW))
    ir = (0.5 + 0.4 * np.sin(9 * xx) * np.cos(7 * yy) + 0.05 * rng.standard_normal(HW)).clip(0, 1)
    vis = (0.3 + 0.6 * xx * yy + 0.05 * rng.standard_normal(HW)).clip(0, 1)
    return ir[None, None].astype(np.float32), vis[None, None].astype(np.float32)


@pytest.fixture(scope="module")
def reference(student, frame):
    return build_backend("torch", student, EngineConfig(backend="torch"), model_hash(student)).infer(*frame)


def run(student, frame, tmp_path_factory, backend, precision="fp32"):
    cfg = EngineConfig(
        backend=backend,
        precision=precision,
        height=HW[0],
        width=HW[1],
        threads=1,
        cache_dir=tmp_path_factory.mktemp("cache"),
    )
    engine = build_backend(backend, student, cfg, model_hash(student))
    assert (engine.name, engine.precision) == (backend, precision)
    return engine.infer(*frame)


def assert_close(outputs, reference, tolerances, stat: str = "max"):
    """Per output, the ``stat`` ('max' or 'mean') of the absolute difference is within its tolerance."""
    for name, tol in tolerances.items():
        got, ref = getattr(outputs, name), getattr(reference, name)
        assert got.shape == ref.shape and got.dtype == np.float32, name
        diff = float(getattr(np.abs(got - ref), stat)())
        assert diff <= tol, f"{name}: {stat} abs diff {diff:.3g} > {tol}"


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_f32_backends_match_eager(student, frame, reference, tmp_path_factory, backend):
    assert_close(run(student, frame, tmp_path_factory, backend), reference, F32_TOL)


def test_openvino_bf16_matches_eager_within_bf16_tolerance(student, frame, reference, tmp_path_factory):
    out = run(student, frame, tmp_path_factory, "openvino", "bf16")
    assert_close(out, reference, BF16_TOL)
    assert_close(out, reference, {"fused": BF16_MEAN_FUSED_TOL}, stat="mean")
    agree = (out.seg_logits.argmax(1) == reference.seg_logits.argmax(1)).mean()
    assert agree >= 0.98, f"bf16 class mask agrees on only {agree:.1%} of cells"


def test_reference_outputs_follow_the_contract(reference):
    h, w = HW
    assert reference.fused.shape == (1, 1, h, w)
    assert reference.seg_logits.shape == (1, 4, h // 4, w // 4)
    assert 0 <= reference.fused.min() and reference.fused.max() <= 1
    assert len(reference) == 2  # fused and seg_logits: the student has no detection outputs


@pytest.mark.slow
def test_torch_compile_matches_eager(student):
    """Tiny 64x64 frame: compiling still costs ~30 s on 2 cores, most of it fixed overhead."""
    x = np.random.default_rng(2).random((1, 1, 64, 64), dtype=np.float32)
    ref = build_backend("torch", student, EngineConfig(backend="torch"), "unused").infer(x, x)
    out = build_backend("torch_compile", student, EngineConfig(backend="torch_compile"), "unused").infer(x, x)
    assert_close(out, ref, F32_TOL)


def test_onnx_runtime_serves_other_frame_sizes_and_openvino_reshapes(student, tmp_path_factory):
    """One dynamic ONNX export serves every size; OpenVINO's static model recompiles on a size change."""
    x = np.random.default_rng(3).random((1, 1, 96, 160), dtype=np.float32)
    ref = build_backend("torch", student, EngineConfig(backend="torch"), "unused").infer(x, x)
    for backend in ("onnxruntime", "openvino"):
        assert_close(run(student, (x, x), tmp_path_factory, backend), ref, F32_TOL)


# The teacher's semantic head is ill-conditioned in float32, whatever the runtime. Its frequency
# blocks feed the FFT phase, atan2(imag, real), to learned 1x1 convolutions. atan2 jumps by 2*pi on
# the negative real axis. Bins that lie on it (the four real bins of every channel, and bins of
# features with symmetric borders, where torch's FFT returns an exact 0 and OpenVINO's returns
# rounding noise) take phase +pi in one runtime and -pi in the other. The phase convolutions are not
# 2*pi-periodic, so a few cells of the semantic logits move: measured with the shipped teacher
# on this frame, max 0.23 (mean 0.021, outputs up to 3.2), class mask agreement 99.7 %. The fused image does not
# depend on the phase path that much: 5.6e-5. A wrong conversion (op semantics, layout, FFT
# norm) moves every cell at the scale of the outputs, which the mean bounds and the mask
# agreement catch. The fix is a continuous phase (the unit phasor spectrum / amplitude) at the
# teacher's next retraining; see docs/training.md.
TEACHER_F32_TOL = {"fused": 5e-4, "seg_logits": 0.5}
TEACHER_F32_MEAN_TOL = {"fused": 5e-5, "seg_logits": 0.05}


@pytest.fixture(scope="module")
def teacher():
    if WEIGHTS.with_name("teacher.safetensors").exists():
        from ivif_ros.weights import load_model

        return load_model("teacher")[0].eval()
    from ivif_ros.models.teacher import build_teacher

    torch.manual_seed(0)
    return build_teacher().eval()


def test_teacher_on_onnxruntime_is_a_clear_error(teacher, tmp_path):
    """The teacher's Fourier blocks (aten::fft_rfft2) have no ONNX export; the error says what to use."""
    from ivif_ros.engines.onnx_export import NotExportable

    with pytest.raises(NotExportable, match=r"fft_rfft2.*backend 'torch' or 'openvino'"):
        build_backend("onnxruntime", teacher, EngineConfig(backend="onnxruntime", cache_dir=tmp_path), "teacher")


@pytest.mark.slow
def test_teacher_on_openvino_converts_from_pytorch_and_matches_eager(teacher, tmp_path):
    """~40 s: OpenVINO traces the teacher itself (at 256x320) because ONNX cannot hold its FFT; run at 64x96."""
    x = np.random.default_rng(4).random((1, 1, 64, 96), dtype=np.float32)
    ref = build_backend("torch", teacher, EngineConfig(backend="torch"), "unused").infer(x, x)
    cfg = EngineConfig(backend="openvino", precision="fp32", width=96, height=64, threads=1, cache_dir=tmp_path)
    out = build_backend("openvino", teacher, cfg, "teacher").infer(x, x)
    assert_close(out, ref, TEACHER_F32_TOL)
    assert_close(out, ref, TEACHER_F32_MEAN_TOL, stat="mean")
    agree = (out.seg_logits.argmax(1) == ref.seg_logits.argmax(1)).mean()
    assert agree >= 0.99, f"teacher class mask agrees on only {agree:.1%} of cells"


def test_onnxruntime_runs_batches(student, tmp_path_factory):
    x = np.random.default_rng(5).random((2, 1, 64, 96), dtype=np.float32)
    ref = build_backend("torch", student, EngineConfig(backend="torch"), "unused").infer(x, x)
    assert_close(run(student, (x, x), tmp_path_factory, "onnxruntime"), ref, F32_TOL)


def test_a_failed_onnx_export_is_remembered(teacher, student, tmp_path):
    """Later attempts fail from the cached reason instead of re-tracing the model for seconds.

    Shown by asking again under the same weights hash with a model that *could* be
    exported: the cached verdict answers, so no export runs.
    """
    from ivif_ros.engines.cache import ArtifactCache
    from ivif_ros.engines.onnx_export import NotExportable, cached_onnx

    cache = ArtifactCache(tmp_path)
    with pytest.raises(NotExportable):
        cached_onnx(teacher, cache, "t" * 64)
    with pytest.raises(NotExportable, match="fft_rfft2"):
        cached_onnx(student, cache, "t" * 64)
    assert cached_onnx(student, cache, "s" * 64).exists()
