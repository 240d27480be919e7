"""The same bad bag gives the same verdict offline and live: a truncated image in the bag makes
both replays partial (exit 1), with the reason in summary.json. Live, the graph rejects it and
counts it on /diagnostics; offline, the pipeline refuses it."""
from __future__ import annotations

import json

from replay_support import make_config, make_sample

from ivif_ros.cli import main


def truncate_one_image(src, dst, topic="/visible/image_raw", index=10):
    """Copy the bag with the ``index``-th image of ``topic`` cut to half its data."""
    from rosbags.rosbag2 import Reader, Writer

    from ivif_ros.bag.typestore import make_typestore

    store = make_typestore()
    with Reader(src) as reader, Writer(dst, version=8) as writer:
        conns = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        seen = 0
        for conn, t_ns, raw in reader.messages():
            if conn.topic == topic:
                seen += 1
                if seen == index:
                    msg = store.deserialize_cdr(raw, conn.msgtype)
                    msg.data = msg.data[: len(msg.data) // 2]
                    raw = store.serialize_cdr(msg, conn.msgtype)
            writer.write(conns[conn.id], t_ns, raw)
    return dst


def test_a_truncated_image_is_partial_offline_and_live(ros_env, tmp_path, capsys):
    sample = make_sample(tmp_path / "sample", frames=20)
    bag = truncate_one_image(sample, tmp_path / "bad" / "bag")
    config = make_config(tmp_path / "model")
    verdicts = {}
    for mode in ("offline", "live"):
        argv = ["replay", str(bag), "--out", str(tmp_path / mode), "--config", str(config), "--samples", "0"]
        code = main(argv + (["--live"] if mode == "live" else []))
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err
        summary = json.loads((tmp_path / mode / "summary.json").read_text())
        verdicts[mode] = (code, summary["partial"])
        assert summary["errors"] and any("visible" in e for e in summary["errors"]), summary["errors"]
    assert verdicts == {"offline": (1, True), "live": (1, True)}, verdicts
