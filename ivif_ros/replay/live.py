"""Live replay: play a bag into the running node graph over real DDS and record its answer.

Design: the graph runs in its own process (``ivif launch`` with ``use_sim_time``), so
inference never competes with the player for the GIL; this process holds two rclpy
nodes in a private context:

* the **player** publishes ``/clock`` and the input images at the bag's receive times
  scaled by ``rate``. It publishes the bag's serialized CDR bytes as they are
  (``Publisher.publish(bytes)``), so a message costs a memcpy, not a Python
  (de)serialization, and the timing loop stays within a fraction of a millisecond;
* the **recorder** subscribes with ``raw=True`` to every output topic with the QoS the
  graph's publishers offer (as ``ros2 bag record`` does) and writes each message to the
  output bag as it arrives (stamped with the simulated time); only the fused frames'
  stamps and receive times are kept.

Memory stays flat whatever the bag's length: the player reads the bag as it plays
(:meth:`BagInputs.stream`), and the output bag is written in finished files
(:class:`SegmentedBagWriter`) so a killed replay leaves a readable bag.

Transport and QoS choice: the graph's Fast DDS profile (``graph.fastdds_profile``,
config/fastdds_profile.xml: default discovery, large images intact) for both sides unless
a Fast DDS variable is exported (tests use SHM only). The player's
publishers and the recorder are RELIABLE with deep queues, so the replay itself never
drops; the graph's input subscriptions keep the QoS of its config (sensor-data best
effort by default), which is what is being evaluated. The graph's own "received"
counters, recorded from /diagnostics, show whether anything was lost on the way in.

End-to-end latency is measured in one clock: ``time.monotonic_ns()`` of this process at
publish (player) and at receive (recorder).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ivif_ros.errors import InputError, UserFacingError
from ivif_ros.nodes.launcher import die_with_parent
from ivif_ros.replay.evaluate import DIAGNOSTICS

IMAGE_QUEUE_DEPTH = 100
STATUS_TYPE = "ivif_ros/msg/FusionStatus"
WARMUP_FRAMES = 15  # half a second at 30 Hz
WARMUP_QUIET_S = 1.0  # the graph counts as warm once it has answered and been quiet this long
RECORD_QUEUE_DEPTH = 1000
CLOCK_PERIOD_S = 0.02  # /clock between messages, like `ros2 bag play --clock 50`


@dataclass
class PlayItem:
    """One message to play: topic, ROS type (``pkg/msg/Name``), bag time and CDR bytes."""

    msg_id: int  # id in the MessageLedger
    topic: str
    msgtype: str
    log_ns: int
    data: bytes


@dataclass
class Recording:
    """What the recorder keeps besides the bag: counts and times, no messages."""

    counts: dict[str, int] = field(default_factory=dict)  # output topic -> messages received
    receive_ns: dict[int, int] = field(default_factory=dict)  # fused stamp -> receive monotonic ns
    publish_ns: dict[int, int] = field(default_factory=dict)  # msg_id -> publish monotonic ns
    published: dict[str, int] = field(default_factory=dict)  # graph input topic -> images published
    types: dict[str, str] = field(default_factory=dict)  # output topic -> ROS type


def replay_env(profile: str, domain_id: int, log_dir: Path) -> dict[str, str]:
    """Environment of the graph and of this process's player/recorder: one DDS domain, the
    graph's Fast DDS profile (``graph.fastdds_profile``), discovery kept on this machine, ROS
    logs beside the report. Settings the user exported win, except the domain, which both
    sides must share."""
    from ivif_ros.nodes.launcher import transport_env

    env = transport_env(profile, os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_LOG_DIR", str(log_dir))
    return env


class GraphProcess:
    """The node graph as a child process; its output goes to ``log_path``."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path):
        self.cmd, self.log_path = cmd, log_path
        self._log = open(log_path, "wb")
        # A new session so that Ctrl-C in the terminal reaches us, and we stop the graph in order.
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise UserFacingError(
                f"the node graph exited with code {self.proc.returncode} before the replay finished; "
                f"command: {' '.join(self.cmd)}\nlast lines of {self.log_path}:\n{self.tail()}"
            )

    def tail(self, n: int = 15) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 25.0) -> None:
        """SIGINT (``ivif launch`` stops its nodes, allowing them 15 s), then SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class LiveSession:
    """Player + recorder nodes in a private rclpy context."""

    def __init__(
        self, input_types: dict[str, str], output_topics: list[str], domain_id: int, bag, fused_topic: str, stop
    ):
        """The DDS transport comes from ``os.environ`` (see :func:`replay_env`). Outputs go to
        ``bag`` (a :class:`SegmentedBagWriter`); ``stop`` (a StopFlag) is checked while waiting."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rclpy.signals import SignalHandlerOptions
        from rosgraph_msgs.msg import Clock

        self.ctx = Context()
        # SIGINT/SIGTERM stay with the replay (see .interrupt), which stops between messages and
        # closes the bag; rclpy's handlers would shut this context down under the player.
        rclpy.init(context=self.ctx, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self.player = rclpy.create_node("ivif_replay_player", context=self.ctx)
        self.recorder = rclpy.create_node("ivif_replay_recorder", context=self.ctx)
        reliable = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=IMAGE_QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE
        )
        self._clock_msg = Clock()
        self.clock_pub = self.player.create_publisher(Clock, "/clock", 10)
        self.pubs = {t: self.player.create_publisher(_msg_class(ty), t, reliable) for t, ty in input_types.items()}
        self.output_topics = output_topics
        self.status_topic = next(t for t in output_topics if t.endswith("status"))
        self.recording = Recording()
        self.bag, self.fused_topic, self.stop = bag, fused_topic, stop
        self._bag_lock = threading.Lock()  # topics are added from this thread while callbacks write
        self._sim_now_ns = 0
        self._subs = []
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.recorder)
        self._spin = threading.Thread(target=self._spin_forever, daemon=True)
        self._spin.start()

    def _spin_forever(self) -> None:
        while self.ctx.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down between ok() and spin_once()
                if self.ctx.ok():
                    raise

    # --- readiness -------------------------------------------------------------------
    def wait_for_graph(self, graph: GraphProcess | None, timeout_s: float) -> None:
        """Block until the graph subscribes to every input and publishes every output topic."""
        deadline = time.monotonic() + timeout_s
        missing: list[str] = []
        while time.monotonic() < deadline:
            self.stop.check()
            if graph is not None:
                graph.check_alive()
            missing = [f"subscriber of {t}" for t, p in self.pubs.items() if p.get_subscription_count() == 0]
            missing += [
                f"publisher of {t}" for t in self.output_topics if not self.recorder.get_publishers_info_by_topic(t)
            ]
            if not missing:
                break
            time.sleep(0.1)
        else:
            tail = f"\nlast lines of the graph log {graph.log_path}:\n{graph.tail()}" if graph else ""
            raise UserFacingError(
                f"the node graph did not come up within {timeout_s:.0f} s: no {', no '.join(missing)}. "
                f"Check the topic names (--ir-topic/--vis-topic, config outputs) and the graph log.{tail}"
            )

    def subscribe_outputs(self) -> None:
        """Subscribe the recorder to every output topic, matched to the publishers' QoS."""
        for topic in self.output_topics:
            self._subscribe(topic)
        # Let the new subscriptions match the publishers before the first frame is sent.
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if all(self.recorder.count_publishers(t) > 0 and self._matched(t) for t in self.output_topics):
                break
            time.sleep(0.05)
        time.sleep(0.3)

    def _matched(self, topic: str) -> bool:
        infos = self.recorder.get_subscriptions_info_by_topic(topic)
        return any(i.node_name == self.recorder.get_name() for i in infos)

    def _subscribe(self, topic: str) -> None:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        infos = self.recorder.get_publishers_info_by_topic(topic)
        msgtype = infos[0].topic_type
        all_reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=RECORD_QUEUE_DEPTH,
            reliability=ReliabilityPolicy.RELIABLE if all_reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        )
        self.recording.types[topic] = msgtype
        with self._bag_lock:
            self.bag.add_topic(topic, msgtype)
        rec = self.recording
        store = self.bag.typestore

        def on_message(data: bytes, topic=topic):
            received = time.monotonic_ns()
            with self._bag_lock:
                self.bag.write(topic, self._sim_now_ns, data)
            rec.counts[topic] = rec.counts.get(topic, 0) + 1
            if topic == self.fused_topic:
                header = store.deserialize_cdr(data, msgtype).header
                rec.receive_ns[header.stamp.sec * 1_000_000_000 + header.stamp.nanosec] = received

        self._subs.append(self.recorder.create_subscription(_msg_class(msgtype), topic, on_message, qos, raw=True))

    def warm_up(self, items: list[PlayItem], rate: float, graph: GraphProcess | None, timeout_s: float) -> int:
        """Play ``items`` (from :func:`warmup_items`) and wait until the graph has answered
        and gone quiet, before the recorder subscribes. Returns the number of answers.

        An engine's first inferences are several times slower than the rest (graph
        optimisation, allocations, cold caches), which would make the graph drop the bag's
        first pairs; a robot's graph runs warm. The warm-up also starts the graph's camera
        watchdog with both cameras alive, as on a running robot.
        """
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        answers = []
        probe = self.recorder.create_subscription(  # best effort matches any publisher
            _msg_class(STATUS_TYPE),
            self.status_topic,
            lambda _msg: answers.append(time.monotonic()),
            QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT),
        )
        try:
            deadline = time.monotonic() + 10.0
            while probe.get_publisher_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # answers sent before the probe matched would be missed
            log0, wall0 = items[0].log_ns, time.monotonic_ns()
            for item in items:
                delay = wall0 + (item.log_ns - log0) / rate - time.monotonic_ns()
                if delay > 0:
                    time.sleep(delay * 1e-9)
                self._publish_clock(item.log_ns)
                self.pubs[item.topic].publish(item.data)
                self._count_published(item.topic)
            deadline = time.monotonic() + timeout_s
            while not answers or time.monotonic() - answers[-1] < WARMUP_QUIET_S:
                self.stop.check()
                if time.monotonic() > deadline:
                    raise UserFacingError(
                        f"the node graph did not answer the warm-up frames within {timeout_s:.0f} s"
                        + (f"; last lines of {graph.log_path}:\n{graph.tail()}" if graph else "")
                    )
                if graph is not None:
                    graph.check_alive()
                time.sleep(0.05)
        finally:
            self.recorder.destroy_subscription(probe)
        return len(answers)

    # --- playback --------------------------------------------------------------------
    def _publish_clock(self, sim_ns: int) -> None:
        self._sim_now_ns = sim_ns
        self._clock_msg.clock.sec, self._clock_msg.clock.nanosec = divmod(sim_ns, 1_000_000_000)
        self.clock_pub.publish(self._clock_msg)

    def _count_published(self, topic: str) -> None:
        if topic in GRAPH_COUNTER_NAMES:
            self.recording.published[topic] = self.recording.published.get(topic, 0) + 1

    def play(self, items, rate: float, progress) -> None:
        """Publish ``items`` (PlayItems in ``log_ns`` order, read as they are played) at bag
        timing / ``rate``, with /clock. A raised stop flag ends the playback between messages."""
        wall0 = log0 = None
        tick = int(CLOCK_PERIOD_S * 1e9)
        for item in items:
            self.stop.check()
            if wall0 is None:
                log0 = item.log_ns
                self._publish_clock(log0)
                wall0 = time.monotonic_ns()
            due = wall0 + int((item.log_ns - log0) / rate)
            while True:  # /clock ticks while waiting, so ROS-time timers in the graph run
                now = time.monotonic_ns()
                if now >= due:
                    break
                time.sleep(min(due - now, tick) * 1e-9)
                self._publish_clock(log0 + int((time.monotonic_ns() - wall0) * rate))
            self._publish_clock(item.log_ns)
            if item.msg_id >= 0:  # bag image (camera_info is not in the ledger)
                self.recording.publish_ns[item.msg_id] = time.monotonic_ns()
            self.pubs[item.topic].publish(item.data)
            self._count_published(item.topic)
            progress.update(1)

    def drain(
        self, expected: int, count_topic: str, idle_s: float, timeout_s: float, graph: GraphProcess | None
    ) -> None:
        """Wait for ``expected`` messages on ``count_topic``, or until the graph has been quiet
        for ``idle_s`` (it dropped some), keeping /clock running meanwhile."""
        start = last_change = time.monotonic()
        seen = -1
        sim = self._sim_now_ns
        while time.monotonic() - start < timeout_s:
            self.stop.check()
            n = self.recording.counts.get(count_topic, 0)
            if n >= expected:
                break
            if n != seen:
                seen, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > idle_s:
                break
            if graph is not None:
                graph.check_alive()
            sim = self._tick(sim)
        time.sleep(0.2)  # the remaining outputs of the last frame (status after image)

    def await_diagnostics(self, period_s: float, graph: GraphProcess | None) -> bool:
        """Run /clock until the graph publishes /diagnostics once more (its timer is on ROS
        time), so the recording ends with the graph's final counters."""
        n0 = self.recording.counts.get(DIAGNOSTICS, 0)
        sim, deadline = self._sim_now_ns, time.monotonic() + 2 * period_s + 2.0
        while time.monotonic() < deadline:
            if self.recording.counts.get(DIAGNOSTICS, 0) > n0:
                return True
            if graph is not None:
                graph.check_alive()
            sim = self._tick(sim)
        return False

    def _tick(self, sim_ns: int) -> int:
        """Sleep one /clock period and advance simulated time by as much."""
        time.sleep(CLOCK_PERIOD_S)
        sim_ns += int(CLOCK_PERIOD_S * 1e9)
        self._publish_clock(sim_ns)
        return sim_ns

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.player.destroy_node()
        self.recorder.destroy_node()
        rclpy.shutdown(context=self.ctx)
        self._spin.join(timeout=2)


