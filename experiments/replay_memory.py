"""Peak memory of ``ivif replay`` against the bag's length (issue 31: bounded memory).

Builds two MSRS bags with ``ivif make-bag`` (the first 60 and all 361 pairs of msrs/test, 30 Hz),
replays each offline and live, and records the replay process's peak RSS (``VmHWM`` of
``/proc/<pid>/status``, polled until it exits: the high-water mark of that process alone; in
live mode the node graph is another process and is reported apart, as the process tree's peak
from ``wait4``). A bounded replay keeps the 361-pair peak within 1.3x the 60-pair peak.

    .venv/bin/python experiments/replay_memory.py            # IVIF_DATA or --data: the data folder

writes ``experiments/results/replay_memory.json`` and prints a table. Bags and replay outputs go
to ``--work`` (default: a temporary folder, removed at the end). An engine is built first by a
warm-up replay of 2 pairs, so no measured run pays for the export.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results" / "replay_memory.json"
SIZES = (60, 361)
BOUND = 1.3


def ivif(*args: str) -> list[str]:
    return [sys.executable, "-m", "ivif_ros.cli", *args]


def make_bag(data: Path, pairs: int, out: Path) -> Path:
    if not (out / "metadata.yaml").exists():
        subprocess.run(ivif("make-bag", "--data", str(data), "--limit", str(pairs), "--out", str(out)), check=True)
    return out


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``; its own peak RSS (MiB, polled VmHWM), its process tree's (wait4), wall time, exit code."""
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    peak = 0
    while True:
        hwm = vm_hwm_kib(proc.pid)
        if hwm is not None:
            peak = max(peak, hwm)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "peak_rss_mib": round(peak / 1024, 1),
        "tree_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(time.monotonic() - started, 1),
        "exit_code": proc.returncode,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=os.environ.get("IVIF_DATA"), help="data folder (holds msrs/test)")
    ap.add_argument("--work", type=Path, help="folder for the bags and replay outputs (default: temporary)")
    ap.add_argument("--rate", type=float, default=1.0, help="live playback rate (default 1: the bag's 30 Hz)")
    ap.add_argument("--pairs", type=int, nargs=2, default=SIZES, help="the two bag lengths (default 60 361)")
    args = ap.parse_args()
    if args.data is None:
        ap.error("give --data or set IVIF_DATA")
    split = Path(args.data) / "msrs" / "test"
    sizes = tuple(args.pairs)
    with tempfile.TemporaryDirectory(prefix="replay_memory_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        warm = make_bag(split, 2, work / "bag_2")
        subprocess.run(ivif("replay", str(warm), "--out", str(work / "warm"), "--samples", "0"), check=True)
        rows = []
        for mode in ("offline", "live"):
            for n in sizes:
                bag = make_bag(split, n, work / f"bag_{n}")
                out = work / f"{mode}_{n}"
                cmd = ivif("replay", str(bag), "--out", str(out))
                if mode == "live":
                    cmd += ["--live", "--rate", str(args.rate)]
                row = {"mode": mode, "pairs": n, **measure(cmd, work / f"{mode}_{n}.log")}
                summary = json.loads((out / "summary.json").read_text())
                row["fused"] = summary["counts"]["fused"]
                row["partial"] = summary["partial"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    ratios = {}
    for mode in ("offline", "live"):
        small, large = (next(r for r in rows if r["mode"] == mode and r["pairs"] == n) for n in sizes)
        ratios[mode] = round(large["peak_rss_mib"] / small["peak_rss_mib"], 3)
    print(f"\n{'mode':<8} {'pairs':>5} {'fused':>5} {'peak RSS MiB':>12} {'tree peak MiB':>13} {'wall s':>7}")
    for r in rows:
        print(
            f"{r['mode']:<8} {r['pairs']:>5} {r['fused']:>5} {r['peak_rss_mib']:>12} "
            f"{r['tree_peak_rss_mib']:>13} {r['wall_s']:>7}"
        )
    for mode, ratio in ratios.items():
        print(f"{mode}: peak at {sizes[1]} pairs / at {sizes[0]} pairs = {ratio} (bound {BOUND})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python experiments/replay_memory.py"
                + ("" if sizes == SIZES else f" --pairs {sizes[0]} {sizes[1]}"),
                "live_rate": args.rate,
                "runs": rows,
                "ratio_large_over_small": ratios,
                "bound": BOUND,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results: {RESULTS}")
    return 0 if all(r <= BOUND for r in ratios.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
