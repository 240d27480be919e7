"""The running fusion graph against two cameras in another process: take-up, latency, drops.

For each (rate, IR encoding) the fusion node runs in its own process with the default
config, started as ``ivif launch`` starts it (the package's Fast DDS profile). The cameras
are ``bench/camera_publisher.py`` in a third process with best-effort sensor-data QoS and
an environment with no FASTDDS_* variable, like a driver started from a plain shell. This
process subscribes, also with middleware defaults, to ``fused/image``, ``detections``,
``fusion/status`` and ``/diagnostics``.

Reported per run: pairs sent, images received per camera (the node's own counters on
/diagnostics), fused frames, drops by reason, end-to-end latency p50/p90/p99 (visible
image published -> fused image received, CLOCK_MONOTONIC shared by the processes; the
same for the detections, which the node publishes after the images),
per-stage medians (FusionStatus), output rate, the cores each process kept busy (CPU time
over wall time) and the host load before and after.
Writes ``graph_latency.json``, ``graph_latency.md`` (the table) and ``graph_latency.png``,
and each node's output to ``logs/``.

    python bench/graph_latency.py --out graph_bench                  # 60 s at 15 and 30 Hz, mono8 + mono16
    python bench/graph_latency.py --seconds 10 --rates 30 --ir-encodings mono16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's ivif_ros, as the node and publisher processes get it
STAGES = ("sync_wait_ms", "queued_ms", "register_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "publish_ms")
WORK = ("register_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "publish_ms")
CAMERAS = ("ir", "visible")


def default_env(**extra: str) -> dict[str, str]:
    """This environment without any Fast DDS setting: what a node started from a plain shell has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_", "RMW_FASTRTPS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def graph_env(base: dict[str, str]) -> dict[str, str]:
    """The fusion node's environment, as ``ivif launch`` gives it (the shipped Fast DDS profile)."""
    from ivif_ros.core.config import FusionConfig
    from ivif_ros.nodes.launcher import transport_env

    return transport_env(FusionConfig().graph.fastdds_profile, base)


def diagnostic_values(array, node_name: str) -> dict[str, str] | None:
    for status in array.status:
        if status.name.startswith(node_name):
            return {kv.key: kv.value for kv in status.values}
    return None


