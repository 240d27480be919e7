"""ROS' own ``message_filters`` synchronizers behind the pairing interface of ``ivif_ros.core.sync``.

:class:`MessageFiltersPairing` feeds each message to a real
``message_filters.ApproximateTimeSynchronizer`` (``sync.policy: approximate``) or
``TimeSynchronizer`` (``exact``) and watches its queues, so that the node can account
for every message as it does with the builtin policies: each ends in an emitted pair,
in a :class:`~ivif_ros.core.sync.Drop` with a reason, or is still :meth:`pending`.

message_filters drops a message in two ways, both visible in its per-topic queues
(dicts keyed by stamp): the oldest is evicted when a queue holds more than
``queue_size`` (``queue_overflow``), and a message whose stamp equals a queued one on the
same topic replaces it (``superseded``). What the synchronizer does not do, this wrapper
adds the way the builtin policies do it: a stamp more than ``time_jump_reset_ns`` behind
its camera's newest (a looping bag, a restarted clock) resets the pairing, and
:meth:`reset` empties the queues (camera lost).

``slop_ns`` and ``queue_size`` apply to the next message when changed. message_filters
has no age penalty and no inter-message lower bound: :data:`FIXED_SETTINGS` lists the
``sync.*`` settings this implementation cannot honour, and the node refuses to change
them at run time.
"""
from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from ivif_ros.core import sync

# sync.* settings message_filters has no equivalent for (the node refuses run-time changes).
FIXED_SETTINGS = {
    "age_penalty": "message_filters' Python ApproximateTimeSynchronizer has no age penalty",
    "min_period_s": "message_filters' Python ApproximateTimeSynchronizer has no inter-message lower bound",
}


class _Carrier:
    """What the synchronizer stores: a header to read the stamp from, and our queue entry."""

    __slots__ = ("header", "entry")

    def __init__(self, entry: sync.Entry):
        self.entry = entry
        self.header = Header(stamp=Time(sec=entry.stamp_ns // 1_000_000_000, nanosec=entry.stamp_ns % 1_000_000_000))


class MessageFiltersPairing:
    """``add`` / ``reset`` / ``pending`` like ``core.sync``'s policies, paired by message_filters."""

    def __init__(self, policy: str = "approximate", queue_size: int = 10, slop_ns: int = 20_000_000,
                 time_jump_reset_ns: int = 1_000_000_000, num_topics: int = 2):
        import message_filters

        if policy not in ("approximate", "exact"):
            raise ValueError(f"message_filters has no {policy!r} policy; use 'approximate' or 'exact'")
        self.policy = policy
        self.time_jump_reset_ns = int(time_jump_reset_ns)
        self._inputs = [message_filters.SimpleFilter() for _ in range(num_topics)]
        if policy == "exact":
            self._sync = message_filters.TimeSynchronizer(self._inputs, queue_size)
        else:
            self._sync = message_filters.ApproximateTimeSynchronizer(self._inputs, queue_size, slop_ns / 1e9)
        self._sync.registerCallback(self._on_set)
        self.slop_ns = int(slop_ns)
        self._emitted: list[tuple[sync.Entry, ...]] = []
        self._newest: list[int | None] = [None] * num_topics

    # Settings message_filters reads on every message; kept in step with ours.
    @property
    def queue_size(self) -> int:
        return self._sync.queue_size

    @queue_size.setter
    def queue_size(self, value: int) -> None:
        if value < 1:
            raise ValueError("queue_size must be at least 1")
        self._sync.queue_size = int(value)

    @property
    def slop_ns(self) -> int:
        return self._slop_ns

    @slop_ns.setter
    def slop_ns(self, value: int) -> None:
        from rclpy.duration import Duration

        self._slop_ns = int(value)
        if hasattr(self._sync, "slop"):
            self._sync.slop = Duration(nanoseconds=self._slop_ns)

    def _on_set(self, *carriers: _Carrier) -> None:
        self._emitted.append(tuple(c.entry for c in carriers))

    def add(self, topic: int, stamp_ns: int, item: Any) -> sync.SyncEvents:
        """Give one message to message_filters; return the pairs it emitted and what it dropped."""
        ev = sync.SyncEvents()
        entry = sync.Entry(topic, int(stamp_ns), item)
        newest = self._newest[topic]
        if newest is not None and 0 < self.time_jump_reset_ns < newest - entry.stamp_ns:
            self.reset(ev)
        self._newest[topic] = max(entry.stamp_ns, self._newest[topic] or entry.stamp_ns)
        queue = self._sync.queues[topic]
        replaced = queue.get(entry.stamp_ns)
        before = {id(c.entry): c.entry for q in self._sync.queues for c in q.values()}
        before[id(entry)] = entry
        self._inputs[topic].signalMessage(_Carrier(entry))
        emitted, self._emitted = self._emitted, []
        ev.matches.extend(emitted)
        kept = {id(c.entry) for q in self._sync.queues for c in q.values()}
        paired = {id(e) for match in emitted for e in match}
        for key, lost in before.items():
            if key in kept or key in paired:
                continue
            reason = sync.SUPERSEDED if replaced is not None and lost is replaced.entry else sync.QUEUE_OVERFLOW
            ev.drops.append(sync.Drop(lost, reason))
        return ev

    def reset(self, ev: sync.SyncEvents | None = None) -> sync.SyncEvents:
        """Drop everything queued (reason ``reset``) and forget the stamp history."""
        ev = ev if ev is not None else sync.SyncEvents()
        ev.drops.extend(sync.Drop(e, sync.RESET) for e in self.pending())
        with self._sync.lock:
            for q in self._sync.queues:
                q.clear()
        self._newest = [None] * len(self._newest)
        return ev

    def pending(self) -> list[sync.Entry]:
        """Messages message_filters still holds (oldest first per topic)."""
        return [q[stamp].entry for q in self._sync.queues for stamp in sorted(q)]


def pairing_from_config(cfg, num_topics: int = 2) -> MessageFiltersPairing:
    """The message_filters pairing of a ``SyncConfig`` (``sync.*``)."""
    return MessageFiltersPairing(cfg.policy, cfg.queue_size, int(round(cfg.slop_s * 1e9)),
                                 int(round(cfg.time_jump_reset_s * 1e9)), num_topics)
