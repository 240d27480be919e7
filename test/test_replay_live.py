"""``ivif replay --live``: the sample bag played at 30 Hz into the real node graph (``ivif launch``,
a separate process) over Fast DDS shared memory, recorded back, compared with offline replay."""
import numpy as np

from replay_support import FRAMES, check_accounting, make_config, make_sample

from ivif_ros.bag import image_msgs as im
from ivif_ros.replay.evaluate import OutputTopics, read_outputs
from ivif_ros.replay.run import ReplayOptions, run_replay


def test_live_replay_at_30hz_loses_no_pair_and_matches_offline(ros_env, tmp_path):
    bag = make_sample(tmp_path / "sample")
    config = make_config(tmp_path / "model")
    offline = run_replay(ReplayOptions(bag=bag, out=tmp_path / "offline", config=config, samples=0))
    live = run_replay(ReplayOptions(bag=bag, out=tmp_path / "live", config=config, live=True, rate=1.0, samples=1))

    c = live.summary["counts"]
    check_accounting(c)
    assert c["pairs"] == offline.summary["counts"]["pairs"] == FRAMES - 1
    assert c["fused"] == c["pairs"], f"live replay lost pairs: {c['pair_drops_by_reason']}"
    assert c["single_camera_frames"] == {}
    e2e = live.summary["latency_ms"]["end_to_end"]
    assert e2e["n"] == c["fused"] and 0 < e2e["p50"] <= e2e["max"]
    assert live.summary["mode"] == "live" and (tmp_path / "live" / "report.md").is_file()

    # Same frames, same pixels: the graph runs the pipeline offline replay runs.
    topics = OutputTopics()
    off = read_outputs(offline.output_bag, topics).by_stamp[topics.fused]
    on = read_outputs(live.output_bag, topics).by_stamp[topics.fused]
    assert set(on) == set(off)
    diffs = [np.abs(im.image_to_array(off[s]).astype(np.int16) - im.image_to_array(on[s])) for s in off]
    assert max(d.max() for d in diffs) <= 1
    assert np.mean([d.mean() for d in diffs]) <= 0.1
