"""Accounting, summary.json and report.md of a replay, from synthetic per-frame records
(no bag, no ROS: these are the pure bookkeeping parts)."""

import json

import numpy as np
import pytest

from ivif_ros.replay.accounting import UNPAIRED, AccountingError, MessageLedger
from ivif_ros.replay.summary import METRIC_NAMES, FrameRecord, build_summary, latency_stats, write_json
from ivif_ros.report.replay_report import SampleFrame, mask_overlay, write_frames_csv, write_report


def _ledger():
    led = MessageLedger()
    ir = [led.add_input("/ir", 100 * i, 100 * i) for i in range(4)]
    vis = [led.add_input("/vis", 100 * i + 3, 100 * i + 3) for i in range(3)]
    for a, b in zip(ir[:3], vis):
        led.pair(a, b, led.messages[b].stamp_ns)
    led.drop(ir[3], UNPAIRED)
    led.fused(0)
    led.fused(1)
    led.drop_pair(2, "no_output")
    return led


def test_ledger_counts_satisfy_both_invariants():
    c = _ledger().counts()
    assert c["inputs"] == 7 and c["pairs"] == 3 and c["fused"] == 2
    assert c["inputs"] == c["paired_messages"] + c["dropped_messages"]
    assert c["pairs"] == c["fused"] + c["dropped_pairs"]
    assert c["message_drops_by_reason"] == {UNPAIRED: 1}
    assert c["pair_drops_by_reason"] == {"no_output": 1}
    assert c["inputs_by_topic"]["/ir"] == dict(received=4, paired=3, fused=2, dropped=2)
    assert c["unaccounted_messages"] == 0 and c["unaccounted_pairs"] == 0


def test_ledger_refuses_a_second_fate():
    led = _ledger()
    with pytest.raises(AccountingError):
        led.drop(0, UNPAIRED)  # already paired
    with pytest.raises(AccountingError):
        led.fused(2)  # already dropped


def test_latency_stats_percentiles():
    s = latency_stats(list(range(1, 101)))
    assert s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.01) and s["max"] == 100 and s["n"] == 100
    assert latency_stats([])["p50"] is None


def _frames(n=20, live=True):
    rng = np.random.default_rng(0)
    return [
        FrameRecord(
            i,
            10**9 + i * 33_333_333,
            metrics={k: float(rng.uniform(0, 1)) for k in METRIC_NAMES} if i % 2 == 0 else {},
            stage_ms={"infer": float(rng.uniform(5, 9)), "total": float(rng.uniform(10, 20))},
            end_to_end_ms=float(rng.uniform(15, 40)) if live else None,
            detections=2,
            ground_truth=3,
        )
        for i in range(n)
    ]


def test_summary_and_report_written(tmp_path):
    frames = _frames()
    led = _ledger()
    summary = build_summary(
        bag="x.mcap",
        mode="live",
        rate=1.0,
        graph_input_qos="reliable, depth 10",
        topics={"ir": "/ir", "vis": "/vis"},
        counts=led.counts(),
        frames=frames,
        metrics_every=2,
        detection={
            "mAP50": 0.5,
            "mAP50_95": 0.3,
            "frames": 20,
            "ground_truth_boxes": 60,
            "detections": 40,
            "per_class": {},
        },
        wall_time_s=2.0,
        errors=[],
    )
    write_json(tmp_path / "summary.json", summary)
    back = json.loads((tmp_path / "summary.json").read_text())
    assert back["metrics"]["frames_scored"] == 10
    expected_en = np.mean([f.metrics["EN"] for f in frames if f.metrics])
    assert back["metrics"]["mean"]["EN"] == pytest.approx(expected_en)
    assert set(back["metrics"]["mean"]) == set(METRIC_NAMES) and "contrast" in METRIC_NAMES
    assert set(back["latency_ms"]) == {"infer", "total", "end_to_end"}
    assert back["throughput_fps"] == pytest.approx(1.0)  # 2 fused / 2 s

    rgb = np.full((24, 32, 3), 100, np.uint8)
    mask = np.zeros((24, 32), np.int64)
    mask[5:10, 5:10] = 1
    sample = SampleFrame(
        frames[0].stamp_ns,
        rgb[..., 0],
        rgb,
        rgb,
        mask,
        np.array([[4, 4, 12, 12]], np.float32),
        ["person 0.90"],
        np.array([[5, 5, 11, 11.0]]),
    )
    report = write_report(tmp_path, summary, frames, [sample])
    text = report.read_text()
    for png in ("metric_trends.png", "latency.png", f"samples/frame_{sample.stamp_ns}.png"):
        assert (tmp_path / png).stat().st_size > 1000
        assert f"]({png})" in text
    assert "| /ir | 4 | 3 | 2 | 2 |" in text
    assert "mAP@0.5" in text and "end_to_end" in text
    assert "| contrast |" in text and "below 1 is haze" in text
    write_frames_csv(tmp_path / "frames.csv", frames)
    rows = (tmp_path / "frames.csv").read_text().splitlines()
    assert len(rows) == 21 and rows[0].startswith("index,stamp_ns,name,EN")


def test_mask_overlay_leaves_background_untouched():
    rgb = np.full((4, 4, 3), 50, np.uint8)
    mask = np.zeros((4, 4), np.int64)
    mask[0, 0] = 1
    out = mask_overlay(rgb, mask)
    assert (out[1:, :] == 50).all() and not (out[0, 0] == 50).all()
