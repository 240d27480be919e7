#!/usr/bin/env python3
"""Soak the fusion node: the synthetic sample bag looped for N frames through the real node.

    python bench/soak.py --frames 10000                    # table on stdout
    python bench/soak.py --frames 1000 --out /tmp/soak     # + soak.json and soak.png

A driver node publishes the sample's IR/visible messages over DDS (in this process,
reliable QoS) with stamps continued across loops, one pair at a time: the next pair goes
out once the node has taken the previous one and its pipeline is idle, so every frame runs
the node's whole per-frame path (decode, pairing, registration, inference, four
publications, diagnostics) and nothing is dropped for being too fast. It reports

* resident memory (RSS) after warm-up and at the end, the growth in %, and the slope
  after warm-up (MB per 1000 frames);
* the node's queues over the run (pairing queue per camera, as /diagnostics reports it);
* the accounting from the node's own counters: every message sent was received, and every
  received message and every matched pair has exactly one fate.

Exit code 0 when memory growth < ``--max-growth-pct``, no pairing queue held more than
``MAX_PENDING`` messages and everything is accounted for; 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

PAGE = os.sysconf("SC_PAGE_SIZE")
# Paced one pair at a time, ApproximateTime holds at most the current pair plus the next message of
# one camera while it proves the pair optimal; more than that means a queue is building up.
MAX_PENDING = 2


def rss_mb() -> float:
    """Resident set size of this process (what the OOM killer and `top` see)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


@dataclass
class Sample:
    frame: int
    rss_mb: float
    pending_ir: int
    pending_visible: int


@dataclass
class SoakResult:
    frames: int
    warmup_frames: int
    seconds: float
    rss_warm_mb: float
    rss_end_mb: float
    rss_growth_pct: float
    rss_slope_mb_per_1000: float
    max_pending: dict[str, int]
    final_pending: dict[str, int]
    counters: dict[str, int]
    accounting: dict[str, bool]
    samples: list[Sample] = field(default_factory=list)

    @property
    def accounted(self) -> bool:
        return all(self.accounting.values())


def sample_messages(work: Path, width: int, height: int, n_pairs: int):
    """The sample bag's IR and visible messages as rclpy Images, in bag order, pair by pair."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from ivif_ros.bag.sample import SampleOptions, generate_sample
    from ivif_ros.replay.inputs import read_inputs

    folder = work / "sample"
    generate_sample(
        folder,
        SampleOptions(frames=n_pairs, width=width, height=height, ir_width=width, ir_height=height * 512 // 480),
        overwrite=True,
        progress=False,
    )
    inputs = read_inputs(folder / "bag", None, None, None)
    msgs = {inputs.ir_topic: [], inputs.vis_topic: []}
    for topic, _, data, _, _ in inputs.stream():
        msgs[topic].append(deserialize_message(bytes(data), Image))
    return list(zip(msgs[inputs.ir_topic], msgs[inputs.vis_topic]))


def model_stem(requested: str | None) -> str:
    """The requested model, else the shipped student (its weights are part of the package)."""
    return requested or "student"


def stamp_ns(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


class LatestDiagnostics:
    """Keeps the fusion node's most recent /diagnostics key/values."""

    def __init__(self, node):
        from diagnostic_msgs.msg import DiagnosticArray

        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        self.received = 0
        node.create_subscription(DiagnosticArray, "/diagnostics", self._keep, 10)

    def _keep(self, array) -> None:
        for status in array.status:
            if status.name.endswith(": fusion"):
                with self._lock:
                    self._values = {kv.key: kv.value for kv in status.values}
                    self.received += 1

    def get(self) -> dict[str, str]:
        with self._lock:
            return dict(self._values)


def resolved(counts: dict[str, int]) -> int:
    """Matched pairs that reached a fate (fused, displaced by a newer one, or failed)."""
    return sum(v for k, v in counts.items() if k.startswith(("frames ", "dropped ", "failed ")))


