"""Engine configuration: which backend, which precision, which frame size.

One dataclass shared by the node parameters, the CLI and the benchmark, so that
every caller builds engines the same way. ``validate()`` turns a bad value into
a ``ConfigError`` that names the field and lists what is allowed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ivif_ros.errors import ConfigError

#: Backends that ``create_engine`` can build, plus ``auto``.
BACKENDS = ("auto", "torch", "torch_compile", "onnxruntime", "openvino", "tensorrt")

#: Precisions each backend can run. bf16 is an OpenVINO CPU inference hint;
#: fp16 only pays off on a GPU (TensorRT).
PRECISIONS = {
    "torch": ("fp32",),
    "torch_compile": ("fp32",),
    "onnxruntime": ("fp32",),
    "openvino": ("fp32", "bf16"),
    "tensorrt": ("fp32", "fp16"),
}

#: Environment variable that moves the engine/selection cache (tests, read-only homes).
CACHE_DIR_ENV = "IVIF_ROS_CACHE_DIR"

#: Model input sides must be multiples of this (five stride-2 stages in the models).
SIZE_MULTIPLE = 32


def default_cache_dir() -> Path:
    """``$IVIF_ROS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/ivif_ros`` or ``~/.cache/ivif_ros``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ivif_ros"


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / cgroup cpusets), not the host's total."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def padded(size: int) -> int:
    """Round ``size`` up to the model's ``SIZE_MULTIPLE``."""
    return -(-size // SIZE_MULTIPLE) * SIZE_MULTIPLE


@dataclass
class EngineConfig:
    """How to run a model.

    ``width``/``height`` are the camera frame size; engines are built for the
    padded size (multiples of 32). With ``dynamic`` the engine accepts any frame
    between ``min_size`` and ``max_size`` (``(height, width)``, TensorRT profile;
    ONNX Runtime is always shape-dynamic, OpenVINO keeps a dynamic model).
    """

    backend: str = "auto"
    #: bf16 is a hint: OpenVINO runs it (natively on AVX512-BF16/AMX CPUs, in f32 elsewhere),
    #: the other backends run fp32. The student keeps its fusion metrics in bf16 (docs/nodes.md).
    precision: str = "bf16"
    width: int = 640
    height: int = 480
    dynamic: bool = False
    min_size: tuple[int, int] = (256, 320)
    max_size: tuple[int, int] = (1024, 1280)
    #: CPU threads of every CPU backend (torch: process-wide); 0 means all usable cores
    #: (torch: its default). 1 is often faster on a machine shared with other busy processes.
    threads: int = 0
    #: Where exported ONNX files, TensorRT engines and the auto choice are cached.
    cache_dir: Path = field(default_factory=default_cache_dir)
    #: CPU backends that ``auto`` times; torch_compile is left out by default
    #: because compiling costs ~30 s before the first frame.
    auto_candidates: tuple[str, ...] = ("onnxruntime", "openvino", "torch")
    #: Timed runs per candidate during auto-selection (after two warm-up runs).
    auto_runs: int = 10

    def __post_init__(self) -> None:
        if self.precision == "bf16" and self.backend in PRECISIONS and "bf16" not in PRECISIONS[self.backend]:
            self.precision = "fp32"  # bf16 is a hint: a backend without it runs fp32
        self.cache_dir = Path(self.cache_dir).expanduser()
        self.min_size = tuple(self.min_size)
        self.max_size = tuple(self.max_size)
        self.auto_candidates = tuple(self.auto_candidates)
        self.validate()

    @property
    def input_hw(self) -> tuple[int, int]:
        """Padded model input size ``(H, W)`` for the configured frame."""
        return padded(self.height), padded(self.width)

    @property
    def num_threads(self) -> int:
        return self.threads or usable_cores()

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"engine.backend: unknown backend '{self.backend}'; choose one of {', '.join(BACKENDS)}")
        allowed = (
            sorted({p for ps in PRECISIONS.values() for p in ps})
            if self.backend == "auto"
            else PRECISIONS[self.backend]
        )
        if self.precision not in allowed and self.precision != "bf16":
            raise ConfigError(
                f"engine.precision: '{self.precision}' is not supported by backend '{self.backend}'; "
                f"choose one of {', '.join(allowed)}"
            )
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"engine.width/height must be positive, got {self.width}x{self.height}")
        for name, (h, w) in (("min_size", self.min_size), ("max_size", self.max_size)):
            if h <= 0 or w <= 0 or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
                raise ConfigError(f"engine.{name}: ({h}, {w}) must be positive multiples of {SIZE_MULTIPLE}")
        if self.dynamic:
            h, w = self.input_hw
            if not (self.min_size[0] <= h <= self.max_size[0] and self.min_size[1] <= w <= self.max_size[1]):
                raise ConfigError(
                    f"engine: padded frame {h}x{w} lies outside min_size {self.min_size} .. max_size {self.max_size}; "
                    "widen the range or set dynamic: false"
                )
        unknown = [c for c in self.auto_candidates if c not in PRECISIONS]
        if unknown:
            raise ConfigError(
                f"engine.auto_candidates: unknown backend(s) {unknown}; choose from {', '.join(PRECISIONS)}"
            )
        if self.threads < 0 or self.auto_runs < 1:
            raise ConfigError("engine.threads must be >= 0 and engine.auto_runs >= 1")
