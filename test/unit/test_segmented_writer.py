"""The replay's output bag writer: a rosbag2 bag of finished files, readable at every moment."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ivif_ros.bag import image_msgs as im
from ivif_ros.bag.reader import BagReader
from ivif_ros.bag.segmented_writer import SegmentedBagWriter
from rosbags_interop import read_every_message


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_finished_file_is_readable_while_the_bag_is_written(storage, tmp_path):
    bag = tmp_path / "out"
    writer = SegmentedBagWriter(bag, storage=storage, segment_s=0.01)
    writer.open()
    assert read_every_message(bag, "kilted") == {}  # an empty bag from the start
    writer.add_topic("/img", im.IMAGE)
    for i in range(6):
        writer.write(
            "/img", 1_000_000_000 + i, im.make_image(writer.typestore, np.full((4, 4), i, np.uint8), "mono8", i, "f")
        )
        # each write after a pause longer than segment_s finishes the previous file first
        assert writer.finished_files == i
        # mid-run, rosbags reads exactly the finished files (the open one is outside the bag)
        assert read_every_message(bag, "kilted") == ({"/img": i} if i else {})
        time.sleep(0.02)
    writer.close()
    assert writer.finished_files == 6
    assert read_every_message(bag, "kilted") == {"/img": 6}
    with BagReader(bag) as reader:
        values = [int(m.msg.data[0]) for m in reader.messages(["/img"])]
    assert values == list(range(6)) and not reader.errors
    assert not [p for p in bag.iterdir() if p.is_dir()]
