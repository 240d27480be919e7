"""``ivif export``: write the model for ONNX Runtime, OpenVINO or TensorRT.

* ``onnx``: an ONNX file (fp32) with the model's named inputs and outputs (fusion models:
  ``ir``, ``vis`` -> ``fused, seg_logits``; the detector: ``image`` ->
  ``pred``); ``--dynamic`` makes H and W symbolic.
* ``openvino``: an OpenVINO IR (``.xml`` + ``.bin``), reshaped to the frame size unless
  ``--dynamic``; models ONNX cannot hold (the teacher's FFT) are converted from PyTorch. ``fp16`` compresses the stored weights; ``bf16`` is a run-time choice
  (``engine.precision: bf16``), so the IR is the fp32 one.
* ``tensorrt``: a torch_tensorrt ExportedProgram (``.ep``) for this GPU and TensorRT version,
  loadable with ``torch_tensorrt.load(path).module()``.

Each export except TensorRT is checked against PyTorch eager on a random frame and the
largest difference of each output is printed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ivif_ros.errors import ConfigError

FORMATS = ("onnx", "openvino", "tensorrt")
PRECISIONS = {"onnx": ("fp32",), "openvino": ("fp32", "fp16", "bf16"), "tensorrt": ("fp32", "fp16")}


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backend", choices=FORMATS, required=True, help="target runtime")
    p.add_argument(
        "--model", default="student", help="'student', 'teacher', 'detector_coco' or a path to <name>.safetensors"
    )
    p.add_argument("--width", type=int, default=640, help="frame width (padded to a multiple of 32)")
    p.add_argument("--height", type=int, default=480, help="frame height (padded to a multiple of 32)")
    p.add_argument("--dynamic", action="store_true", help="accept any frame size (TensorRT: 256x320 .. 1024x1280)")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    p.add_argument("--out", type=Path, required=True, help="output file (.onnx, .xml or .ep)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return p


def run(args) -> int:
    if args.precision not in PRECISIONS[args.backend]:
        raise ConfigError(
            f"--precision {args.precision} is not available for --backend {args.backend}; "
            f"choose one of {', '.join(PRECISIONS[args.backend])}"
        )
    from ivif_ros.engines.config import EngineConfig
    from ivif_ros.engines.model_source import resolve_model

    model, _meta = resolve_model(args.model)
    cfg = EngineConfig(
        backend="tensorrt" if args.backend == "tensorrt" else "torch",
        precision=args.precision if args.backend == "tensorrt" else "fp32",
        width=args.width,
        height=args.height,
        dynamic=args.dynamic,
    )
    h, w = cfg.input_hw
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.backend == "onnx":
        from ivif_ros.engines.onnx_export import export_onnx

        export_onnx(model, args.out, h, w, dynamic=args.dynamic)
        _report_parity(model, h, w, "onnxruntime", args.out)
    elif args.backend == "openvino":
        _export_openvino(model, args, h, w)
    else:
        from ivif_ros.engines.base import require_backend
        from ivif_ros.engines.tensorrt_backend import build_tensorrt

        require_backend("tensorrt")
        build_tensorrt(model, cfg, args.out)
    print(f"wrote {args.out} ({args.backend}, {args.precision}, {'dynamic' if args.dynamic else f'{h}x{w}'} input)")
    return 0


def _export_openvino(model, args, h: int, w: int) -> None:
    from ivif_ros.engines.base import model_io, require_backend
    from ivif_ros.engines.onnx_export import NotExportable, export_onnx
    from ivif_ros.engines.openvino_backend import read_model

    require_backend("openvino")
    import openvino as ov

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        try:
            export_onnx(model, onnx_path, h, w, dynamic=True)
            ov_model = read_model(onnx_path)
        except NotExportable:  # e.g. the teacher's FFT: convert from PyTorch instead
            ov_model = read_model(model)
    if not args.dynamic:
        ov_model.reshape({i: list(shape) for i, shape in enumerate(model_io(model).shapes(h, w))})
    ov.save_model(ov_model, str(args.out), compress_to_fp16=args.precision == "fp16")
    if args.precision == "bf16":
        print("note: bf16 is chosen when the model is compiled; run it with engine.precision: bf16")
    _report_parity(model, h, w, "openvino", args.out)


def _report_parity(model, h: int, w: int, runtime: str, path: Path) -> None:
    """Run the exported file once next to eager and print the largest difference of each output."""
    import numpy as np
    import torch

    from ivif_ros.engines.base import model_io

    io = model_io(model)
    rng = np.random.default_rng(0)
    xs = [rng.random(shape, dtype=np.float32) for shape in io.shapes(h, w)]
    with torch.inference_mode():
        ref = model(*(torch.from_numpy(x) for x in xs))
    ref = [t.numpy() for t in (ref if isinstance(ref, (tuple, list)) else (ref,))]
    if runtime == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(list(io.outputs), dict(zip(io.inputs, xs)))
    else:
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        result = compiled(xs)
        got = [result[compiled.outputs[i]] for i in range(len(io.outputs))]
    diffs = ", ".join(f"{name} {np.abs(g - r).max():.1e}" for name, g, r in zip(io.outputs, got, ref))
    print(f"check vs PyTorch eager ({runtime}, fp32), max abs diff: {diffs}")
