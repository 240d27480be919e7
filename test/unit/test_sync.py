"""The pairing policies (ivif_ros.core.sync): correctness, optimality, latency and full accounting."""

from __future__ import annotations

import numpy as np
import pytest

from ivif_ros.core import sync
from ivif_ros.core.sync import (
    IR,
    VISIBLE,
    ApproximateTimePolicy,
    CameraWatchdog,
    ExactTimePolicy,
    ImmediateApproximatePolicy,
    make_policy,
)

MS = 1_000_000


def feed(policy, events):
    """Feed ``(topic, stamp_ns)`` in order; return (matches as stamp tuples, drops as (topic, stamp, reason))."""
    matches, drops = [], []
    for topic, stamp in events:
        ev = policy.add(topic, stamp, (topic, stamp))
        matches += [tuple(e.stamp_ns for e in m) for m in ev.matches]
        drops += [(d.entry.topic, d.entry.stamp_ns, d.reason) for d in ev.drops]
    return matches, drops


def jittered_streams(rng, n, period_ms, jitter_ms, offset_ms=0.0, arrival_jitter_ms=5.0):
    """Two camera streams; returns events in arrival order (arrival = stamp + random transport delay)."""
    events = []
    for topic, off in ((IR, 0.0), (VISIBLE, offset_ms)):
        stamps = (np.arange(n) * period_ms + off + rng.uniform(-jitter_ms, jitter_ms, n)) * MS
        stamps = np.maximum.accumulate(stamps.astype(np.int64))  # a driver's stamps never go back
        arrivals = stamps + rng.uniform(0, arrival_jitter_ms * MS, n)
        events += [(arr, topic, int(s)) for arr, s in zip(arrivals, stamps)]
    events.sort()
    return [(t, s) for _, t, s in events]


def assert_accounted(policy, events, matches, drops):
    """Every message is in exactly one match, one drop, or still pending."""
    fed = sorted(events)
    out = sorted(
        [(t, s) for m in matches for t, s in enumerate(m)]
        + [(t, s) for t, s, _ in drops]
        + [(e.topic, e.stamp_ns) for e in policy.pending()]
    )
    assert out == fed


def test_aligned_jittered_30hz_streams_pair_one_to_one():
    rng = np.random.default_rng(0)
    events = jittered_streams(rng, 300, 33.3, jitter_ms=3.0)
    policy = ApproximateTimePolicy(queue_size=5, slop_ns=10 * MS)
    matches, drops = feed(policy, events)
    assert len(matches) >= 299  # the last pair may still wait for proof of optimality
    assert drops == []
    assert all(abs(a - b) <= 10 * MS for a, b in matches)
    assert_accounted(policy, events, matches, drops)


@pytest.mark.parametrize("seed", range(5))
def test_random_streams_every_message_accounted_and_matches_within_slop(seed):
    rng = np.random.default_rng(seed)
    events = jittered_streams(rng, 200, 33.3, jitter_ms=15.0, offset_ms=rng.uniform(-20, 20), arrival_jitter_ms=60)
    # drop a random 20 % of each stream (lossy transport) so partners go missing
    events = [e for e in events if rng.uniform() > 0.2]
    policy = ApproximateTimePolicy(queue_size=4, slop_ns=12 * MS)
    matches, drops = feed(policy, events)
    assert matches, "jittered 30 Hz streams must produce pairs"
    assert all(abs(a - b) <= 12 * MS for a, b in matches)
    reasons = {r for *_, r in drops}
    assert reasons <= set(sync.DROP_REASONS)
    assert_accounted(policy, events, matches, drops)
    # pairs come out in time order and never reuse a message
    assert [m[IR] for m in matches] == sorted(m[IR] for m in matches)


def test_faster_visible_stream_pairs_each_ir_with_its_nearest_visible():
    # IR 30 Hz, visible 60 Hz offset by 4 ms: the nearest visible is always 4 ms away,
    # the runner-up 12.7 ms away; ApproximateTime must choose the nearest.
    ir = [(IR, int(k * 33.4 * MS)) for k in range(60)]
    vis = [(VISIBLE, int((k * 16.7 + 4) * MS)) for k in range(120)]
    events = sorted(ir + vis, key=lambda e: (e[1], e[0]))
    policy = ApproximateTimePolicy(queue_size=10, slop_ns=20 * MS)
    matches, drops = feed(policy, events)
    assert len(matches) >= 59
    assert all(v - i == 4 * MS for i, v in matches)
    # the visible frames between IR frames lose: superseded or without a partner, never silently gone
    assert {r for *_, r in drops} <= {sync.SUPERSEDED, sync.NO_PARTNER}
    assert_accounted(policy, events, matches, drops)


