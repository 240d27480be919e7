"""The same bad bag gives the same verdict offline and live: a truncated image in the bag makes
both replays partial (exit 1), with the reason in summary.json. Live, the graph rejects it and
counts it on /diagnostics; offline, the pipeline refuses it."""

from __future__ import annotations

import json

from replay_support import make_config, make_sample

from ivif_ros.cli import main


def _cut_data(msg):
    msg.data = msg.data[: len(msg.data) // 2]


def truncate_one_image(src, dst, topic="/visible/image_raw", index=10, change=_cut_data):
    """Copy the bag with ``change`` applied to the ``index``-th image of ``topic`` (default: data cut in half)."""
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
                    change(msg)
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


def _huge_mono8(msg):
    """A consistent 8193x8192 mono8 frame: one row of pixels over the decode limit (67 MB of data)."""
    import numpy as np

    msg.height, msg.width, msg.step, msg.encoding = 8193, 8192, 8192, "mono8"
    msg.data = np.zeros(8193 * 8192, np.uint8)


def test_an_image_over_the_size_limit_is_a_counted_drop_not_an_allocation(tmp_path, capsys):
    sample = make_sample(tmp_path / "sample", frames=12)
    bag = truncate_one_image(sample, tmp_path / "big" / "bag", topic="/ir/image_raw", index=5, change=_huge_mono8)
    code = main(
        [
            "replay",
            str(bag),
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(make_config(tmp_path / "m")),
            "--samples",
            "0",
        ]
    )
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert code == 1 and summary["partial"], summary["errors"]
    assert any("8192x8193" in e and "at most 67108864 pixels" in e for e in summary["errors"]), summary["errors"]
    assert summary["counts"]["fused"] == summary["counts"]["pairs"] - 1


def test_a_message_over_max_message_mb_is_dropped_unread_with_its_reason(tmp_path, capsys):
    """The same 67 MB frame against a 16 MiB message limit: refused before it is decoded (no
    image-size error from the decoder), counted as a message drop, the rest fused."""
    sample = make_sample(tmp_path / "sample", frames=12)
    bag = truncate_one_image(sample, tmp_path / "big" / "bag", topic="/ir/image_raw", index=5, change=_huge_mono8)
    config = make_config(tmp_path / "m")
    argv = ["replay", str(bag), "--out", str(tmp_path / "out"), "--config", str(config), "--samples", "0"]
    code = main(argv + ["--max-message-mb", "16"])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    c = summary["counts"]
    assert code == 1 and summary["partial"]
    assert c["message_drops_by_reason"]["message_too_large"] == 1, c
    assert c["inputs_by_topic"]["/ir/image_raw"]["received"] == 12
    assert not any("8192x8193" in e for e in summary["errors"]), summary["errors"]  # never decoded
    assert any("/ir/image_raw: 1 message(s) larger than 16777216 bytes" in e for e in summary["errors"])
    assert c["inputs"] == c["paired_messages"] + c["dropped_messages"]
    assert c["fused"] == c["pairs"] >= 10


def test_a_rerun_into_the_same_out_never_shows_the_previous_summary(tmp_path, capsys):
    """Another run's summary.json/report.md are moved aside before anything else, so a run that
    fails (or is killed) early leaves no summary that describes another bag."""
    sample = make_sample(tmp_path / "sample", frames=6)
    config = make_config(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["replay", str(sample), "--out", str(out), "--config", str(config), "--samples", "0"]) == 0
    first = (out / "summary.json").read_text()
    empty = tmp_path / "empty_bag"
    truncate_one_image(sample, empty / "bag")  # then cut the storage to nothing readable
    next(p for p in (empty / "bag").iterdir() if p.suffix in (".mcap", ".db3")).write_bytes(b"")
    code = main(["replay", str(empty / "bag"), "--out", str(out), "--config", str(config)])
    capsys.readouterr()
    assert code == 2
    assert not (out / "summary.json").exists() and not (out / "report.md").exists()
    aside = [p for p in out.iterdir() if p.name.startswith("previous_run_")]
    assert len(aside) == 1 and (aside[0] / "summary.json").read_text() == first
    assert (aside[0] / "output_bag").is_dir()
