"""Pairing IR and visible messages by header stamp, accounting for every message.

Three policies (``sync.policy``), each reporting what happened to every message it was
given: each ends in exactly one emitted set or one :class:`Drop` with a reason, or is
still :meth:`pending`. That is what lets the node put drops by reason on /diagnostics.

- :class:`ImmediateApproximatePolicy` (``approximate``, the default) pairs a message as
  soon as a partner within ``slop`` is queued, as the Python ``message_filters``
  ApproximateTimeSynchronizer does: the pair leaves on the arrival of its second message.
- :class:`ApproximateTimePolicy` (``optimal``) is the C++ ``message_filters``
  ApproximateTime algorithm (pivot, candidate, age penalty, virtual moves): it emits the
  set with the smallest stamp spread that is provably optimal given what may still arrive,
  which usually means waiting for the next frame of a camera.
- :class:`ExactTimePolicy` (``exact``) pairs identical stamps only (ExactTime).

:class:`CameraWatchdog` decides when a silent camera counts as lost, so the graph can
fall back to the other one (``ir_only`` / ``visible_only``) and resume fusion when it
returns.

Everything here is ROS-free: stamps are integer nanoseconds and items are opaque.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Drop reasons (the keys of the drop counters on /diagnostics).
QUEUE_OVERFLOW = "queue_overflow"  # more than queue_size messages waited on this camera
NO_PARTNER = "no_partner_within_slop"  # no message of the other camera is, or can still come, within slop
SUPERSEDED = "superseded"  # a better-matching set was found for its partner
PARTNER_DROPPED = "partner_dropped"  # its best partner may have been lost to a queue overflow
OUT_OF_ORDER = "out_of_order"  # stamp not newer than the newest already seen on this camera
RESET = "reset"  # pending when the pairing was reset (time jump, camera lost)
PIPELINE_BUSY = "pipeline_busy"  # a complete set replaced by a newer one before the pipeline was free
DROP_REASONS = (QUEUE_OVERFLOW, NO_PARTNER, SUPERSEDED, PARTNER_DROPPED, OUT_OF_ORDER, RESET, PIPELINE_BUSY)


@dataclass(frozen=True)
class Entry:
    """One queued message."""

    topic: int
    stamp_ns: int
    item: Any


@dataclass(frozen=True)
class Drop:
    entry: Entry
    reason: str


@dataclass
class SyncEvents:
    """What one :meth:`add` call produced: complete sets (one Entry per topic) and drops."""

    matches: list[tuple[Entry, ...]] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)


def check_sizes(num_topics: int, queue_size: int) -> None:
    """The sizes every policy needs: at least two topics and room for one message each."""
    if num_topics < 2:
        raise ValueError("a synchronizer needs at least two topics")
    if queue_size < 1:
        raise ValueError("queue_size must be at least 1")


def admit_in_order(policy, entry: Entry, newest: int | None, ev: SyncEvents) -> bool:
    """Whether ``entry`` may join ``policy``: its stamp must be newer than ``newest`` (its camera's
    newest, or the last match). An older one is dropped as out of order, unless it lies more than
    ``policy.time_jump_reset_ns`` back: the clock jumped (a bag looped), so the policy is reset."""
    if newest is not None and entry.stamp_ns <= newest:
        if 0 < policy.time_jump_reset_ns < newest - entry.stamp_ns:
            policy.reset(ev)
        else:
            ev.drops.append(Drop(entry, OUT_OF_ORDER))
            return False
    return True


class PairingPolicy:
    """What every policy shares: sizes, the time-jump reset, ``reset()`` and ``flush()``.

    A subclass implements ``add()``, ``pending()`` and ``_forget()`` (clear its queues and
    stamp history)."""

    def __init__(self, num_topics: int, queue_size: int, time_jump_reset_ns: int):
        check_sizes(num_topics, queue_size)
        self.num_topics = num_topics
        self.queue_size = queue_size
        self.time_jump_reset_ns = int(time_jump_reset_ns)
        self._forget()

    def _forget(self) -> None:
        raise NotImplementedError

    def pending(self) -> list[Entry]:
        raise NotImplementedError

    def reset(self, ev: SyncEvents | None = None) -> SyncEvents:
        """Drop everything pending (reason ``reset``) and forget the stamp history."""
        ev = ev if ev is not None else SyncEvents()
        ev.drops.extend(Drop(e, RESET) for e in self.pending())
        self._forget()
        return ev

    def flush(self) -> SyncEvents:
        """The input has ended: emit what can still be paired (by default nothing: no set waits)."""
        return SyncEvents()

    def _admit_newest(self, topic: int, stamp_ns: int, item: Any, ev: SyncEvents) -> Entry | None:
        """The entry of a message newer than its camera's newest (``self._newest``), else None
        (dropped or reset, recorded in ``ev``)."""
        entry = Entry(topic, int(stamp_ns), item)
        if not admit_in_order(self, entry, self._newest[topic], ev):
            return None
        self._newest[topic] = entry.stamp_ns
        return entry


class ImmediateApproximatePolicy(PairingPolicy):
    """Pair at once: a message leaves with the closest queued partner within ``slop_ns``.

    The Python ``message_filters`` ApproximateTimeSynchronizer's rule (on each arrival,
    search the other queues for stamps within slop of the new one, closest first, and emit
    the first set whose spread is within slop), made strict about order and accounting:

    - each camera's stamps must increase; an older stamp is dropped as ``out_of_order``,
      or, more than ``time_jump_reset_ns`` older, resets the policy (the clock jumped back);
    - sets leave in stamp order: when a set is emitted, the messages queued before its
      member on each camera can no longer be paired and are dropped, as ``superseded`` if
      the emitted set held a partner within their slop, else ``no_partner_within_slop``;
    - a queued message is dropped as ``no_partner_within_slop`` as soon as another camera
      has moved past its stamp + slop with nothing within slop queued;
    - more than ``queue_size`` messages on one camera drops its oldest (``queue_overflow``).

    The cost against :class:`ApproximateTimePolicy`: it never waits to see whether a
    tighter partner is still coming, so when the slop is wider than half a frame period
    and one camera's messages arrive late, it can pair a frame with its neighbour's
    partner. It never pairs wider than the slop.
    """

    def __init__(
        self,
        num_topics: int = 2,
        queue_size: int = 10,
        slop_ns: int = 20_000_000,
        time_jump_reset_ns: int = 1_000_000_000,
    ):
        self.slop_ns = int(slop_ns)
        super().__init__(num_topics, queue_size, time_jump_reset_ns)

    def _forget(self) -> None:
        self._newest: list[int | None] = [None] * self.num_topics
        self._queues: list[list[Entry]] = [[] for _ in range(self.num_topics)]

    def add(self, topic: int, stamp_ns: int, item: Any) -> SyncEvents:
        """Queue one message; return the set it completed (if any) and the messages dropped because of it."""
        ev = SyncEvents()
        entry = self._admit_newest(topic, stamp_ns, item, ev)
        if entry is None:
            return ev
        self._queues[topic].append(entry)
        self._drop_unpairable(ev)
        match = self._closest_set(entry)
        if match is not None:
            self._emit(match, ev)
        while len(self._queues[topic]) > self.queue_size:
            ev.drops.append(Drop(self._queues[topic].pop(0), QUEUE_OVERFLOW))
        return ev

    def pending(self) -> list[Entry]:
        """Messages queued and not yet emitted or dropped (oldest first per topic)."""
        return [e for q in self._queues for e in q]

    def _within(self, a: Entry, b: Entry) -> bool:
        return abs(a.stamp_ns - b.stamp_ns) <= self.slop_ns

    def _drop_unpairable(self, ev: SyncEvents) -> None:
        """Drop queued messages that no present or future message of some other camera can pair with."""
        for t, queue in enumerate(self._queues):
            keep = []
            for e in queue:
                dead = any(
                    newest is not None
                    and newest - e.stamp_ns > self.slop_ns
                    and not any(self._within(e, o) for o in self._queues[u])
                    for u, newest in enumerate(self._newest)
                    if u != t
                )
                if dead:
                    ev.drops.append(Drop(e, NO_PARTNER))
                else:
                    keep.append(e)
            self._queues[t] = keep

    def _closest_set(self, entry: Entry) -> tuple[Entry, ...] | None:
        """The set holding ``entry`` whose other members are closest to it, with a spread within slop."""
        options = []
        for t, queue in enumerate(self._queues):
            if t == entry.topic:
                options.append([entry])
                continue
            near = sorted((e for e in queue if self._within(e, entry)), key=lambda e: abs(e.stamp_ns - entry.stamp_ns))
            if not near:
                return None
            options.append(near)
        for candidate in itertools.product(*options):
            stamps = [e.stamp_ns for e in candidate]
            if max(stamps) - min(stamps) <= self.slop_ns:
                return candidate
        return None

    def _emit(self, match: tuple[Entry, ...], ev: SyncEvents) -> None:
        ev.matches.append(match)
        for t, member in enumerate(match):
            queue = self._queues[t]
            index = next(i for i, e in enumerate(queue) if e is member)
            for older in queue[:index]:
                lost_partner = any(self._within(older, m) for m in match if m.topic != t)
                ev.drops.append(Drop(older, SUPERSEDED if lost_partner else NO_PARTNER))
            del queue[: index + 1]


class ApproximateTimePolicy(PairingPolicy):
    """message_filters' (C++) ApproximateTime policy with drop accounting (``sync.policy: optimal``).

    ``slop_ns`` is ``max_interval_duration`` (message_filters Python's ``slop``);
    ``queue_size`` bounds the messages kept per topic; ``age_penalty`` is the C++ default
    0.1. A stamp that is not newer than the newest seen on its topic is dropped as
    out-of-order (the algorithm needs each topic's stamps to increase), unless it is more
    than ``time_jump_reset_ns`` older, which means the clock jumped back (a bag looped)
    and resets the policy instead. ``time_jump_reset_ns = 0`` disables resets.

    ``inter_message_lower_bound_ns`` is message_filters' ``setInterMessageLowerBound``: the
    least stamp step of a camera. Without it (0) a pair can only be proven optimal when
    the next message arrives, one frame period later; with it (e.g. 20 ms for 30 Hz
    cameras) a tight pair is emitted as soon as its second message arrives.
    """

    def __init__(
        self,
        num_topics: int = 2,
        queue_size: int = 10,
        slop_ns: int = 20_000_000,
        age_penalty: float = 0.1,
        time_jump_reset_ns: int = 1_000_000_000,
        inter_message_lower_bound_ns: int = 0,
    ):
        self.slop_ns = int(slop_ns)
        self.age_penalty = float(age_penalty)
        self.inter_message_lower_bound_ns = int(inter_message_lower_bound_ns)
        super().__init__(num_topics, queue_size, time_jump_reset_ns)

    def _forget(self) -> None:
        self._newest: list[int | None] = [None] * self.num_topics
        self._deques: list[deque[Entry]] = [deque() for _ in range(self.num_topics)]
        self._past: list[list[Entry]] = [[] for _ in range(self.num_topics)]
        self._has_dropped = [False] * self.num_topics
        self._candidate: list[Entry] | None = None
        self._pivot: int | None = None
        self._pivot_time = self._cand_start = self._cand_end = 0

    # -- public API ---------------------------------------------------------------------------
    def add(self, topic: int, stamp_ns: int, item: Any) -> SyncEvents:
        """Queue one message; return the sets completed and the messages dropped because of it."""
        ev = SyncEvents()
        entry = self._admit_newest(topic, stamp_ns, item, ev)
        if entry is None:
            return ev
        q = self._deques[topic]
        q.append(entry)
        if len(q) == 1 and self._all_non_empty():
            self._process(ev)
        if len(q) + len(self._past[topic]) > self.queue_size:
            # Cancel the ongoing candidate search, then drop the oldest message of this topic.
            self._recover_all()
            ev.drops.append(Drop(q.popleft(), QUEUE_OVERFLOW))
            self._has_dropped[topic] = True
            if self._pivot is not None:
                self._candidate, self._pivot = None, None
                self._process(ev)
        return ev

    def pending(self) -> list[Entry]:
        """Messages queued and not yet emitted or dropped (oldest first per topic)."""
        return [e for t in range(self.num_topics) for e in (*self._past[t], *self._deques[t])]

    def flush(self) -> SyncEvents:
        """The input has ended (the end of a bag): emit the sets that were waiting only for proof
        that no better partner would come. With no message left to come, the candidate is optimal."""
        ev = SyncEvents()
        bound = self.inter_message_lower_bound_ns
        self.inter_message_lower_bound_ns = 1 << 62  # no topic delivers another message
        try:
            while True:
                emitted = len(ev.matches)
                if self._all_non_empty():
                    self._process(ev)
                elif self._pivot is not None:
                    self._virtual_search(ev)
                if len(ev.matches) == emitted:
                    return ev
        finally:
            self.inter_message_lower_bound_ns = bound

    # -- the message_filters algorithm ----------------------------------------------------------
    def _all_non_empty(self) -> bool:
        return all(self._deques)

    def _boundary(self, times: list[int], end: bool) -> tuple[int, int]:
        """Index and time of the earliest (first on ties) or latest (last on ties) of ``times``."""
        index, time = 0, times[0]
        for i in range(1, len(times)):
            if (times[i] < time) ^ end:
                index, time = i, times[i]
        return index, time

    def _front_times(self) -> list[int]:
        return [q[0].stamp_ns for q in self._deques]

    def _virtual_times(self) -> list[int]:
        # An empty topic's next message comes no earlier than its last one plus the lower bound,
        # nor (being still to come) before the pivot.
        bound = self.inter_message_lower_bound_ns
        return [
            q[0].stamp_ns if q else max(self._past[i][-1].stamp_ns + bound, self._pivot_time)
            for i, q in enumerate(self._deques)
        ]

    def _penalised(self, end_time: int) -> float:
        return (end_time - self._cand_end) * (1.0 + self.age_penalty)

    def _process(self, ev: SyncEvents) -> None:
        while self._all_non_empty():
            times = self._front_times()
            start_i, start_t = self._boundary(times, end=False)
            end_i, end_t = self._boundary(times, end=True)
            for i in range(self.num_topics):
                if i != end_i:
                    # No dropped message could have been a better partner than the ones we have.
                    self._has_dropped[i] = False
            if self._pivot is None:
                if end_t - start_t > self.slop_ns:
                    ev.drops.append(Drop(self._deques[start_i].popleft(), NO_PARTNER))
                    continue
                if self._has_dropped[end_i]:
                    ev.drops.append(Drop(self._deques[start_i].popleft(), PARTNER_DROPPED))
                    continue
                self._make_candidate(ev)
                self._cand_start, self._cand_end = start_t, end_t
                self._pivot, self._pivot_time = end_i, end_t
                self._move_front_to_past(start_i)
            else:
                if self._penalised(end_t) >= start_t - self._cand_start:
                    self._move_front_to_past(start_i)  # not better than the current candidate
                else:
                    self._make_candidate(ev)  # better; keep the pivot (others have not arrived)
                    self._cand_start, self._cand_end = start_t, end_t
                    self._move_front_to_past(start_i)
            if start_i == self._pivot:
                self._publish_candidate(ev)  # all candidates for this pivot were tried
            elif self._penalised(end_t) >= self._pivot_time - self._cand_start:
                self._publish_candidate(ev)  # any later candidate spans [pivot, end]: provably worse
            elif not self._all_non_empty():
                self._virtual_search(ev)

    def _virtual_search(self, ev: SyncEvents) -> None:
        """Try to prove the candidate optimal before the empty topics deliver more messages."""
        moves = [0] * self.num_topics
        while True:
            times = self._virtual_times()
            start_i, start_t = self._boundary(times, end=False)
            _, end_t = self._boundary(times, end=True)
            if self._penalised(end_t) >= self._pivot_time - self._cand_start:
                self._publish_candidate(ev)
                return
            if self._penalised(end_t) < start_t - self._cand_start:
                # An optimistic future candidate would beat ours: undo the virtual moves and wait.
                for i, n in enumerate(moves):
                    for _ in range(n):
                        self._deques[i].appendleft(self._past[i].pop())
                return
            assert self._deques[start_i], "message_filters invariant: the start topic is never virtual here"
            self._move_front_to_past(start_i)
            moves[start_i] += 1

    def _move_front_to_past(self, i: int) -> None:
        self._past[i].append(self._deques[i].popleft())

    def _make_candidate(self, ev: SyncEvents) -> None:
        self._candidate = [q[0] for q in self._deques]
        for past in self._past:  # older than the new candidate: they lost to it
            ev.drops.extend(Drop(e, SUPERSEDED) for e in past)
            past.clear()

    def _publish_candidate(self, ev: SyncEvents) -> None:
        candidate = tuple(self._candidate)
        ev.matches.append(candidate)
        self._candidate, self._pivot = None, None
        self._recover_all()
        for i, q in enumerate(self._deques):
            assert q[0] is candidate[i]
            q.popleft()

    def _recover_all(self) -> None:
        for q, past in zip(self._deques, self._past):
            q.extendleft(reversed(past))
            past.clear()


class ExactTimePolicy(PairingPolicy):
    """Pairs messages whose stamps are identical (message_filters' ExactTime).

    When a set completes, incomplete sets with older stamps can never complete (stamps
    increase per topic) and are dropped as ``no_partner_within_slop``; more than
    ``queue_size`` incomplete stamps drops the oldest as ``queue_overflow``.
    """

    def __init__(self, num_topics: int = 2, queue_size: int = 10, time_jump_reset_ns: int = 1_000_000_000):
        super().__init__(num_topics, queue_size, time_jump_reset_ns)

    def _forget(self) -> None:
        self._sets: dict[int, list[Entry | None]] = {}
        self._last_match: int | None = None

    def add(self, topic: int, stamp_ns: int, item: Any) -> SyncEvents:
        ev = SyncEvents()
        entry = Entry(topic, int(stamp_ns), item)
        if not admit_in_order(self, entry, self._last_match, ev):
            return ev
        slot = self._sets.setdefault(entry.stamp_ns, [None] * self.num_topics)
        if slot[topic] is not None:  # same stamp twice on one topic: keep the newer message
            ev.drops.append(Drop(slot[topic], SUPERSEDED))
        slot[topic] = entry
        if all(e is not None for e in slot):
            ev.matches.append(tuple(slot))
            del self._sets[entry.stamp_ns]
            self._last_match = entry.stamp_ns
            for stamp in [s for s in self._sets if s < entry.stamp_ns]:
                ev.drops.extend(Drop(e, NO_PARTNER) for e in self._sets.pop(stamp) if e is not None)
        while len(self._sets) > self.queue_size:
            ev.drops.extend(Drop(e, QUEUE_OVERFLOW) for e in self._sets.pop(min(self._sets)) if e is not None)
        return ev

    def pending(self) -> list[Entry]:
        return [e for s in sorted(self._sets) for e in self._sets[s] if e is not None]


POLICIES = ("approximate", "optimal", "exact")


def make_policy(
    policy: str,
    queue_size: int,
    slop_s: float,
    age_penalty: float = 0.1,
    time_jump_reset_s: float = 1.0,
    min_period_s: float = 0.0,
    num_topics: int = 2,
):
    """The policy named by ``sync.policy`` (one of :data:`POLICIES`)."""
    jump_ns = int(round(time_jump_reset_s * 1e9))
    slop_ns = int(round(slop_s * 1e9))
    if policy == "exact":
        return ExactTimePolicy(num_topics, queue_size, jump_ns)
    if policy == "approximate":
        return ImmediateApproximatePolicy(num_topics, queue_size, slop_ns, jump_ns)
    if policy == "optimal":
        return ApproximateTimePolicy(
            num_topics, queue_size, slop_ns, age_penalty, jump_ns, int(round(min_period_s * 1e9))
        )
    raise ValueError(f"unknown sync policy {policy!r}; use one of {', '.join(POLICIES)}")


def policy_from_config(cfg, num_topics: int = 2):
    """The policy of a ``SyncConfig`` (``sync.*``): the node and replay pair identically through this."""
    return make_policy(
        cfg.policy, cfg.queue_size, cfg.slop_s, cfg.age_penalty, cfg.time_jump_reset_s, cfg.min_period_s, num_topics
    )


def apply_config(policy, cfg) -> None:
    """Apply the run-time ``sync.*`` settings (slop, queue, age penalty, ...) to a running policy."""
    policy.queue_size = cfg.queue_size
    policy.time_jump_reset_ns = int(round(cfg.time_jump_reset_s * 1e9))
    if isinstance(policy, (ImmediateApproximatePolicy, ApproximateTimePolicy)):
        policy.slop_ns = int(round(cfg.slop_s * 1e9))
    if isinstance(policy, ApproximateTimePolicy):
        policy.age_penalty = cfg.age_penalty
        policy.inter_message_lower_bound_ns = int(round(cfg.min_period_s * 1e9))


# Output modes (the MODE_* constants of ivif_ros/FusionStatus).
FUSED, IR_ONLY, VISIBLE_ONLY, WAITING = "fused", "ir_only", "visible_only", "waiting"
IR, VISIBLE = 0, 1  # topic indices


class CameraWatchdog:
    """Which cameras are alive: a camera silent for longer than ``timeout_ns`` is lost.

    Both cameras start "seen" at ``start_ns`` so that the graph waits one timeout for the
    slower camera before it falls back to the other; the same grace applies when a camera
    speaks after both were silent. A lost camera is back at its first new message.
    """

    def __init__(self, timeout_ns: int, start_ns: int):
        self.timeout_ns = int(timeout_ns)
        self._last_seen = [int(start_ns), int(start_ns)]
        self._ever_seen = [False, False]

    def seen(self, topic: int, now_ns: int) -> None:
        other = 1 - topic
        if not self.alive(topic, now_ns) and not self.alive(other, now_ns):
            # Both were silent (start-up, or the whole rig stopped): give the other camera the
            # same grace period as at start before falling back to this one alone.
            self._last_seen[other] = int(now_ns)
        self._last_seen[topic] = int(now_ns)  # not max(): after a clock jump back (bag loop) age restarts
        self._ever_seen[topic] = True

    def alive(self, topic: int, now_ns: int) -> bool:
        return now_ns - self._last_seen[topic] <= self.timeout_ns

    def mode(self, now_ns: int) -> str:
        ir, vis = self.alive(IR, now_ns), self.alive(VISIBLE, now_ns)
        if ir and vis:
            return FUSED
        if ir and self._ever_seen[IR]:
            return IR_ONLY
        if vis and self._ever_seen[VISIBLE]:
            return VISIBLE_ONLY
        return WAITING


class BoundedHandover:
    """Hand-over from the pairing to a slower consumer: at most ``depth`` items wait, oldest first.

    When inference is slower than the cameras, processing every pair would build an
    ever-growing backlog (latency grows without bound); ROS drivers and message_filters
    queues drop instead. When the queue is full the oldest waiting item is displaced and
    returned so the caller can count it (reason ``pipeline_busy``). ``depth`` 1 always
    processes the newest pair (lowest latency); 2 absorbs a single slow frame (a GC pause,
    a scheduler hiccup on a loaded CPU) at the cost of at most one frame of extra latency.
    """

    def __init__(self, depth: int = 1):
        if depth < 1:
            raise ValueError(f"hand-over depth must be at least 1, got {depth}")
        self.depth = depth
        self._items: deque = deque()
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: Any) -> Any:
        """Offer ``item``; return the item it displaced (None if there was room)."""
        with self._cond:
            self._items.append(item)
            displaced = self._items.popleft() if len(self._items) > self.depth else None
            self._cond.notify()
            return displaced

    def take(self, timeout_s: float | None = None) -> Any:
        """Wait for the oldest waiting item (None after ``timeout_s`` or once closed)."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout_s)
            return self._items.popleft() if self._items and not self._closed else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> list:
        """Wake the consumer for good; return the items still waiting (oldest first)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            left = list(self._items)
            self._items.clear()
            return left