def test_offset_beyond_slop_never_pairs_and_says_why():
    events = sorted(
        [(IR, k * 33 * MS) for k in range(20)] + [(VISIBLE, (k * 33 + 15) * MS) for k in range(20)], key=lambda e: e[1]
    )
    policy = ApproximateTimePolicy(queue_size=5, slop_ns=5 * MS)
    matches, drops = feed(policy, events)
    assert matches == []
    assert {r for *_, r in drops} == {sync.NO_PARTNER}
    assert_accounted(policy, events, matches, drops)


def test_silent_camera_overflows_queue_oldest_first():
    policy = ApproximateTimePolicy(queue_size=3, slop_ns=10 * MS)
    matches, drops = feed(policy, [(IR, k * 33 * MS) for k in range(8)])
    assert matches == []
    assert drops == [(IR, k * 33 * MS, sync.QUEUE_OVERFLOW) for k in range(5)]
    assert [e.stamp_ns for e in policy.pending()] == [k * 33 * MS for k in range(5, 8)]


def test_out_of_order_stamp_dropped_but_time_jump_resets():
    policy = ApproximateTimePolicy(queue_size=5, slop_ns=10 * MS, time_jump_reset_ns=1000 * MS)
    matches, drops = feed(policy, [(IR, 100 * MS), (IR, 50 * MS), (IR, 100 * MS)])
    assert drops == [(IR, 50 * MS, sync.OUT_OF_ORDER), (IR, 100 * MS, sync.OUT_OF_ORDER)]
    # a bag that loops: stamps jump back 10 s; the pending message is reset and pairing restarts
    matches, drops = feed(policy, [(IR, 10_100 * MS), (IR, 100 * MS), (VISIBLE, 101 * MS), (IR, 133 * MS)])
    assert drops == [(IR, 100 * MS, sync.RESET), (IR, 10_100 * MS, sync.RESET)]  # both were pending
    assert matches == [(100 * MS, 101 * MS)]  # proven optimal once IR@133 arrived


def test_exact_policy_pairs_identical_stamps_only():
    events = [(IR, 1), (VISIBLE, 2), (VISIBLE, 1), (IR, 3), (VISIBLE, 3), (IR, 2)]
    policy = ExactTimePolicy(queue_size=5)
    matches, drops = feed(policy, events)
    assert matches == [(1, 1), (3, 3)]
    # visible@2 could never pair once 3 completed; IR@2 arrived after 3 was emitted
    assert sorted(drops) == [(IR, 2, sync.OUT_OF_ORDER), (VISIBLE, 2, sync.NO_PARTNER)]
    assert_accounted(policy, events, matches, drops)


def test_exact_policy_queue_bound():
    policy = ExactTimePolicy(queue_size=2)
    matches, drops = feed(policy, [(IR, 1), (IR, 2), (IR, 3)])
    assert drops == [(IR, 1, sync.QUEUE_OVERFLOW)]


def test_make_policy_by_name():
    from ivif_ros.core.config import SyncConfig

    policy = sync.policy_from_config(SyncConfig(policy="optimal", slop_s=0.03, queue_size=7, min_period_s=0.02))
    assert (policy.slop_ns, policy.queue_size, policy.inter_message_lower_bound_ns) == (30 * MS, 7, 20 * MS)
    default = sync.policy_from_config(SyncConfig())
    assert isinstance(default, ImmediateApproximatePolicy) and default.slop_ns == 20 * MS
    sync.apply_config(default, SyncConfig(slop_s=0.045, queue_size=3))
    assert (default.slop_ns, default.queue_size) == (45 * MS, 3)
    assert isinstance(make_policy("optimal", 5, 0.01), ApproximateTimePolicy)
    assert isinstance(make_policy("exact", 5, 0.01), ExactTimePolicy)
    with pytest.raises(ValueError, match="approximate"):
        make_policy("nearest", 5, 0.01)


def test_watchdog_falls_back_and_recovers():
    dog = CameraWatchdog(timeout_ns=500 * MS, start_ns=0)
    dog.seen(IR, 10 * MS)
    assert dog.mode(100 * MS) == sync.FUSED  # still within the start-up grace period for visible
    dog.seen(IR, 300 * MS)
    dog.seen(IR, 600 * MS)
    assert dog.mode(600 * MS) == sync.IR_ONLY  # visible never came
    dog.seen(VISIBLE, 700 * MS)
    assert dog.mode(700 * MS) == sync.FUSED
    dog.seen(VISIBLE, 1000 * MS)
    dog.seen(VISIBLE, 1300 * MS)
    assert dog.mode(1300 * MS) == sync.VISIBLE_ONLY  # IR silent since 600 ms
    assert dog.mode(3000 * MS) == sync.WAITING


