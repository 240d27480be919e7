"""Header stamps and receive times of two free-running cameras, as a recorder sees them.

Real IR and visible cameras are not hardware-triggered together: each stamps its frames
with its own jitter, one of them lags by a fixed offset, frames are occasionally dropped,
and the recorder logs each message a little after its stamp (transport latency). The
pairing code (``ivif_ros.core.sync``) must cope with all of this, so generated bags have it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ivif_ros.errors import ConfigError

DEFAULT_START_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z: fixed, so bags are reproducible


@dataclass(frozen=True)
class TimingConfig:
    rate_hz: float = 30.0
    jitter_ms: float = 3.0  # each camera's stamp is off its nominal time by U(-jitter, +jitter)
    ir_offset_ms: float = 4.0  # IR exposure lags the visible one by this much
    latency_ms: tuple[float, float] = (1.0, 4.0)  # stamp -> recorder receive time, uniform range
    drop_prob: float = 0.0  # each camera frame is lost independently with this probability
    start_ns: int = DEFAULT_START_NS

    def validate(self) -> None:
        period_ms = 1000.0 / self.rate_hz if self.rate_hz > 0 else 0.0
        if not 0.0 < self.rate_hz <= 1000.0:
            raise ConfigError(f"--rate {self.rate_hz}: must be in (0, 1000] Hz")
        # 2*jitter + latency spread below one period keeps every topic's stamps and receive times monotonic
        if self.jitter_ms < 0 or 2 * self.jitter_ms + (self.latency_ms[1] - self.latency_ms[0]) >= period_ms:
            raise ConfigError(
                f"--jitter-ms {self.jitter_ms}: must be >= 0 and small enough that 2*jitter plus the latency "
                f"spread stays below the frame period ({period_ms:.1f} ms at {self.rate_hz} Hz)"
            )
        if not 0.0 <= self.drop_prob < 1.0:
            raise ConfigError(f"--drop-prob {self.drop_prob}: must be in [0, 1)")


@dataclass(frozen=True)
class StreamTimes:
    """Per-frame times of one camera; frames with ``kept`` False were dropped."""

    stamp_ns: np.ndarray  # header.stamp, int64
    receive_ns: np.ndarray  # bag log time, int64
    kept: np.ndarray  # bool


def camera_times(n: int, cfg: TimingConfig, rng: np.random.Generator) -> tuple[StreamTimes, StreamTimes]:
    """Times of ``n`` frames of the visible and the IR camera (in that order)."""
    cfg.validate()
    nominal = cfg.start_ns + np.round(np.arange(n) * 1e9 / cfg.rate_hz).astype(np.int64)

    def stream(offset_ms: float) -> StreamTimes:
        jitter = rng.uniform(-cfg.jitter_ms, cfg.jitter_ms, n)
        latency = rng.uniform(cfg.latency_ms[0], cfg.latency_ms[1], n)
        stamp = nominal + np.round((offset_ms + jitter) * 1e6).astype(np.int64)
        receive = stamp + np.round(latency * 1e6).astype(np.int64)
        kept = rng.random(n) >= cfg.drop_prob
        return StreamTimes(stamp, receive, kept)

    return stream(0.0), stream(cfg.ir_offset_ms)
