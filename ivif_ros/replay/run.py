"""``ivif replay``: bag -> (offline pipeline | live node graph) -> output bag -> report.

Steps, each in its own module:

1. :mod:`.inputs`   read the IR/visible messages and ground truth, choose the topics;
2. pairing here     the node's own policy (``core.sync``, configured by ``sync.*``) run over
                    the messages in bag order, so every message gets paired or a drop reason;
3. :mod:`.offline` or :mod:`.live`   produce the output bag;
4. :mod:`.evaluate` read the output bag back, match by stamp, score;
5. :mod:`.summary` + ``report.replay_report``   summary.json, frames.csv, report.md.

A damaged bag does not stop the run: whatever was readable is replayed, the damage is
listed in ``summary.json["errors"]`` and the report is marked partial.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivif_ros.bag.segmented_writer import DEFAULT_SEGMENT_S
from ivif_ros.errors import InputError
from ivif_ros.replay.accounting import NO_OUTPUT, PIPELINE_ERROR, MessageLedger
from ivif_ros.replay.evaluate import OutputTopics, auto_metrics_every, evaluate, node_counters
from ivif_ros.replay.inputs import DEFAULT_MAX_MESSAGE_BYTES, BagInputs, read_inputs
from ivif_ros.replay.interrupt import stop_on_signals
from ivif_ros.replay.summary import FrameRecord, build_summary, write_json
from ivif_ros.report.replay_report import write_frames_csv, write_report

PENDING_AT_END = "pending_at_end"  # still waiting for a partner when the bag ended
OUTPUT_BAG = "output_bag"
RELIABLE_INPUT_DEPTH = 10  # graph input queue in live replay: 1/3 s at 30 Hz


@dataclass
class ReplayOptions:
    bag: Path
    out: Path
    live: bool = False
    rate: float = 1.0
    ir_topic: str | None = None
    vis_topic: str | None = None
    gt_topic: str | None = None
    config: Path | None = None
    backend: str | None = None
    metrics_every: int = 0  # 0: automatic
    storage_format: str = "mcap"  # of the output bag
    samples: int = 4
    overrides: dict | None = None  # extra config settings (dotted names), e.g. from `ivif demo`
    keep_input_qos: bool = False  # live: evaluate the graph with its configured input QoS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # larger input messages are dropped unread
    segment_s: float = DEFAULT_SEGMENT_S  # the output bag is finished into a new file this often


@dataclass
class ReplayResult:
    summary: dict
    frames: list[FrameRecord]
    report: Path
    summary_path: Path
    output_bag: Path


def pair_messages(inputs: BagInputs, ledger: MessageLedger, sync_cfg) -> None:
    """Run the node's pairing policy over the messages in bag order; record every fate."""
    from ivif_ros.core.sync import IR, VISIBLE, policy_from_config

    policy = policy_from_config(sync_cfg)  # the fusion node builds its policy with the same call

    def record(ev) -> None:
        for drop in ev.drops:
            ledger.drop(drop.entry.item.msg_id, drop.reason)
        for ir_entry, vis_entry in ev.matches:
            # The fused frame carries the visible stamp (FusionStatus.msg), so pairs are keyed by it.
            ledger.pair(ir_entry.item.msg_id, vis_entry.item.msg_id, vis_entry.stamp_ns)

    for item in inputs.items:
        item.msg_id = ledger.add_input(item.topic, item.stamp_ns, item.log_ns)
        if item.refused:
            ledger.drop(item.msg_id, item.refused)
            continue
        record(policy.add(IR if item.topic == inputs.ir_topic else VISIBLE, item.stamp_ns, item))
    record(policy.flush())  # the bag has ended: a pair waiting only for a later frame is complete
    for entry in policy.pending():
        ledger.drop(entry.item.msg_id, PENDING_AT_END)


def graph_rejections(counters: dict[str, int], out_bag: Path) -> list[str]:
    """The live graph's refusals (``rejected <camera>: ...``, ``failed <mode>: ...``) as report errors,
    so a bad message makes a live replay partial exactly as it makes an offline one."""
    return [
        f"the graph {key.split(' ', 1)[0]} {n} message(s) as '{key}' (its /diagnostics in {out_bag})"
        for key, n in sorted(counters.items())
        if n and key.startswith(("rejected ", "failed "))
    ]


