"""``backend: auto``: TensorRT when it can run, else the fastest CPU backend, measured and cached.

Timing every candidate costs a few seconds at start-up, so the winner is stored
in ``<cache_dir>/backend_choice.json`` under a slot per (model, input size,
precision) together with the key it was measured for (weights hash, CPU model
and core count, package versions, candidate list), when, and how loaded the
machine was. A matching key reuses the choice unless it is older than
:data:`MAX_AGE_S` or was measured while other work held the CPUs (load per core
above :data:`LOADED_PER_CORE`): then the candidates are timed again.

Candidates are timed as ``ivif bench`` times them (:func:`time_engines`): the same
sample pair, warm-up and median, in interleaved rounds so that a change of load
during the measurement weighs on every candidate alike.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ivif_ros.engines.base import FUSION_IO, Engine
from ivif_ros.engines.cache import key_digest
from ivif_ros.engines.config import PRECISIONS, EngineConfig, usable_cores
from ivif_ros.engines.fingerprint import cpu_description, package_versions
from ivif_ros.errors import BackendUnavailable

log = logging.getLogger(__name__)

CHOICE_FILE = "backend_choice.json"
#: A cached choice older than this is measured again (drivers, firmware and thermal limits change).
MAX_AGE_S = 7 * 24 * 3600.0
#: Load average per usable core above which a measurement counts as made under load.
LOADED_PER_CORE = 0.75


@dataclass
class BackendChoice:
    backend: str
    #: why: "forced by config", "TensorRT available", "cached measurement", "measured", or
    #: "measured (cached choice ...)" when a cached one was stale, too old or made under load
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: load average per usable core while the timings were taken (None: nothing was timed)
    load_per_core: float | None = None

    def describe(self) -> str:
        times = ", ".join(f"{b} {ms:.1f} ms" for b, ms in sorted(self.timings_ms.items(), key=lambda kv: kv[1]))
        load = f"; load {self.load_per_core:.2f}/core while timed" if self.load_per_core is not None else ""
        return f"backend '{self.backend}' ({self.reason}{': ' + times if times else ''}{load})"


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


def load_per_core() -> float:
    """The 1-minute load average per usable core (0 where the OS does not report one)."""
    try:
        return os.getloadavg()[0] / usable_cores()
    except OSError:
        return 0.0


def reuse_verdict(entry: dict, key_digest_now: str, now: float) -> str | None:
    """None if a cached entry may be reused, else why it is measured again."""
    if entry.get("key_digest") != key_digest_now:
        return "cached choice stale: software, host or model changed"
    age = now - float(entry.get("measured_at", 0.0))
    if age > MAX_AGE_S:
        return f"cached choice {age / 86400:.0f} days old"
    load = entry.get("load_per_core")
    if load is None or load > LOADED_PER_CORE:
        return "cached choice made under load" + (f" ({load:.2f}/core)" if load is not None else "")
    return None


def choose_backend(
    config: EngineConfig,
    weights_hash: str,
    *,
    tensorrt_available: bool,
    measure: Callable[[str], float] | None = None,
    measure_all: Callable[[list[str]], dict[str, float]] | None = None,
    cache_file: Path | None = None,
    host: str | None = None,
    now: float | None = None,
    load: Callable[[], float] = load_per_core,
) -> BackendChoice:
    """Pick the backend for ``config``.

    ``measure_all(backends)`` returns milliseconds per frame of those it could run
    (:func:`time_engines` in interleaved rounds); ``measure(backend)`` does one at a
    time, raising ``BackendUnavailable`` for a backend that cannot run here (it is
    skipped). ``tensorrt_available`` is passed in (not probed here) so callers and tests
    decide it explicitly. Candidates without the configured precision (bf16 is an
    OpenVINO hint) are timed in fp32, as they would run.
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
    now = time.time() if now is None else now
    why = reuse_verdict(cached, key_digest(key), now) if cached else None
    if cached and why is None:
        return BackendChoice(
            cached["backend"], "cached measurement", cached.get("timings_ms", {}), cached.get("load_per_core")
        )
    if why:
        log.info("engine auto-selection: %s for %s; measuring again", why, slot)

    candidates = [b for b in config.auto_candidates if config.precision in PRECISIONS[b] or "fp32" in PRECISIONS[b]]
    load_before = load()
    if measure_all is not None:
        timings = dict(measure_all(candidates))
    else:
        timings = {}
        for backend in candidates:
            try:
                timings[backend] = measure(backend)
            except BackendUnavailable as exc:
                log.info("engine auto-selection: skipping %s: %s", backend, exc)
    load_during = max(load_before, load())
    if not timings:
        raise BackendUnavailable(
            f"engine.backend auto: none of {list(config.auto_candidates)} can run precision '{config.precision}' here; "
            "install onnxruntime or openvino, or set engine.backend explicitly"
        )
    best = min(timings, key=timings.get)
    entries[slot] = {
        "key_digest": key_digest(key),
        "key": key,
        "backend": best,
        "timings_ms": timings,
        "measured_at": now,
        "load_per_core": load_during,
    }
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")  # two nodes starting at once must not share it
    tmp.write_text(json.dumps(entries, indent=1))
    tmp.replace(cache_file)
    return BackendChoice(best, f"measured ({why})" if why else "measured", timings, load_during)


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere OpenVINO's bf16 hint runs f32."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def _read_entries(cache_file: Path) -> dict:
    """The choice file's entries; an unreadable file counts as empty (it is rewritten)."""
    try:
        entries = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def sample_inputs(engine: Engine, input_hw: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Inputs of ``input_hw`` for ``engine``: the benchmark's sample pair (an MSRS frame, else
    synthetic) for a fusion model, fixed random images for any other model (the detector)."""
    h, w = input_hw
    io = getattr(engine, "io", FUSION_IO)  # an engine that declares no I/O runs a fusion model
    if io == FUSION_IO:
        from ivif_ros.core.preprocess import preprocess
        from ivif_ros.engines.benchmark import sample_frames

        ir, vis, _ = sample_frames(w, h)
        inputs = preprocess(ir, vis)
        return inputs.ir, inputs.vis_y
    rng = np.random.default_rng(0)
    return tuple(rng.random(shape, dtype=np.float32) for shape in io.shapes(h, w))


#: After this many rounds, a candidate slower than ``PRUNE_FACTOR`` x the best is not timed further.
PRUNE_AFTER, PRUNE_FACTOR = 3, 3.0


def time_engines(
    engines: dict[str, Engine], input_hw: tuple[int, int], runs: int, warmup: int = 2, prune: bool = False
) -> dict[str, float]:
    """Median milliseconds of ``engine.infer`` per engine on the sample pair.

    ``warmup`` untimed calls each, then ``runs`` rounds that call every engine once, so a
    change of machine load during the measurement weighs on all of them alike. ``auto``
    and ``ivif bench`` both time with this. With ``prune`` (``auto``), a candidate that is
    clearly out of the race after :data:`PRUNE_AFTER` rounds stops being timed: start-up
    should not wait for ten slow frames of a backend that cannot win.
    """
    inputs = {name: sample_inputs(engine, input_hw) for name, engine in engines.items()}
    for name, engine in engines.items():
        for _ in range(warmup):
            engine.infer(*inputs[name])
    samples: dict[str, list[float]] = {name: [] for name in engines}
    racing = dict(engines)
    for round_ in range(runs):
        for name, engine in racing.items():
            start = time.perf_counter()
            engine.infer(*inputs[name])
            samples[name].append((time.perf_counter() - start) * 1e3)
        if prune and round_ + 1 == PRUNE_AFTER and len(racing) > 1:
            best = min(statistics.median(samples[name]) for name in racing)
            racing = {n: e for n, e in racing.items() if statistics.median(samples[n]) <= PRUNE_FACTOR * best}
    return {name: statistics.median(s) for name, s in samples.items()}


def time_engine(engine: Engine, input_hw: tuple[int, int], runs: int, warmup: int = 2) -> float:
    """Median milliseconds of ``engine.infer`` (:func:`time_engines` for one engine)."""
    return time_engines({"engine": engine}, input_hw, runs, warmup)["engine"]
