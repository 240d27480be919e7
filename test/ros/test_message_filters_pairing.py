"""ROS' message_filters synchronizers behind the node's pairing interface, with full accounting.

Needs the message_filters package (not on PyPI; CI installs it from ../shared/ros-extras in
its second pass). The streams are fed straight into the policies (no DDS): what is checked
is that every message message_filters was given ends paired, dropped with a reason, or
pending, and that message_filters and the builtin policy account for the same jittered
streams identically.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ivif_ros.core import sync
from ivif_ros.core.config import SyncConfig

pytestmark = pytest.mark.ros_extras
message_filters = pytest.importorskip(
    "message_filters",
    reason="message_filters is not installed (not on PyPI; a ROS 2 install has it, "
    "CI's second pass installs it from ../shared/ros-extras)",
)

from ivif_ros.nodes.message_filters_pairing import MessageFiltersExact, pairing_from_config  # noqa: E402

PERIOD_NS = 33_333_333


def jittered_streams(
    seed: int, frames: int = 400, jitter_ns: int = 4_000_000, loss: float = 0.05, offset_ns: int = 0
) -> list[tuple[int, int]]:
    """(camera, stamp) in arrival order: two free-running 30 Hz cameras with stamp jitter, lost
    frames, and transport delays that let either camera arrive first (stamps stay increasing per camera)."""
    rng = np.random.default_rng(seed)
    events = []
    for cam, phase in ((sync.IR, offset_ns), (sync.VISIBLE, 0)):
        stamps = (
            1_000_000_000 + np.arange(frames) * PERIOD_NS + phase + rng.integers(-jitter_ns, jitter_ns, frames)
        ).tolist()
        arrival = 0
        for k, stamp in enumerate(stamps):
            if rng.random() < loss:
                continue
            arrival = max(arrival, stamp + int(rng.integers(1_000_000, 25_000_000)))  # FIFO per camera
            events.append((arrival, cam, stamp, k))
    events.sort()
    return [(cam, stamp) for _, cam, stamp, _ in events]


def run(policy, events) -> dict:
    """Feed ``events``; return the pairs, the drops by (camera, reason) and what is pending."""
    pairs, drops = [], Counter()
    for i, (cam, stamp) in enumerate(events):
        ev = policy.add(cam, stamp, i)
        pairs += [tuple(e.stamp_ns for e in match) for match in ev.matches]
        drops.update((d.entry.topic, d.reason) for d in ev.drops)
    return {"pairs": pairs, "drops": drops, "pending": Counter(e.topic for e in policy.pending())}


def assert_accounted(result: dict, events) -> None:
    for cam in (sync.IR, sync.VISIBLE):
        sent = sum(1 for c, _ in events if c == cam)
        dropped = sum(n for (c, _), n in result["drops"].items() if c == cam)
        assert len(result["pairs"]) + dropped + result["pending"][cam] == sent, (cam, sent, result)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("queue_size, offset_ns", [(10, 0), (3, 12_000_000)])
def test_every_message_is_paired_dropped_with_a_reason_or_pending(seed, queue_size, offset_ns):
    events = jittered_streams(seed, offset_ns=offset_ns)
    result = run(pairing_from_config(SyncConfig(queue_size=queue_size)), events)
    assert len(result["pairs"]) > 200
    assert all(abs(ir - vis) < 20_000_000 for ir, vis in result["pairs"])
    assert_accounted(result, events)
    assert set(reason for _, reason in result["drops"]) <= set(sync.DROP_REASONS)


def test_exact_policy_accounts_like_the_approximate_one():
    rng = np.random.default_rng(3)
    events = [(cam, k * PERIOD_NS) for k in range(300) for cam in (sync.IR, sync.VISIBLE) if rng.random() > 0.1]
    result = run(MessageFiltersExact(queue_size=5), events)
    assert result["pairs"] and all(ir == vis for ir, vis in result["pairs"])
    assert_accounted(result, events)
    assert result["drops"], "unpaired stamps must leave message_filters' queues as counted drops"


def test_exact_same_stamp_twice_supersedes_the_first():
    pairing = MessageFiltersExact()
    first = pairing.add(sync.IR, 1_000, "a")
    second = pairing.add(sync.IR, 1_000, "b")
    assert not first.drops and [(d.entry.item, d.reason) for d in second.drops] == [("a", sync.SUPERSEDED)]
    assert [e.item for e in pairing.pending()] == ["b"]


@pytest.mark.parametrize("policy", ["approximate", "exact"])
def test_time_jump_back_resets_and_reset_empties_the_queues(policy):
    pairing = pairing_from_config(SyncConfig(policy=policy, time_jump_reset_s=1.0))
    for k in range(3):
        pairing.add(sync.IR, 5_000_000_000 + k * PERIOD_NS, k)
    jumped = pairing.add(sync.IR, 1_000_000, "looped")
    assert [d.reason for d in jumped.drops] == [sync.RESET] * 3
    assert [e.item for e in pairing.pending()] == ["looped"]
    assert [d.entry.item for d in pairing.reset().drops] == ["looped"] and pairing.pending() == []


def test_run_time_slop_and_queue_size_reach_message_filters():
    pairing = pairing_from_config(SyncConfig(slop_s=0.005))
    assert not pairing.add(sync.IR, 0, "ir").matches
    missed = pairing.add(sync.VISIBLE, 10_000_000, "vis")  # 10 ms apart, slop 5 ms
    assert not missed.matches and [d.reason for d in missed.drops] == [sync.NO_PARTNER]
    sync.apply_config(pairing, SyncConfig(slop_s=0.03, queue_size=2))
    assert [tuple(e.item for e in m) for m in pairing.add(sync.IR, 30_000_000, "ir2").matches] == [("ir2", "vis")]
    assert pairing.mf_synchronizer.slop.nanoseconds == 30_000_000
    drops = [pairing.add(sync.VISIBLE, 10**9 + k * PERIOD_NS, k).drops for k in range(4)]
    assert [d.reason for ds in drops for d in ds] == [sync.QUEUE_OVERFLOW] * 2  # queue_size 2 now


def test_message_filters_chooses_the_partner():
    """Where the two rules differ (a spread of exactly the slop), message_filters' rule decides."""
    cfg = SyncConfig(slop_s=0.01)
    events = [(sync.IR, 10**9), (sync.VISIBLE, 10**9 + 10_000_000)]
    assert run(sync.policy_from_config(cfg), events)["pairs"] == [(10**9, 10**9 + 10_000_000)]
    assert run(pairing_from_config(cfg), events)["pairs"] == []  # message_filters: spread < slop


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_message_filters_and_builtin_pairing_account_identically(seed):
    """The default builtin policy and message_filters, same jittered streams: same counts."""
    cfg = SyncConfig()
    events = jittered_streams(seed)
    ours = run(sync.policy_from_config(cfg), events)
    theirs = run(pairing_from_config(cfg), events)
    assert_accounted(ours, events)
    assert_accounted(theirs, events)
    summary = lambda r: (len(r["pairs"]), dict(r["drops"]), dict(r["pending"]))  # noqa: E731
    assert summary(ours) == summary(theirs)
    assert ours["pairs"] == theirs["pairs"]