def _msg_class(msgtype: str):
    """Import the rclpy message class of ``pkg/msg/Name``."""
    import importlib

    pkg, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"message type {msgtype} is not available to rclpy ({exc}); install the package that defines it"
        ) from exc


# Input topics of the fusion node (relative names in the root namespace). The player
# publishes the bag's IR/visible topics under these names, so any bag topic naming works.
GRAPH_INPUTS = {
    "ir": "/ir/image_raw",
    "vis": "/visible/image_raw",
    "ir_info": "/ir/camera_info",
    "vis_info": "/visible/camera_info",
}
# The fusion node's /diagnostics counter of images received per input topic ("received <name>").
GRAPH_COUNTER_NAMES = {GRAPH_INPUTS["ir"]: "ir", GRAPH_INPUTS["vis"]: "visible"}
GRAPH_READY_TIMEOUT_S = 180.0  # first start exports/loads the model and may build an engine
DRAIN_IDLE_S = 5.0


@dataclass
class LiveResult:
    receive_ns: dict[int, int]  # fused frame stamp -> recorder receive time (monotonic ns)
    publish_ns: dict[int, int]  # ledger message id -> publish time (monotonic ns)
    wall_s: float  # first input published -> last output received
    domain_id: int
    published: dict[str, int]  # graph input image topic -> images published, warm-up included
    errors: list[str] = field(default_factory=list)  # an interruption, with how far the replay got

    def graph_inputs(self, counters: dict[str, int]) -> dict[str, dict[str, int]]:
        """Images published vs received by the graph (its ``received <camera>`` counters) per
        input topic: the difference was lost between the replay and the fusion node."""
        out = {}
        for topic, sent in self.published.items():
            key = f"received {GRAPH_COUNTER_NAMES[topic]}"
            if key in counters:
                out[topic] = {"published": sent, "received": counters[key], "lost": sent - counters[key]}
        return out


