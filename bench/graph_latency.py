"""End-to-end latency and throughput of the running fusion graph, per backend.

For each backend the fusion node runs in its own process (as deployed, started like
``ivif launch`` does); this process plays two synthetic 30 Hz cameras into it over DDS
and records, per output frame, the FusionStatus stage times and the end-to-end latency
(visible image published -> fused image received, one steady clock). Writes
``graph_latency.json`` and ``graph_latency.png`` to ``--out``.

    python bench/graph_latency.py --backends torch onnxruntime openvino --seconds 10 --out /tmp/graph_bench

Without ``--model`` it uses the shipped student.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
STAGES = ("sync_wait_ms", "queued_ms", "register_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "publish_ms")
WORK = ("register_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "publish_ms")


def model_path(requested: str | None) -> str:
    """The requested model, else the shipped student (its weights are part of the package)."""
    return requested or "student"


def frames(width: int, height: int, n: int = 8):
    """A few precomputed IR (mono16) / visible (rgb8) frames with a moving warm blob."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for k in range(n):
        blob = np.exp(-((xx - width * (0.2 + 0.08 * k)) ** 2 + (yy - height / 2) ** 2) / (width * 2.0))
        ir = ((285 + 5 * yy / height + 25 * blob) * 100).astype(np.uint16)
        vis = np.stack([xx / width * 255, yy / height * 255, 128 + 60 * np.sin(xx / 9)], -1).astype(np.uint8)
        out.append((ir, vis))
    return out


def run_backend(backend: str, model: str, args, env: dict) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ivif_ros.msg import FusionStatus
    from ivif_ros.nodes import messages

    ns = f"/bench_{backend}"
    cmd = [sys.executable, "-m", "ivif_ros.nodes.fusion_node", "--ros-args",
           "--params-file", str(REPO / "config" / "fusion.yaml"),
           "-p", f"engine.backend:={backend}", "-p", f"pipeline.model:={model}",
           "-p", f"engine.width:={args.width}", "-p", f"engine.height:={args.height}",
           "-p", f"engine.threads:={args.threads}", *[a for p in args.set for a in ("-p", p)], "-r", f"__ns:={ns}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_probe", context=context)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub_ir = node.create_publisher(Image, f"{ns}/ir/image_raw", qos)
    pub_vis = node.create_publisher(Image, f"{ns}/visible/image_raw", qos)
    published: dict[int, int] = {}  # visible stamp -> steady ns at publish
    got: dict[int, int] = {}        # stamp -> steady ns at fused receive
    statuses: list = []
    node.create_subscription(Image, f"{ns}/fused/image",
                             lambda m: got.setdefault(messages.stamp_ns(m.header.stamp), time.monotonic_ns()), qos)
    node.create_subscription(FusionStatus, f"{ns}/fusion/status", statuses.append, qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 120
        while not (pub_ir.get_subscription_count() and pub_vis.get_subscription_count()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{backend}: fusion node did not start:\n{proc.stderr.read().decode()[-3000:]}")
            time.sleep(0.1)
        time.sleep(1.0)
        data = frames(args.width, args.height)
        rng = np.random.default_rng(0)
        n = int(args.seconds * 30)
        t_next = time.monotonic()
        for k in tqdm(range(n), desc=f"{backend}: 30 Hz pairs", unit="pair"):
            ir, vis = data[k % len(data)]
            now = node.get_clock().now().nanoseconds
            vis_stamp = now + int(rng.uniform(-3e6, 3e6))
            ir_msg = messages.image_msg(ir, "mono16", messages.Header(stamp=messages.time_msg(now), frame_id="ir"))
            vis_msg = messages.image_msg(vis, "rgb8", messages.Header(stamp=messages.time_msg(vis_stamp), frame_id="vis"))
            published[vis_stamp] = time.monotonic_ns()
            pub_vis.publish(vis_msg)
            pub_ir.publish(ir_msg)
            t_next += 1 / 30
            time.sleep(max(0.0, t_next - time.monotonic()))
        time.sleep(3.0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    e2e = [(got[s] - published[s]) / 1e6 for s in got if s in published]
    # queued: pair complete -> pipeline free (the previous frame still running), i.e. total minus the work
    table = {k: [getattr(st, k) for st in statuses] for k in (*WORK, "sync_wait_ms")}
    table["queued_ms"] = [st.total_ms - sum(getattr(st, k) for k in WORK) for st in statuses]
    stage = {k: float(np.median(table[k])) for k in STAGES} if statuses else {}
    return {
        "backend": backend, "sent_pairs": n, "fused_frames": len(got), "output_rate_hz": len(got) / args.seconds,
        "e2e_latency_ms": {"median": float(np.median(e2e)), "p95": float(np.percentile(e2e, 95))} if e2e else {},
        "stage_median_ms": stage,
    }


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["backend"] for r in results]
    bottom = np.zeros(len(results))
    for stage in STAGES:
        vals = np.array([r["stage_median_ms"].get(stage, 0.0) for r in results])
        ax1.bar(names, vals, bottom=bottom, label=stage.removesuffix("_ms"))
        bottom += vals
    ax1.plot(names, [r["e2e_latency_ms"].get("median", np.nan) for r in results], "k*", ms=12,
             label="end-to-end median")
    ax1.set_ylabel("ms per frame (median)")
    ax1.set_title("latency by stage")
    ax1.legend(fontsize=8)
    ax2.bar(names, [r["output_rate_hz"] for r in results], color="tab:green")
    ax2.axhline(30, color="gray", ls="--", label="camera rate")
    ax2.set_ylabel("fused frames / s")
    ax2.set_title("throughput (newest pair wins)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime", "openvino"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--threads", type=int, default=0, help="engine.threads (0 = all cores)")
    parser.add_argument("--model", help="weights; default: shipped student, else random init")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra node parameter, e.g. sync.min_period_s:=0.02 (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("graph_bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 200)))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update({k: env[k] for k in ("FASTDDS_BUILTIN_TRANSPORTS", "ROS_DOMAIN_ID",
                                           "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    model = model_path(args.model)
    results = []
    for backend in args.backends:
        print(f"{backend}: {args.seconds:.0f} s of 30 Hz {args.width}x{args.height} pairs ...", flush=True)
        results.append(run_backend(backend, model, args, env))
        print(json.dumps(results[-1], indent=1), flush=True)
    (args.out / "graph_latency.json").write_text(json.dumps(
        {"width": args.width, "height": args.height, "seconds": args.seconds, "threads": args.threads,
         "parameters": args.set,
         "model": model, "results": results},
        indent=2) + "\n")
    plot(results, args.out / "graph_latency.png")
    print(f"wrote {args.out / 'graph_latency.json'} and {args.out / 'graph_latency.png'}")


if __name__ == "__main__":
    main()
