"""ROS' own ``message_filters`` synchronizers behind the pairing interface of ``ivif_ros.core.sync``.

With ``sync.implementation: message_filters`` the partners are chosen by a real
``message_filters`` synchronizer, and every message is still accounted for as the builtin
policies do: each ends in an emitted pair, in a :class:`~ivif_ros.core.sync.Drop` with a
reason, or is still pending. message_filters itself counts nothing: a message it does not
pair stays in its queue until a newer one pushes it out, silently.

- ``approximate``: :class:`MessageFiltersApproximate` keeps the queues of the builtin
  ``approximate`` policy (:class:`~ivif_ros.core.sync.ImmediateApproximatePolicy`: order,
  time-jump, no-partner, superseded and overflow rules) and asks message_filters'
  ``ApproximateTimeSynchronizer``, loaded with exactly those queues, which set a new
  message completes. The two differ only where message_filters does: it accepts a spread
  strictly below the slop, the builtin policy one equal to it.
- ``exact``: :class:`MessageFiltersExact` feeds ``TimeSynchronizer`` and watches its
  per-camera queues (dicts keyed by stamp): a message that leaves them unpaired was evicted
  by a newer one (``queue_overflow``) or replaced by one with the same stamp (``superseded``).

``slop_ns``, ``queue_size`` and ``time_jump_reset_ns`` apply to the next message when
changed (``core.sync.apply_config``). message_filters has no age penalty and no
inter-message lower bound: :data:`FIXED_SETTINGS` names them, and the node refuses to
change them at run time rather than ignore them.
"""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from ivif_ros.core import sync

# sync.* settings that message_filters has no equivalent for (the node refuses run-time changes).
FIXED_SETTINGS = {
    "age_penalty": "message_filters' Python synchronizers have no age penalty",
    "min_period_s": "message_filters' Python synchronizers have no inter-message lower bound",
}
POLICIES = ("approximate", "exact")