def play_item(inputs, topic: str, log_ns: int, data: bytes, msgtype: str, item) -> PlayItem:
    """A bag message as the graph's input: IR/visible images (``item`` set) or camera_info.

    CompressedImage is decoded here and published as Image (the node subscribes to raw
    images); everything else is passed on as the bag's CDR bytes.
    """
    from ivif_ros.bag import image_msgs as im

    if item is None:
        key = next(k for k, t in inputs.info_topics.items() if t == topic)
        return PlayItem(-1, GRAPH_INPUTS[f"{key}_info"], im.CAMERA_INFO, log_ns, data)
    key = "ir" if item.topic == inputs.ir_topic else "vis"
    if msgtype == im.COMPRESSED_IMAGE:
        store = inputs.typestore
        msg = store.deserialize_cdr(data, msgtype)
        arr, encoding = im.compressed_to_array(msg, item.topic)
        data = bytes(
            store.serialize_cdr(
                im.make_image(store, arr, encoding, im.stamp_ns(msg.header), msg.header.frame_id), im.IMAGE
            )
        )
    return PlayItem(item.msg_id, GRAPH_INPUTS[key], im.IMAGE, log_ns, data)


def play_items(inputs, wanted=None) -> Iterator[PlayItem]:
    """The bag's IR/visible (``wanted`` ones, default all readable) and camera_info messages as
    the graph's inputs, in bag order, read from the bag as they are asked for."""
    extra = tuple(inputs.info_topics.values()) if wanted is None else ()
    for topic, log_ns, data, msgtype, item in inputs.stream(wanted, extra):
        yield play_item(inputs, topic, log_ns, data, msgtype, item)