def check_accounting(counts: dict[str, int], sent: dict[str, int]) -> dict[str, bool]:
    """The node's counters against what was sent: every message and every pair has one fate."""
    checks = {}
    for name in ("ir", "visible"):
        drops = sum(v for k, v in counts.items() if k.startswith(f"drop {name}: "))
        rejected = counts.get(f"rejected {name}: invalid image", 0)
        received = counts.get(f"received {name}", 0)
        checks[f"{name}: received == sent"] = received == sent[name]
        checks[f"{name}: received == paired + dropped + rejected + pending"] = received == counts.get(
            "pairs matched", 0
        ) + drops + rejected + counts.get(f"pending {name}", 0)
    checks["pairs matched == fused + busy + failed"] = counts.get("pairs matched", 0) == resolved(counts)
    return checks


def run_soak(
    frames: int,
    width: int,
    height: int,
    backend: str,
    model: str | None,
    warmup: int,
    sample_every: int,
    work: Path,
    progress: bool = True,
) -> SoakResult:
    import numpy as np
    import rclpy
    import torch
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from tqdm import tqdm

    from ivif_ros.nodes import messages
    from ivif_ros.nodes.fusion_node import FusionNode

    torch.set_num_threads(1)
    pairs = sample_messages(work, width, height, 30)
    params = {
        "pipeline.model": model_stem(model),
        "engine.backend": backend,
        "engine.width": width,
        "engine.height": height,
        "engine.threads": 1,
        "qos.input_reliability": "reliable",
        "qos.input_depth": 10,
        "diagnostics.period_s": 0.2,
        "dropout.timeout_s": 30.0,
    }
    rclpy.init()
    fusion = FusionNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    driver = rclpy.create_node("soak_driver")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {
        "ir": driver.create_publisher(Image, "ir/image_raw", qos),
        "visible": driver.create_publisher(Image, "visible/image_raw", qos),
    }
    diagnostics = LatestDiagnostics(driver)
    executor = SingleThreadedExecutor()
    executor.add_node(fusion)
    executor.add_node(driver)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        while not all(p.get_subscription_count() for p in pubs.values()):
            time.sleep(0.05)
        span = stamp_ns(pairs[-1][1].header) - stamp_ns(pairs[0][1].header) + 33_333_333  # one loop of the bag
        originals = [(stamp_ns(ir.header), stamp_ns(vis.header)) for ir, vis in pairs]
        samples: list[Sample] = []
        rss_warm = None
        started = time.monotonic()
        for k in tqdm(range(frames), desc="soak", unit="frame", disable=not progress, mininterval=1.0):
            loop, index = divmod(k, len(pairs))
            for name, msg, original in zip(("ir", "visible"), pairs[index], originals[index]):
                msg.header.stamp = messages.time_msg(original + loop * span)  # time runs on across loops
                pubs[name].publish(msg)
            _wait_until_taken(fusion, k + 1)
            if k + 1 == warmup:
                rss_warm = rss_mb()
            if (k + 1) % sample_every == 0 or k + 1 == frames:
                d = diagnostics.get()
                samples.append(Sample(k + 1, rss_mb(), int(d.get("pending ir", 0)), int(d.get("pending visible", 0))))
        seconds = time.monotonic() - started
        last = diagnostics.received
        deadline = time.monotonic() + 10
        while diagnostics.received < last + 2 and time.monotonic() < deadline:  # counters after the last frame
            time.sleep(0.05)
        counts = {
            k: int(v)
            for k, v in diagnostics.get().items()
            if k.split(" ")[0] in ("received", "pairs", "drop", "dropped", "frames", "failed", "rejected", "pending")
        }
    finally:
        executor.shutdown()
        spinner.join(5)
        fusion.destroy_node()
        driver.destroy_node()
        rclpy.try_shutdown()

    rss_warm = rss_warm if rss_warm is not None else samples[0].rss_mb
    rss_end = samples[-1].rss_mb
    after = [s for s in samples if s.frame >= warmup]
    slope = (
        float(np.polyfit([s.frame for s in after], [s.rss_mb for s in after], 1)[0]) * 1000 if len(after) >= 2 else 0.0
    )
    return SoakResult(
        frames=frames,
        warmup_frames=warmup,
        seconds=seconds,
        rss_warm_mb=rss_warm,
        rss_end_mb=rss_end,
        rss_growth_pct=(rss_end - rss_warm) / rss_warm * 100,
        rss_slope_mb_per_1000=slope,
        max_pending={"ir": max(s.pending_ir for s in samples), "visible": max(s.pending_visible for s in samples)},
        final_pending={"ir": counts.get("pending ir", 0), "visible": counts.get("pending visible", 0)},
        counters=counts,
        accounting=check_accounting(counts, {"ir": frames, "visible": frames}),
        samples=samples,
    )