class _Carrier:
    """What a synchronizer stores: a header for the stamp, and our queue entry."""

    __slots__ = ("header", "entry")

    def __init__(self, entry: sync.Entry):
        self.entry = entry
        self.header = Header(stamp=Time(sec=entry.stamp_ns // 1_000_000_000, nanosec=entry.stamp_ns % 1_000_000_000))


class _Synchronizer:
    """A message_filters synchronizer fed through plain filters; collects the sets it emits."""

    def __init__(self, make, num_topics: int):
        import message_filters

        self.inputs = [message_filters.SimpleFilter() for _ in range(num_topics)]
        self.filter = make(message_filters, self.inputs)
        self.filter.registerCallback(lambda *carriers: self.emitted.append(tuple(c.entry for c in carriers)))
        self.emitted: list[tuple[sync.Entry, ...]] = []

    def feed(self, entry: sync.Entry) -> list[tuple[sync.Entry, ...]]:
        self.inputs[entry.topic].signalMessage(_Carrier(entry))
        emitted, self.emitted = self.emitted, []
        return emitted

    def queued(self) -> list[sync.Entry]:
        return [q[stamp].entry for q in self.filter.queues for stamp in sorted(q)]


class MessageFiltersApproximate(sync.ImmediateApproximatePolicy):
    """The builtin ``approximate`` accounting; the partner chosen by ApproximateTimeSynchronizer."""

    def __init__(self, *args, **kwargs):  # ImmediateApproximatePolicy's arguments
        super().__init__(*args, **kwargs)
        self._mf = _Synchronizer(
            lambda mf, inputs: mf.ApproximateTimeSynchronizer(inputs, self.queue_size, self.slop_ns / 1e9),
            self.num_topics,
        )

    def _closest_set(self, entry: sync.Entry) -> tuple[sync.Entry, ...] | None:
        if not any(e is entry for e in self._queues[entry.topic]):
            return None  # already dropped as unpairable
        from rclpy.duration import Duration

        synchronizer = self.mf_synchronizer
        synchronizer.slop = Duration(nanoseconds=self.slop_ns)
        # Our queues bound the length (after pairing, like the builtin policy); message_filters
        # trims before it searches, so it gets room for the new message.
        synchronizer.queue_size = self.queue_size + 1
        with synchronizer.lock:
            for queue, ours in zip(synchronizer.queues, self._queues):
                queue.clear()
                queue.update((e.stamp_ns, _Carrier(e)) for e in ours if e is not entry)
        emitted = self._mf.feed(entry)
        return emitted[0] if emitted else None

    @property
    def mf_synchronizer(self):
        """The ``message_filters.ApproximateTimeSynchronizer`` that chooses the partners."""
        return self._mf.filter


class MessageFiltersExact:
    """``TimeSynchronizer`` with its queues watched, so that every message is accounted for."""

    def __init__(self, num_topics: int = 2, queue_size: int = 10, time_jump_reset_ns: int = 1_000_000_000):
        sync.check_sizes(num_topics, queue_size)
        self._mf = _Synchronizer(lambda mf, inputs: mf.TimeSynchronizer(inputs, queue_size), num_topics)
        self.time_jump_reset_ns = int(time_jump_reset_ns)
        self._newest: list[int | None] = [None] * num_topics

    @property
    def queue_size(self) -> int:
        return self._mf.filter.queue_size

    @queue_size.setter
    def queue_size(self, value: int) -> None:
        self._mf.filter.queue_size = int(value)  # message_filters reads it on every message

    def add(self, topic: int, stamp_ns: int, item: Any) -> sync.SyncEvents:
        ev = sync.SyncEvents()
        entry = sync.Entry(topic, int(stamp_ns), item)
        newest = self._newest[topic]
        if newest is not None and 0 < self.time_jump_reset_ns < newest - entry.stamp_ns:
            self.reset(ev)  # the clock jumped back (a looping bag): stale stamps would never pair
        self._newest[topic] = max(entry.stamp_ns, self._newest[topic] or entry.stamp_ns)
        replaced = self._mf.filter.queues[topic].get(entry.stamp_ns)
        before = self._mf.queued() + [entry]
        ev.matches.extend(self._mf.feed(entry))
        kept = {id(e) for e in self._mf.queued()} | {id(e) for match in ev.matches for e in match}
        for lost in before:
            if id(lost) not in kept:
                reason = sync.SUPERSEDED if replaced is not None and lost is replaced.entry else sync.QUEUE_OVERFLOW
                ev.drops.append(sync.Drop(lost, reason))
        return ev

    def reset(self, ev: sync.SyncEvents | None = None) -> sync.SyncEvents:
        """Drop everything queued (reason ``reset``) and forget the stamp history."""
        ev = ev if ev is not None else sync.SyncEvents()
        ev.drops.extend(sync.Drop(e, sync.RESET) for e in self.pending())
        with self._mf.filter.lock:
            for q in self._mf.filter.queues:
                q.clear()
        self._newest = [None] * len(self._newest)
        return ev

    def pending(self) -> list[sync.Entry]:
        """Messages message_filters still holds (oldest first per camera)."""
        return self._mf.queued()

    def flush(self) -> sync.SyncEvents:
        """The input has ended: an incomplete stamp can no longer complete; nothing to emit."""
        return sync.SyncEvents()


def pairing_from_config(cfg, num_topics: int = 2):
    """The message_filters pairing of a ``SyncConfig`` (``sync.*``)."""
    jump_ns = int(round(cfg.time_jump_reset_s * 1e9))
    if cfg.policy == "approximate":
        return MessageFiltersApproximate(num_topics, cfg.queue_size, int(round(cfg.slop_s * 1e9)), jump_ns)
    if cfg.policy == "exact":
        return MessageFiltersExact(num_topics, cfg.queue_size, jump_ns)
    raise ValueError(
        f"message_filters has no {cfg.policy!r} policy ({', '.join(POLICIES)}); use sync.implementation: builtin for it"
    )