def write_graph_params(cfg, path: Path) -> Path:
    """The replay's effective config as a ROS 2 parameters file, so the graph runs exactly
    the settings offline replay and evaluation use (whatever format --config was in)."""
    import yaml

    nested: dict = {}
    for name, value in cfg.to_flat().items():
        section, key = name.split(".", 1)
        nested.setdefault(section, {})[key] = value
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": nested}}, sort_keys=False))
    return path


def graph_command(params_file: Path) -> list[str]:
    """``ivif launch`` (the nodes engineer's launcher) in simulated time, from the replay's params file."""
    return [sys.executable, "-m", "ivif_ros.cli", "launch", "--config", str(params_file), "--use-sim-time"]


def run_live(inputs, ledger, opts, cfg, topics, out_bag: Path, stop=None) -> LiveResult:
    """Start the graph, play the bag into it at ``opts.rate``, record its outputs to ``out_bag``.
    A raised ``stop`` (SIGINT/SIGTERM) ends the playback: the graph is stopped, the bag closed
    with what was recorded, and the interruption is returned in ``errors``."""
    from tqdm import tqdm

    from ivif_ros.bag import image_msgs as im
    from ivif_ros.bag.segmented_writer import SegmentedBagWriter
    from ivif_ros.replay.interrupt import Interrupted, StopFlag

    stop = stop or StopFlag()
    # An exported ROS_DOMAIN_ID is kept (to watch the replay with ros2 topic echo); otherwise a
    # random one, so the replay neither disturbs nor hears other ROS graphs on this machine.
    domain_id = int(os.environ["ROS_DOMAIN_ID"]) if os.environ.get("ROS_DOMAIN_ID") else random.randint(1, 200)
    log_dir = Path(opts.out) / "ros_log"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = replay_env(cfg.graph.fastdds_profile, domain_id, log_dir)
    os.environ.update(env)  # this process's DDS participant reads them at rclpy.init
    input_types = {GRAPH_INPUTS[k]: im.IMAGE for k in ("ir", "vis")}
    input_types.update({GRAPH_INPUTS[f"{k}_info"]: im.CAMERA_INFO for k in inputs.info_topics})
    n_items = sum(not i.refused for i in inputs.items) + sum(
        inputs.topic_counts.get(t, 0) for t in inputs.info_topics.values()
    )
    transport = ", ".join(
        f"{k}={env[k]}" for k in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS") if k in env
    )
    print(
        f"ivif replay: starting the node graph (ROS_DOMAIN_ID={domain_id}{', ' + transport if transport else ''}); "
        f"log: {log_dir / 'graph.log'}"
    )
    # No overlay node: it only draws visualisations, and on 2 cores its CPU time would be
    # taken from the fusion node under test.
    params = write_graph_params(cfg.with_overrides({"graph.overlay": False}), Path(opts.out) / "graph_params.yaml")
    errors: list[str] = []
    session = None
    with SegmentedBagWriter(out_bag, storage=opts.storage_format, segment_s=opts.segment_s, overwrite=True) as bag:
        graph = GraphProcess(graph_command(params), env, log_dir / "graph.log")
        try:
            # /diagnostics too: the graph's own drop counters explain pairs that got no output.
            session = LiveSession(input_types, topics.all() + [DIAGNOSTICS], domain_id, bag, topics.fused, stop)
            session.wait_for_graph(graph, GRAPH_READY_TIMEOUT_S)
            warmup = warmup_items(inputs, cfg.sync, cfg.dropout.timeout_s)
            session.warm_up(warmup, opts.rate, graph, GRAPH_READY_TIMEOUT_S)
            del warmup
            session.subscribe_outputs()
            with tqdm(total=n_items, desc=f"play x{opts.rate:g}", unit="msg") as bar:
                session.play(play_items(inputs), opts.rate, bar)
            session.drain(len(ledger.pairs), topics.status, DRAIN_IDLE_S, 60.0 + DRAIN_IDLE_S, graph)
            session.await_diagnostics(cfg.diagnostics.period_s, graph)
        except Interrupted as exc:
            played = len(session.recording.publish_ns) if session is not None else 0
            errors.append(f"{exc}: {played} of {sum(not i.refused for i in inputs.items)} input images were played")
        finally:
            if session is not None:
                session.close()
            graph.stop()
    rec = session.recording if session is not None else Recording()
    # Throughput window: first input published -> last output received.
    first_pub = min(rec.publish_ns.values(), default=0)
    last_recv = max(rec.receive_ns.values(), default=first_pub)  # last fused frame, not the final /diagnostics
    published = {t: rec.published.get(t, 0) for t in (GRAPH_INPUTS["ir"], GRAPH_INPUTS["vis"])}
    return LiveResult(rec.receive_ns, dict(rec.publish_ns), (last_recv - first_pub) / 1e9, domain_id, published, errors)


