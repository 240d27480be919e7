"""Finding this test run's processes by their command line (for tests that kill a parent and
check that no child outlives it)."""

from __future__ import annotations

import os
from pathlib import Path


def command_line(pid: int) -> str:
    """The command line of process ``pid``, arguments joined by spaces; "" once it has gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes_with(marker: str, module: str = "ivif_ros") -> list[int]:
    """PIDs, other than this one, whose command line holds both ``marker`` and ``module``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            cmdline = command_line(int(entry.name))
            if marker in cmdline and module in cmdline:
                pids.append(int(entry.name))
    return pids


def graph_processes(marker: str) -> list[int]:
    """PIDs of node processes (``ivif_ros.nodes``) whose command line holds ``marker``."""
    return processes_with(marker, "ivif_ros.nodes")
