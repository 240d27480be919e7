"""``backend: auto``: TensorRT when it can run, else the fastest CPU backend, measured once and cached.

Timing every candidate costs a few seconds at start-up, so the winner is stored
in ``<cache_dir>/backend_choice.json`` under a slot per (model, input size,
precision) together with the key it was measured for (weights hash, CPU model
and core count, package versions, candidate list). A matching key reuses the
choice; any difference re-measures and overwrites the slot.
"""
from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ivif_ros.engines.base import Engine
from ivif_ros.engines.cache import key_digest
from ivif_ros.engines.config import PRECISIONS, EngineConfig
from ivif_ros.engines.fingerprint import cpu_description, package_versions
from ivif_ros.errors import BackendUnavailable

log = logging.getLogger(__name__)

CHOICE_FILE = "backend_choice.json"


@dataclass
class BackendChoice:
    backend: str
    #: why: "forced by config", "TensorRT available", "cached measurement" or "measured"
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        times = ", ".join(f"{b} {ms:.1f} ms" for b, ms in sorted(self.timings_ms.items(), key=lambda kv: kv[1]))
        return f"backend '{self.backend}' ({self.reason}{': ' + times if times else ''})"


def selection_key(weights_hash: str, config: EngineConfig, host: str) -> dict:
    """What a measured choice depends on: a change in any of these re-measures."""
    return {
        "model": weights_hash,
        "input_hw": list(config.input_hw),
        "precision": config.precision,
        "threads": config.num_threads,
        "host": host,
        "candidates": list(config.auto_candidates),
        **package_versions("torch", "onnxruntime", "openvino"),
    }


def choose_backend(
    config: EngineConfig,
    weights_hash: str,
    *,
    tensorrt_available: bool,
    measure: Callable[[str], float],
    cache_file: Path | None = None,
    host: str | None = None,
) -> BackendChoice:
    """Pick the backend for ``config``.

    ``measure(backend)`` returns milliseconds per frame, or raises
    ``BackendUnavailable`` for a backend that cannot run here (it is skipped).
    ``tensorrt_available`` is passed in (not probed here) so callers and tests
    decide it explicitly.
    """
    if config.backend != "auto":
        return BackendChoice(config.backend, "forced by config")
    if tensorrt_available and config.precision in PRECISIONS["tensorrt"]:
        return BackendChoice("tensorrt", "TensorRT available")

    cache_file = cache_file or config.cache_dir / CHOICE_FILE
    key = selection_key(weights_hash, config, host or cpu_description())
    h, w = config.input_hw
    slot = f"{weights_hash[:16]}-{h}x{w}-{config.precision}"
    entries = _read_entries(cache_file)
    cached = entries.get(slot)
    if cached and cached.get("key_digest") == key_digest(key):
        return BackendChoice(cached["backend"], "cached measurement", cached.get("timings_ms", {}))
    if cached:
        log.info("engine auto-selection: cached choice for %s is stale (software, host or model changed); re-measuring", slot)

    timings: dict[str, float] = {}
    for backend in config.auto_candidates:
        if config.precision not in PRECISIONS[backend]:
            continue
        try:
            timings[backend] = measure(backend)
        except BackendUnavailable as exc:
            log.info("engine auto-selection: skipping %s: %s", backend, exc)
    if not timings:
        raise BackendUnavailable(
            f"engine.backend auto: none of {list(config.auto_candidates)} can run precision '{config.precision}' here; "
            "install onnxruntime or openvino, or set engine.backend explicitly"
        )
    best = min(timings, key=timings.get)
    entries[slot] = {"key_digest": key_digest(key), "key": key, "backend": best, "timings_ms": timings}
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    tmp.replace(cache_file)
    return BackendChoice(best, "measured", timings)


def _read_entries(cache_file: Path) -> dict:
    """The choice file's entries; an unreadable file counts as empty (it is rewritten)."""
    try:
        entries = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def time_engine(engine: Engine, input_hw: tuple[int, int], runs: int, warmup: int = 2) -> float:
    """Median milliseconds of ``engine.infer`` on one random frame of ``input_hw``."""
    rng = np.random.default_rng(0)
    inputs = [rng.random(shape, dtype=np.float32) for shape in engine.io.shapes(*input_hw)]
    for _ in range(warmup):
        engine.infer(*inputs)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.infer(*inputs)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)
