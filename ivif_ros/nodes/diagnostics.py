"""Diagnostics helpers: output rate and per-stage latency over a window, drop counters,
and their ``diagnostic_msgs/DiagnosticStatus``."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


class FrameStats:
    """Thread-safe record of recent frames (steady clock): rate and median stage times."""

    def __init__(self, window_s: float = 5.0):
        self.window_ns = int(window_s * 1e9)
        self._frames: deque[tuple[int, dict[str, float]]] = deque()
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()  # cumulative, e.g. "received ir", "drop ir: superseded"

    def frame(self, timings_ms: dict[str, float]) -> None:
        now = time.monotonic_ns()
        with self._lock:
            self._frames.append((now, timings_ms))
            self._trim(now)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def _trim(self, now: int) -> None:
        while self._frames and now - self._frames[0][0] > self.window_ns:
            self._frames.popleft()

    def rate_hz(self) -> float:
        with self._lock:
            self._trim(time.monotonic_ns())
            if len(self._frames) < 2:
                return 0.0
            span = (self._frames[-1][0] - self._frames[0][0]) / 1e9
            return (len(self._frames) - 1) / span if span > 0 else 0.0

    def median_ms(self) -> dict[str, float]:
        with self._lock:
            frames = [t for _, t in self._frames]
        if not frames:
            return {}
        keys = frames[-1].keys()
        table = np.array([[f.get(k, np.nan) for k in keys] for f in frames], np.float64)
        return dict(zip(keys, np.nanmedian(table, axis=0).tolist()))

    def snapshot_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


def status(name: str, hardware_id: str, level: bytes, message: str, values: dict) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=f"{v:.2f}" if isinstance(v, float) else str(v)) for k, v in values.items()],
    )


OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
