"""An interrupted ``ivif replay`` leaves a bag that standard readers open and no stale summary.

``kill -9`` at a random point (seeded; the seed is in the failure message) of an offline and a
live replay: rosbags' ``AnyReader`` opens the output bag and reads every message in it, and
``summary.json`` is either absent or this run's (an earlier run's summary was moved aside).
SIGTERM: the run closes the bag and writes a summary marked partial that says how far it got.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replay_support import make_config, make_sample
from rosbags_interop import read_every_message
from ros_harness import REPO_ROOT

SEGMENT_S = "0.2"  # finish an output file every 0.2 s, so a kill finds some finished ones


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupted")
    return make_sample(root / "sample", frames=30), make_config(root / "model")


def _start_replay(bag: Path, out: Path, config: Path, live: bool, env: dict) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    # An earlier run's files: they must not be left beside this run's bag.
    (out / "summary.json").write_text(json.dumps({"bag": "another bag", "partial": False}))
    (out / "report.md").write_text("# another run\n")
    cmd = [sys.executable, "-m", "ivif_ros.cli", "replay", str(bag), "--out", str(out), "--config", str(config)]
    cmd += ["--samples", "0", "--segment-s", SEGMENT_S] + (["--live"] if live else [])
    log = open(out.parent / f"{out.name}.log", "wb")
    return subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_recording(proc: subprocess.Popen, bag: Path, timeout_s: float = 120.0) -> None:
    """Until the replay writes its first output message (the first file of the bag is open)."""
    deadline = time.monotonic() + timeout_s
    while not (bag / f"{bag.name}_0").exists() and not list(bag.glob("*.mcap")):
        assert proc.poll() is None, f"the replay ended (code {proc.returncode}) before writing any output"
        assert time.monotonic() < deadline, "the replay wrote no output"
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["offline", "live"])
def test_kill_9_at_a_random_point_leaves_a_bag_rosbags_opens_and_no_stale_summary(mode, sample, ros_env, tmp_path):
    bag, config = sample
    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(0.0, 1.0)
    out = tmp_path / mode
    proc = _start_replay(bag, out, config, mode == "live", ros_env)
    try:
        _wait_for_recording(proc, out / "output_bag")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    where = f"(seed {seed}: killed {delay:.2f} s after the first output)"
    counts = read_every_message(out / "output_bag", "kilted")
    assert set(counts) <= {"/fused/image", "/semantic/mask", "/detections", "/fusion/status", "/diagnostics"}, where
    summary = out / "summary.json"
    assert not summary.exists() or json.loads(summary.read_text())["bag"] == str(bag), where
    assert not (out / "report.md").exists() or "another run" not in (out / "report.md").read_text(), where
    assert any(p.name.startswith("previous_run_") for p in out.iterdir()), where


@pytest.mark.parametrize("mode", ["offline", "live"])
def test_sigterm_closes_the_bag_and_writes_a_partial_summary(mode, sample, ros_env, tmp_path):
    bag, config = sample
    out = tmp_path / mode
    proc = _start_replay(bag, out, config, mode == "live", ros_env)
    try:
        _wait_for_recording(proc, out / "output_bag")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / f"{mode}.log").read_text(errors="replace")
    assert code == 1 and "Traceback" not in log, log[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["bag"] == str(bag) and s["partial"], s["errors"]
    assert any("interrupted by SIGTERM" in e for e in s["errors"]), s["errors"]
    assert s["counts"]["fused"] < s["counts"]["pairs"], s["counts"]
    counts = read_every_message(out / "output_bag", "kilted")
    assert counts.get("/fused/image", 0) == s["counts"]["fused"], (counts, s["counts"])
    assert not [p for p in (out / "output_bag").iterdir() if p.is_dir()], "a bag file was left unfinished"
    assert os.path.getsize(out / "output_bag" / "metadata.yaml") > 0
