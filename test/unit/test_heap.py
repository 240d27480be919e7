"""core.heap: freed frame buffers stay in the heap (glibc), and the user's own settings win."""

import os
import subprocess
import sys

import pytest

# A 1.2 MB array is served by mmap under glibc's defaults (hblks counts such blocks) and from
# the heap once the mmap threshold is raised.
CHILD = r"""
import ctypes, sys
import numpy as np
from ivif_ros.core.heap import retain_freed_buffers
applied = retain_freed_buffers()

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2().hblks
frame = np.ones((480, 640), np.float32)
print(applied, libc.mallinfo2().hblks - before)
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)


def run_child(env_extra: dict[str, str]) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", CHILD], env={**env, **env_extra}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    applied, mapped = out.stdout.split()
    return applied == "True", int(mapped)


@glibc
def test_frame_buffers_come_from_the_heap_once_applied():
    applied, mapped = run_child({})
    assert applied
    assert mapped == 0


@glibc
def test_users_malloc_variables_win():
    applied, mapped = run_child({"MALLOC_TOP_PAD_": "0"})
    assert not applied
    assert mapped == 1  # glibc's default: the 1.2 MB frame is its own mmap