def warmup_items(inputs, sync_cfg, dropout_timeout_s: float) -> list[PlayItem]:
    """``WARMUP_FRAMES`` copies of the bag's first IR/visible pair, restamped at the bag's
    frame period just before the bag starts, then one more visible copy.

    Repeating one frame leaves the graph's only cross-frame state, the IR normaliser's
    smoothed window, exactly where a single pass over that frame leaves it, so the live
    output stays comparable with offline replay. The extra visible copy completes the last
    warm-up pair (ApproximateTime emits a pair when a newer message proves it best) and is
    then dropped unpaired; the gap before the bag exceeds the sync slop so it cannot pair
    with the bag's first IR image, and stays under the dropout timeout so both cameras
    still count as alive when the bag starts.
    """
    import dataclasses

    from ivif_ros.bag import image_msgs as im

    store = inputs.typestore
    firsts: dict[str, PlayItem] = {}
    found: set[str] = set()  # bag topics whose first image is taken
    for item in play_items(inputs, lambda i: i.topic not in found):
        key = "ir" if item.topic == GRAPH_INPUTS["ir"] else "vis"
        firsts[key] = item
        found.add(inputs.ir_topic if key == "ir" else inputs.vis_topic)
        if len(firsts) == 2:
            break
    msgs = {k: store.deserialize_cdr(i.data, im.IMAGE) for k, i in firsts.items()}
    stamps = {k: im.stamp_ns(m.header) for k, m in msgs.items()}
    vis_times = [i.log_ns for i in inputs.items if i.topic == inputs.vis_topic and not i.refused]
    period = (vis_times[-1] - vis_times[0]) // max(len(vis_times) - 1, 1) or 33_333_333
    gap = min(max(2 * period, int(2 * sync_cfg.slop_s * 1e9) + period), int(dropout_timeout_s * 1e9) // 2)
    t_end = stamps["vis"] - gap  # stamp of the extra visible copy

    def copy(key: str, shift: int) -> PlayItem:
        msg = dataclasses.replace(msgs[key], header=im.header(store, stamps[key] - shift, msgs[key].header.frame_id))
        return PlayItem(
            -1, firsts[key].topic, im.IMAGE, firsts[key].log_ns - shift, bytes(store.serialize_cdr(msg, im.IMAGE))
        )

    out = []
    for k in range(WARMUP_FRAMES, 0, -1):
        shift = stamps["vis"] - t_end + k * period
        out += [copy("vis", shift), copy("ir", shift)]
    out.append(copy("vis", stamps["vis"] - t_end))
    out.sort(key=lambda i: i.log_ns)
    return out