def _wait_until_taken(fusion, n: int, timeout_s: float = 60.0) -> None:
    """Until the node received ``n`` messages per camera and its pipeline finished every matched pair."""
    deadline = time.monotonic() + timeout_s
    while True:
        c = fusion.stats.snapshot_counts()
        if (
            c.get("received ir", 0) >= n
            and c.get("received visible", 0) >= n
            and resolved(c) >= c.get("pairs matched", 0)
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"soak: frame {n} not taken by the node after {timeout_s:.0f} s; counters {c}")
        time.sleep(0.0005)


def plot(result: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [s.frame for s in result.samples]
    fig, (ax_mem, ax_q) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax_mem.plot(frames, [s.rss_mb for s in result.samples], lw=1.2)
    ax_mem.axvline(result.warmup_frames, color="grey", ls="--", lw=0.8, label="end of warm-up")
    ax_mem.set_ylabel("RSS (MB)")
    ax_mem.set_title(f"soak: {result.frames} frames, RSS {result.rss_growth_pct:+.2f} % after warm-up")
    ax_mem.legend(loc="lower right")
    ax_q.step(frames, [s.pending_ir for s in result.samples], where="post", label="pending IR")
    ax_q.step(frames, [s.pending_visible for s in result.samples], where="post", label="pending visible")
    ax_q.set_ylabel("pairing queue (messages)")
    ax_q.set_xlabel("frame")
    ax_q.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=128, help="frame width (the sample needs >= 64)")
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--backend", default="onnxruntime", help="engine.backend (default onnxruntime)")
    parser.add_argument("--model", help="pipeline.model (default: the shipped student)")
    parser.add_argument("--warmup", type=int, help="frames before the memory baseline (default: 10 %%, >= 100)")
    parser.add_argument("--sample-every", type=int, help="frames between memory samples (default: frames/200)")
    parser.add_argument("--max-growth-pct", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="write soak.json and soak.png here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else max(100, args.frames // 10)
    if not 0 < warmup < args.frames:
        parser.error(f"--warmup {warmup} must lie between 0 and --frames {args.frames}")

    with tempfile.TemporaryDirectory(prefix="ivif_soak_") as tmp:
        result = run_soak(
            args.frames,
            args.width,
            args.height,
            args.backend,
            args.model,
            warmup,
            args.sample_every or max(1, args.frames // 200),
            Path(tmp),
            progress=not args.json,
        )
    ok = (
        result.accounted
        and result.rss_growth_pct < args.max_growth_pct
        and max(result.max_pending.values()) <= MAX_PENDING
    )
    data = {**asdict(result), "ok": ok}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak.json").write_text(json.dumps(data, indent=1) + "\n")
        plot(result, args.out / "soak.png")
    if args.json:
        print(json.dumps(data))
        return 0 if ok else 1
    c = result.counters
    rows = [
        ("frames", f"{result.frames} in {result.seconds:.0f} s ({result.frames / result.seconds:.1f} frames/s)"),
        ("RSS after warm-up", f"{result.rss_warm_mb:.1f} MB (frame {result.warmup_frames})"),
        ("RSS at the end", f"{result.rss_end_mb:.1f} MB"),
        (
            "RSS growth",
            f"{result.rss_growth_pct:+.2f} % (slope {result.rss_slope_mb_per_1000:+.3f} MB per 1000 "
            f"frames; limit {args.max_growth_pct:g} %)",
        ),
        ("pairing queue max", f"ir {result.max_pending['ir']}, visible {result.max_pending['visible']}"),
        ("pairing queue end", f"ir {result.final_pending['ir']}, visible {result.final_pending['visible']}"),
        (
            "received",
            f"ir {c.get('received ir', 0)}, visible {c.get('received visible', 0)} (sent {result.frames} each)",
        ),
        (
            "pairs",
            ", ".join(
                [
                    f"{c.get('pairs matched', 0)} matched",
                    f"{c.get('frames fused', 0)} fused",
                    *(f"{k} {v}" for k, v in c.items() if k.startswith(("drop", "failed", "rejected"))),
                ]
            ),
        ),
    ]
    rows += [(check, "ok" if passed else "FAILED") for check, passed in result.accounting.items()]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows))
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
