"""Write constraints.txt: every distribution installed in this environment, pinned.

Run with the project's venv after changing requirements*.txt and testing:
    .venv/bin/python scripts/freeze_constraints.py
Unlike ``pip freeze`` this skips the egg-info directories that ament/colcon write for
CMake packages (they are not installable distributions) and this project itself.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

SKIP = {"pip", "ros-ivif-ros"}
OUT = Path(__file__).resolve().parents[1] / "constraints.txt"


def main() -> None:
    pins = set()
    for dist in importlib.metadata.distributions():
        if str(getattr(dist, "_path", "")).endswith(".egg-info"):
            continue
        name = dist.metadata["Name"]
        if name not in SKIP:
            pins.add(f"{name}=={dist.version}")
    header = (
        "# Every package of the tested environment (.venv from ./scripts/setup.sh), pinned.\n"
        "# Regenerate after changing requirements*.txt: .venv/bin/python scripts/freeze_constraints.py\n"
    )
    OUT.write_text(header + "\n".join(sorted(pins, key=str.lower)) + "\n")
    print(f"wrote {len(pins)} pins to {OUT}")


if __name__ == "__main__":
    main()
