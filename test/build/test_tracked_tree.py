"""The repository ships a product: no development machine's paths in the tracked files, a
package under 10 MB, and a model card people can read from the top."""

import re
import shutil
import subprocess

import pytest

from ros_harness import REPO_ROOT

# Home and work folders of the machines the package was developed on, spelled so that this
# file does not match itself.
MACHINE_PATH = re.compile("/" + r"(work|home|root|Users)/[\w.-]")
# History notes may quote the paths of the runs they describe.
HISTORY_NOTES = {"experiments/RECIPES.md"}
CARD = REPO_ROOT / "ivif_ros" / "weights" / "MODEL_CARD.md"


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def test_no_machine_paths_in_the_tracked_tree():
    found = []
    for name in tracked_files():
        if name in HISTORY_NOTES:
            continue
        data = (REPO_ROOT / name).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (weights, images)
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not found, (
        "absolute paths of a development machine (use --data / $IVIF_DATA or a path "
        "relative to the repository):\n" + "\n".join(found)
    )


def test_the_package_stays_small():
    size = sum((REPO_ROOT / n).stat().st_size for n in tracked_files() if n.startswith("ivif_ros/"))
    print(f"tracked ivif_ros/: {size / 1e6:.2f} MB")
    assert size <= 10 * 1000**2, f"the tracked ivif_ros/ holds {size / 1e6:.1f} MB (at most 10 MB)"


def test_the_model_card_is_short_and_starts_with_its_intended_use():
    lines = CARD.read_text().splitlines()
    assert len(lines) <= 250, f"{CARD.name} has {len(lines)} lines (at most 250); move details to experiments/"
    assert "## Intended use" in lines[:40], "the model card's 'Intended use' must be within its first 40 lines"