def run_once(rate: float, ir_encoding: str, args, base_env: dict[str, str]) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ivif_ros.msg import DetectionArray, FusionStatus
    from ivif_ros.nodes import messages

    ns = f"/bench_{ir_encoding}_{int(rate)}hz"
    node_cmd = [
        sys.executable,
        "-m",
        "ivif_ros.nodes.fusion_node",
        "--ros-args",
        "--params-file",
        str(REPO / "config" / "fusion.yaml"),
        "-p",
        f"engine.width:={args.width}",
        "-p",
        f"engine.height:={args.height}",
        *[a for p in args.set for a in ("-p", p)],
        "-r",
        f"__ns:={ns}",
    ]
    log_path = args.out / "logs" / f"node{ns.replace('/', '_')}.log"  # not committed (.gitignore)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    node_proc = subprocess.Popen(
        node_cmd, env=graph_env(base_env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = rclpy.create_node("bench_probe", context=context)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    got: dict[int, int] = {}  # visible stamp -> steady ns when the fused image arrived
    got_dets: dict[int, int] = {}  # visible stamp -> steady ns when its detections arrived
    statuses: list = []
    diag: dict[str, str] = {}
    node_name = f"{ns}/ivif_fusion"

    def on_diag(array) -> None:
        values = diagnostic_values(array, node_name)
        if values is not None:
            diag.clear()
            diag.update(values)

    node_cpu: list[tuple[int, float]] = []  # (steady ns, node CPU s) at the first and the latest fused image

    def on_fused(msg) -> None:
        now = time.monotonic_ns()
        got.setdefault(messages.stamp_ns(msg.header.stamp), now)
        sample = (now, process_cpu_s(node_proc.pid))
        node_cpu[:] = [node_cpu[0] if node_cpu else sample, sample]

    probe.create_subscription(Image, f"{ns}/fused/image", on_fused, reliable)
    probe.create_subscription(
        DetectionArray,
        f"{ns}/detections",
        lambda m: got_dets.setdefault(messages.stamp_ns(m.header.stamp), time.monotonic_ns()),
        reliable,
    )
    probe.create_subscription(FusionStatus, f"{ns}/fusion/status", statuses.append, reliable)
    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    load_before = os.getloadavg()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        cam = subprocess.run(
            [
                sys.executable,
                str(REPO / "bench" / "camera_publisher.py"),
                "--ns",
                ns,
                "--rate",
                str(rate),
                "--seconds",
                str(args.seconds),
                "--ir-encoding",
                ir_encoding,
                "--width",
                str(args.width),
                "--height",
                str(args.height),
                "--wait-s",
                "300",
            ],
            env=base_env,
            capture_output=True,
            text=True,
            timeout=args.seconds + 400,
        )
        lines = [ln for ln in cam.stdout.splitlines() if ln.startswith("{")]
        sent = json.loads(lines[-1]) if lines else {"error": cam.stderr[-2000:]}
        if "error" in sent:
            raise RuntimeError(f"camera publisher: {sent['error']}\nnode log: {log_path}")
        time.sleep(max(3.0, 2.5 * args.diag_period))  # the last frames and a /diagnostics after them
    finally:
        load_after = os.getloadavg()
        # Cores each process kept busy: the node between its first and latest fused image (start-up
        # left out), the cameras and this probe per second of publishing (their waits cost little).
        wall = args.seconds
        steady = (node_cpu[-1][0] - node_cpu[0][0]) / 1e9 if len(node_cpu) > 1 else 0.0
        cores = {
            "node": (node_cpu[-1][1] - node_cpu[0][1]) / steady if steady > 0 else float("nan"),
            "cameras": (cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN)) - cpu_s(children_before)) / wall,
            "probe": (cpu_s(resource.getrusage(resource.RUSAGE_SELF)) - cpu_s(self_before)) / wall,
        }
        os.killpg(node_proc.pid, signal.SIGINT)
        try:
            node_code = node_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node_proc.kill()
            node_code = node_proc.wait()
        log.close()
        executor.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown(context=context)
    node_log = log_path.read_text(errors="replace")
    published = dict(sent["published"])
    e2e = np.array([(got[s] - published[s]) / 1e6 for s in got if s in published])
    e2e_dets = np.array([(got_dets[s] - published[s]) / 1e6 for s in got_dets if s in published])
    table = {k: np.array([getattr(st, k) for st in statuses]) for k in (*WORK, "sync_wait_ms")}
    table["queued_ms"] = np.array([st.total_ms - sum(getattr(st, k) for k in WORK) for st in statuses])
    counts = {
        k: int(float(v))
        for k, v in diag.items()
        if k.startswith(("received ", "drop ", "dropped ", "frames ", "pairs matched", "failed "))
    }
    fused_frames = sum(1 for st in statuses if st.mode == "fused")
    stamps = sorted(got)
    duration = (got[stamps[-1]] - got[stamps[0]]) / 1e9 if len(stamps) > 1 else 0.0
    return {
        "rate_hz": rate,
        "ir_encoding": ir_encoding,
        "seconds": args.seconds,
        "backend": diag.get("backend", "?"),
        "pairs_sent": sent["pairs_sent"],
        "received": {c: counts.get(f"received {c}", 0) for c in CAMERAS},
        "fused": fused_frames,
        "fused_images_received": len(got),
        "fused_pct": 100.0 * fused_frames / sent["pairs_sent"],
        "drops": {k: v for k, v in counts.items() if k.startswith(("drop ", "dropped ", "failed "))},
        "e2e_ms": percentiles(e2e),
        "e2e_detections_ms": percentiles(e2e_dets),
        "stage_median_ms": {k: float(np.median(v)) for k, v in table.items()} if statuses else {},
        "output_rate_hz": (len(stamps) - 1) / duration if duration > 0 else 0.0,
        "node_exit_code": node_code,
        "node_terminate_message": "terminate called" in node_log,
        "diagnostics": diag,
        "cores": cores,
        "load_before": load_before,
        "load_after": load_after,
    }