def find_calibration(bag: Path) -> Path | None:
    """``calibration.yaml`` beside the bag, as ``ivif sample`` and ``ivif make-bag`` write it."""
    for folder in (bag if bag.is_dir() else bag.parent, (bag if bag.is_dir() else bag.parent).parent):
        if (folder / "calibration.yaml").is_file():
            return folder / "calibration.yaml"
    return None


def load_replay_config(opts: ReplayOptions, vis_size: tuple[int, int]):
    """The graph's config with the replay's overrides: backend, frame size, calibration."""
    from ivif_ros.core.config import load_config, read_param_file

    overrides = dict(opts.overrides or {})
    if opts.backend:
        overrides["engine.backend"] = opts.backend
    if opts.live and not opts.keep_input_qos:
        # Sensor-data (best-effort) subscriptions lose large images whenever the node's executor
        # falls behind: 640x480 at 7.5 Hz on a loaded 2-core machine lost a third of them. A
        # replay measures the pipeline, so its inputs are delivered reliably unless asked not to.
        overrides.setdefault("qos.input_reliability", "reliable")
        overrides.setdefault("qos.input_depth", RELIABLE_INPUT_DEPTH)
    # Engines are built for one frame size: make it the bag's, not the config's default.
    overrides.setdefault("engine.width", vis_size[0])
    overrides.setdefault("engine.height", vis_size[1])
    user = read_param_file(opts.config) if opts.config else {}
    if not user.get("registration") and "registration.mode" not in overrides:
        calib = find_calibration(opts.bag)
        if calib is not None:
            print(
                f"ivif replay: registering IR with the homography in {calib} (found beside the bag; "
                "set registration.* in --config to override)"
            )
            overrides.update({"registration.mode": "homography", "registration.calibration_file": str(calib)})
    return load_config(opts.config, overrides)


# What a replay writes into --out (live adds graph_params.yaml and ros_log).
REPLAY_OUTPUTS = (
    "summary.json",
    "frames.csv",
    "report.md",
    OUTPUT_BAG,
    "samples",
    "latency.png",
    "metric_trends.png",
    "graph_params.yaml",
    "ros_log",
)


def set_aside_previous_run(out: Path) -> Path | None:
    """Move an earlier replay's files in ``out`` into ``out/previous_run_<time>``, so that nothing
    in ``out`` describes another run, even if this one is killed before it writes its summary."""
    import time

    found = [out / name for name in REPLAY_OUTPUTS if (out / name).exists() or (out / name).is_symlink()]
    if not found:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(max(p.lstat().st_mtime for p in found)))
    aside = out / f"previous_run_{stamp}"
    n = 1
    while aside.exists():
        n += 1
        aside = out / f"previous_run_{stamp}_{n}"
    aside.mkdir()
    for p in found:
        p.rename(aside / p.name)
    print(f"ivif replay: moved the previous run's files in {out} to {aside}")
    return aside


def run_replay(opts: ReplayOptions) -> ReplayResult:
    """One replay. SIGINT/SIGTERM while it runs: the output bag is closed with what was made
    and the summary says partial (see :mod:`.interrupt`)."""
    with stop_on_signals() as stop:
        return _run_replay(opts, stop)


