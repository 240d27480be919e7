"""Keep freed image-sized buffers in the process heap instead of handing them back to the OS.

Every 640x480 frame allocates and frees a dozen buffers of 0.3-1.2 MB: the received message
data, the float planes of the pre-processing, the engine's outputs, the published images.
glibc serves blocks above its mmap threshold (128 KiB, raised on the fly up to 32 MiB) with
fresh ``mmap`` calls and unmaps them on ``free``, so each frame faults its pages in again.
On a virtual machine a page fault is expensive: ``experiments/heap_probe.py`` builds the fused
rgb8 and mask mono8 messages of a frame in 1.7 ms with the defaults and 0.10 ms with the
settings below, and the faults happen while Python holds the GIL, so they stall the ROS
executor too. In the running graph at 30 Hz this decides between keeping up and not
(docs/status.md).

``retain_freed_buffers`` raises the mmap threshold above any frame buffer and lets the heap
keep what it frees (the trim threshold), so the next frame reuses pages already mapped. The
cost is resident memory: up to ``trim_threshold`` bytes of freed heap per arena stay mapped.
Only glibc has these knobs; elsewhere, or when the user set glibc's own ``MALLOC_*_``
variables, nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: glibc caps M_MMAP_THRESHOLD at 32 MiB on 64-bit systems (HEAP_MAX_SIZE / 2).
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
TOP_PAD = 64 << 20

_USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def retain_freed_buffers() -> bool:
    """Apply the settings to this process (its C and Python allocations alike). True if applied."""
    if any(name in os.environ for name in _USER_VARIABLES):
        return False  # the user tuned glibc: theirs wins
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS, Windows)
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(param, value) == 1 for param, value in settings)