def cpu_s(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (``/proc/PID/stat``; NaN where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: np.ndarray) -> dict[str, float]:
    return {q: float(np.percentile(values, int(q[1:]))) for q in ("p50", "p90", "p99")} if values.size else {}


def markdown(results: list[dict]) -> str:
    lines = [
        "| rate | IR | backend | pairs sent | received IR / visible | fused (%) | drops by reason | "
        "e2e p50 / p90 / p99 ms | detections e2e p50 / p99 ms | sync_wait / queued / pre / infer / post / publish ms (median) | out Hz | "
        "cores node / cameras / probe | load 1 min (before, after) | node exit |",
        "|---|---|---|---:|---|---|---|---|---|---|---:|---|---|---|",
    ]
    for r in results:
        e2e = " / ".join(f"{r['e2e_ms'].get(q, float('nan')):.0f}" for q in ("p50", "p90", "p99"))
        cores = " / ".join(f"{v:.2f}" for v in r.get("cores", {}).values()) or "-"
        dets = r.get("e2e_detections_ms", {})
        e2e_dets = " / ".join(f"{dets.get(q, float('nan')):.0f}" for q in ("p50", "p99"))
        st = r["stage_median_ms"]
        stages = " / ".join(
            f"{st.get(k, float('nan')):.1f}"
            for k in ("sync_wait_ms", "queued_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "publish_ms")
        )
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(r["drops"].items())) or "none"
        exit_ = f"{r['node_exit_code']}" + (" + terminate" if r["node_terminate_message"] else "")
        lines.append(
            f"| {r['rate_hz']:g} Hz | {r['ir_encoding']} | {r['backend']} | {r['pairs_sent']} | "
            f"{r['received']['ir']} / {r['received']['visible']} | {r['fused']} ({r['fused_pct']:.1f}) | "
            f"{drops} | {e2e} | {e2e_dets} | {stages} | {r['output_rate_hz']:.1f} | "
            f"{cores} | {r['load_before'][0]:.1f}, {r['load_after'][0]:.1f} | {exit_} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    names = [f"{r['rate_hz']:g} Hz\n{r['ir_encoding']}" for r in results]
    bottom = np.zeros(len(results))
    for stage in STAGES:
        vals = np.array([r["stage_median_ms"].get(stage, 0.0) for r in results])
        ax1.bar(names, vals, bottom=bottom, label=stage.removesuffix("_ms"))
        bottom += vals
    for q, marker in (("p50", "k*"), ("p99", "kv")):
        ax1.plot(names, [r["e2e_ms"].get(q, np.nan) for r in results], marker, ms=10, label=f"end-to-end {q}")
    ax1.set_ylabel("ms per frame")
    ax1.set_title("latency by stage (median) and end to end")
    top = max([np.nanmax([r["e2e_ms"].get("p99", 0.0) for r in results] + [0.0]), bottom.max()])
    ax1.set_ylim(0, 1.45 * top if top > 0 else 1.0)
    ax1.legend(fontsize=7, ncol=3, loc="upper left")
    x = np.arange(len(results))
    ax2.bar(x - 0.2, [r["fused_pct"] for r in results], 0.4, label="pairs fused (%)", color="tab:green")
    ax2.bar(
        x + 0.2,
        [100.0 * min(r["received"].values()) / r["pairs_sent"] for r in results],
        0.4,
        label="images received, worse camera (%)",
        color="tab:blue",
    )
    ax2.set_xticks(x, names)
    ax2.set_ylim(0, 105)
    ax2.set_title("take-up")
    ax2.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[15.0, 30.0])
    parser.add_argument("--ir-encodings", nargs="+", default=["mono8", "mono16"], choices=["mono8", "mono16"])
    parser.add_argument("--seconds", type=float, default=60.0, help="publishing time per run (default 60)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra node parameter, e.g. engine.backend:=openvino (repeatable)",
    )
    parser.add_argument("--diag-period", type=float, default=1.0, help="the node's diagnostics.period_s")
    parser.add_argument("--out", type=Path, default=Path("graph_bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # One private domain, discovery kept on this host: nothing else on the machine hears the run.
    base_env = default_env(
        ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", str(random.randint(1, 200))),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
    )
    os.environ.clear()
    os.environ.update(base_env)  # this process's participant: middleware defaults too
    results = []
    for rate in args.rates:
        for encoding in args.ir_encodings:
            print(
                f"{rate:g} Hz, IR {encoding}: {args.seconds:.0f} s of {args.width}x{args.height} pairs ...", flush=True
            )
            results.append(run_once(rate, encoding, args, base_env))
            shown = {k: v for k, v in results[-1].items() if k != "diagnostics"}
            print(json.dumps(shown), flush=True)
    (args.out / "graph_latency.json").write_text(
        json.dumps(
            {
                "width": args.width,
                "height": args.height,
                "seconds": args.seconds,
                "parameters": args.set,
                "command": " ".join(sys.argv),
                "results": results,
            },
            indent=1,
        )
        + "\n"
    )
    (args.out / "graph_latency.md").write_text(markdown(results))
    plot(results, args.out / "graph_latency.png")
    print(markdown(results))
    print(f"wrote {args.out}/graph_latency.json, .md and .png")


if __name__ == "__main__":
    main()