def _run_replay(opts: ReplayOptions, stop) -> ReplayResult:
    from tqdm import tqdm

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    set_aside_previous_run(out)
    inputs = read_inputs(opts.bag, opts.ir_topic, opts.vis_topic, opts.gt_topic, opts.max_message_bytes)
    stop.check()
    for topic in (inputs.ir_topic, inputs.vis_topic):
        if not any(i.topic == topic and not i.refused for i in inputs.items):
            raise InputError(
                f"bag {opts.bag}: no readable message on {topic}, nothing to fuse"
                + (f" ({'; '.join(inputs.errors)})" if inputs.errors else "")
            )
    first_vis = inputs.first_image(inputs.vis_topic)
    cfg = load_replay_config(opts, (first_vis.shape[1], first_vis.shape[0]))
    del first_vis
    ledger = MessageLedger()
    pair_messages(inputs, ledger, cfg.sync)
    topics = OutputTopics()
    out_bag = out / OUTPUT_BAG
    errors = list(inputs.errors)
    receive_ns = publish_ns = None
    print(
        f"ivif replay: writing {out_bag} in files of {opts.segment_s:g} s; if this run is killed, the bag "
        "holds every finished file (the one being written stays in its own folder inside)"
    )
    # replay_s, the throughput window, is the frames' own time: first publish to last output
    # (live) or the frame loop (offline), not reading, engine building or scoring.
    if opts.live:
        from ivif_ros.replay.live import run_live

        live = run_live(inputs, ledger, opts, cfg, topics, out_bag, stop)
        receive_ns, publish_ns = live.receive_ns, live.publish_ns
        missing, replay_s = NO_OUTPUT, live.wall_s
        errors += live.errors
    else:
        from ivif_ros.replay.offline import run_offline

        frame_errors, replay_s = run_offline(
            inputs, ledger, cfg, topics, out_bag, opts.storage_format, opts.segment_s, stop
        )
        errors += frame_errors
        missing = PIPELINE_ERROR
    every = opts.metrics_every or auto_metrics_every(len(ledger.pairs))
    with tqdm(desc="evaluate", unit="frame") as bar:
        frames, detection, samples, outputs = evaluate(
            inputs,
            ledger,
            out_bag,
            topics,
            cfg,
            metrics_every=every,
            n_samples=opts.samples,
            missing_reason=missing,
            receive_ns=receive_ns,
            publish_ns=publish_ns,
            progress=bar,
            stop=stop,
        )
    errors += [e for e in outputs.errors if e not in errors]
    counts = ledger.counts()
    counts["single_camera_frames"] = outputs.single_camera_frames(topics)  # not pairs: outside the invariants
    if opts.live:
        counts["graph_counters"] = node_counters(out_bag)
        counts["graph_inputs"] = live.graph_inputs(counts["graph_counters"])
        errors += graph_rejections(counts["graph_counters"], out_bag)
    summary = build_summary(
        bag=str(opts.bag),
        mode="live" if opts.live else "offline",
        rate=opts.rate if opts.live else None,
        graph_input_qos=f"{cfg.qos.input_reliability}, depth {cfg.qos.input_depth}" if opts.live else None,
        topics={
            "ir": inputs.ir_topic,
            "vis": inputs.vis_topic,
            "ground_truth": inputs.gt_topic,
            "outputs": topics.all(),
        },
        counts=counts,
        frames=frames,
        metrics_every=every,
        detection=detection,
        wall_time_s=replay_s,
        errors=errors,
    )
    write_frames_csv(out / "frames.csv", frames)
    report = write_report(out, summary, frames, samples)
    summary_path = out / "summary.json"
    write_json(summary_path, summary)  # last: a summary.json means the run's files are complete
    return ReplayResult(summary, frames, report, summary_path, out_bag)


def print_summary(result: ReplayResult) -> None:
    """A short table on the terminal; the report has the rest."""
    s, c = result.summary, result.summary["counts"]
    lat = s["latency_ms"]
    per_topic = ", ".join(f"{t}: {v['received']}" for t, v in c["inputs_by_topic"].items())
    rows = [
        ("inputs", f"{c['inputs']} messages ({per_topic})"),
        ("pairs / fused", f"{c['pairs']} / {c['fused']}"),
        (
            "dropped",
            ", ".join(f"{r}: {n}" for r, n in {**c["message_drops_by_reason"], **c["pair_drops_by_reason"]}.items())
            or "none",
        ),
    ]
    m = s["metrics"]["mean"]
    rows.append(("metrics", "  ".join(f"{k} {v:.3f}" for k, v in m.items() if v is not None) or "-"))
    if s["detection"]:
        d = s["detection"]
        rows.append(
            (
                f"mAP50 / mAP50:95 ({d['ground_truth']})",
                f"{d['mAP50'] if d['mAP50'] is None else round(d['mAP50'], 3)} / "
                f"{d['mAP50_95'] if d['mAP50_95'] is None else round(d['mAP50_95'], 3)}",
            )
        )
        if d.get("union"):
            u = d["union"]
            rows.append(("mAP50 (IR∪VIS union)", f"{u['mAP50'] if u['mAP50'] is None else round(u['mAP50'], 3)}"))
    for key in ("total", "end_to_end"):
        if key in lat and lat[key]["n"]:
            v = lat[key]
            rows.append(
                (f"latency {key} ms", f"p50 {v['p50']:.1f}  p90 {v['p90']:.1f}  p99 {v['p99']:.1f}  max {v['max']:.1f}")
            )
    if s["throughput_fps"]:
        rows.append(("throughput", f"{s['throughput_fps']:.1f} fused frames/s"))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows))
    if s["errors"]:
        print("PARTIAL: " + "; ".join(s["errors"]))
    print(f"report: {result.report}\nsummary: {result.summary_path}\noutput bag: {result.output_bag}")