def test_handover_of_depth_one_keeps_the_newest_and_returns_the_displaced():
    import threading

    slot = sync.BoundedHandover(1)
    assert slot.put("a") is None
    assert slot.put("b") == "a"  # the caller counts "a" as pipeline_busy
    assert slot.take(0.1) == "b"
    assert slot.take(0.01) is None
    got = []
    consumer = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    consumer.start()
    slot.put("c")
    consumer.join(5.0)
    assert got == ["c"]
    assert slot.put("d") is None and slot.close() == ["d"] and slot.take() is None


def test_handover_of_depth_two_rides_out_one_slow_frame_in_order():
    queue = sync.BoundedHandover(2)
    assert queue.put("a") is None and queue.put("b") is None  # the worker is busy with a slow frame
    assert queue.put("c") == "a"  # a second slow frame: the oldest waiting pair goes
    assert len(queue) == 2 and queue.take(0.1) == "b" and queue.take(0.1) == "c"
    with pytest.raises(ValueError):
        sync.BoundedHandover(0)


def test_watchdog_gives_the_other_camera_a_grace_period_after_total_silence():
    dog = CameraWatchdog(timeout_ns=500 * MS, start_ns=0)
    dog.seen(IR, 2000 * MS)  # first message long after start: visible may just be slower to start
    assert dog.mode(2100 * MS) == sync.FUSED
    dog.seen(IR, 2400 * MS)
    assert dog.mode(2600 * MS) == sync.IR_ONLY


def test_inter_message_lower_bound_emits_a_tight_pair_without_waiting_for_the_next_frame():
    events = [(IR, 0), (VISIBLE, 2 * MS)]
    waiting = ApproximateTimePolicy(slop_ns=20 * MS)
    assert feed(waiting, events)[0] == []  # a closer visible frame could still come
    assert feed(waiting, [(IR, 33 * MS)])[0] == [(0, 2 * MS)]  # ... until the next IR frame proves it
    eager = ApproximateTimePolicy(slop_ns=20 * MS, inter_message_lower_bound_ns=20 * MS)
    assert feed(eager, events)[0] == [(0, 2 * MS)]


@pytest.mark.parametrize("seed", range(3))
def test_lower_bound_keeps_pairs_and_accounting_for_streams_that_respect_it(seed):
    rng = np.random.default_rng(seed)
    events = jittered_streams(rng, 150, 33.3, jitter_ms=3.0, offset_ms=rng.uniform(-8, 8))
    reference, eager = (
        ApproximateTimePolicy(slop_ns=15 * MS),
        ApproximateTimePolicy(slop_ns=15 * MS, inter_message_lower_bound_ns=20 * MS),
    )
    ref_matches, _ = feed(reference, events)
    matches, drops = feed(eager, events)
    assert matches[: len(ref_matches)] == ref_matches  # same pairs, only sooner
    assert_accounted(eager, events, matches, drops)


# -- the default policy: pair as soon as the partner is there ----------------------------------


def test_immediate_policy_pairs_on_the_second_message_of_a_pair():
    policy = ImmediateApproximatePolicy(slop_ns=20 * MS)
    assert feed(policy, [(IR, 0)]) == ([], [])
    assert feed(policy, [(VISIBLE, 2 * MS)]) == ([(0, 2 * MS)], [])  # no wait for the next frame
    assert policy.pending() == []


def test_immediate_policy_takes_the_closest_partner_queued():
    policy = ImmediateApproximatePolicy(slop_ns=20 * MS)
    matches, drops = feed(policy, [(VISIBLE, 0), (VISIBLE, 12 * MS), (IR, 10 * MS)])
    assert matches == [(10 * MS, 12 * MS)]
    # visible@0 was within slop of the IR frame that went with its newer neighbour
    assert drops == [(VISIBLE, 0, sync.SUPERSEDED)]


@pytest.mark.parametrize("seed", range(5))
def test_immediate_policy_pairs_aligned_streams_one_to_one_and_at_once(seed):
    rng = np.random.default_rng(seed)
    events = jittered_streams(rng, 300, 33.3, jitter_ms=3.0, offset_ms=rng.uniform(-5, 5))
    policy = ImmediateApproximatePolicy(queue_size=5, slop_ns=15 * MS)
    emitted_at = []  # index of the event that completed each pair
    matches, drops = [], []
    for i, (topic, stamp) in enumerate(events):
        ev = policy.add(topic, stamp, None)
        matches += [tuple(e.stamp_ns for e in m) for m in ev.matches]
        emitted_at += [i] * len(ev.matches)
        drops += [(d.entry.topic, d.entry.stamp_ns, d.reason) for d in ev.drops]
    assert len(matches) == 300 and drops == [] and policy.pending() == []  # the last pair too
    # each pair leaves on the arrival of its second message, not later
    second = {}
    for i, (topic, stamp) in enumerate(events):
        second[(topic, stamp)] = i
    assert all(at == max(second[(IR, a)], second[(VISIBLE, b)]) for at, (a, b) in zip(emitted_at, matches))
    # the same pairs as the optimal policy finds
    reference, _ = feed(ApproximateTimePolicy(queue_size=5, slop_ns=15 * MS), events)
    assert matches[: len(reference)] == reference


@pytest.mark.parametrize("seed", range(5))
def test_immediate_policy_accounts_for_every_message_of_lossy_jittered_streams(seed):
    rng = np.random.default_rng(seed)
    events = jittered_streams(rng, 200, 33.3, jitter_ms=15.0, offset_ms=rng.uniform(-20, 20), arrival_jitter_ms=60)
    events = [e for e in events if rng.uniform() > 0.2]
    policy = ImmediateApproximatePolicy(queue_size=4, slop_ns=12 * MS)
    matches, drops = feed(policy, events)
    assert matches
    assert all(abs(a - b) <= 12 * MS for a, b in matches)
    assert {r for *_, r in drops} <= set(sync.DROP_REASONS)
    assert_accounted(policy, events, matches, drops)
    for k in (IR, VISIBLE):  # pairs leave in stamp order on both cameras
        assert [m[k] for m in matches] == sorted(m[k] for m in matches)
    assert len(policy.pending()) <= 2 * 4


def test_immediate_policy_drops_a_message_once_the_other_camera_has_passed_it():
    policy = ImmediateApproximatePolicy(slop_ns=5 * MS)
    events = sorted(
        [(IR, k * 33 * MS) for k in range(10)] + [(VISIBLE, (k * 33 + 15) * MS) for k in range(10)], key=lambda e: e[1]
    )
    matches, drops = feed(policy, events)
    assert matches == [] and {r for *_, r in drops} == {sync.NO_PARTNER}
    assert len(policy.pending()) == 1  # only the newest can still find a partner
    assert_accounted(policy, events, matches, drops)


def test_immediate_policy_queue_bound_and_time_jump():
    policy = ImmediateApproximatePolicy(queue_size=3, slop_ns=10 * MS, time_jump_reset_ns=1000 * MS)
    matches, drops = feed(policy, [(IR, k * 33 * MS) for k in range(5)])
    assert drops == [(IR, 0, sync.QUEUE_OVERFLOW), (IR, 33 * MS, sync.QUEUE_OVERFLOW)]
    matches, drops = feed(policy, [(IR, 100 * MS), (IR, 10 * MS)])
    assert drops == [(IR, 100 * MS, sync.OUT_OF_ORDER), (IR, 10 * MS, sync.OUT_OF_ORDER)]
    matches, drops = feed(policy, [(IR, 5_000 * MS), (IR, 1 * MS), (VISIBLE, 2 * MS)])
    # a bag that loops: the stamp 5 s back resets the pending messages, and pairing restarts
    assert drops == [
        (IR, 66 * MS, sync.QUEUE_OVERFLOW),
        (IR, 99 * MS, sync.RESET),
        (IR, 132 * MS, sync.RESET),
        (IR, 5_000 * MS, sync.RESET),
    ]
    assert matches == [(1 * MS, 2 * MS)]


@pytest.mark.parametrize("policy_name", ["approximate", "optimal", "exact"])
def test_flush_at_the_end_of_the_input_leaves_no_aligned_pair_behind(policy_name):
    events = [
        (t, k * 33 * MS + (0 if t == IR else (0 if policy_name == "exact" else 2 * MS)))
        for k in range(10)
        for t in (IR, VISIBLE)
    ]
    policy = make_policy(policy_name, 10, 0.02)
    matches, drops = feed(policy, events)
    flushed = policy.flush()
    matches += [tuple(e.stamp_ns for e in m) for m in flushed.matches]
    assert len(matches) == 10 and drops == [] and flushed.drops == [] and policy.pending() == []


def test_optimal_flush_emits_the_waiting_candidate_and_keeps_the_rest_pending():
    policy = ApproximateTimePolicy(slop_ns=20 * MS)
    matches, _ = feed(policy, [(IR, 0), (VISIBLE, 5 * MS), (IR, 100 * MS)])
    assert matches == [(0, 5 * MS)]  # proven by IR@100
    feed(policy, [(VISIBLE, 101 * MS)])
    flushed = policy.flush()
    assert [tuple(e.stamp_ns for e in m) for m in flushed.matches] == [(100 * MS, 101 * MS)]
    assert policy.pending() == [] and policy.inter_message_lower_bound_ns == 0
