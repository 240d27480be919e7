"""A rosbag2 bag written as a series of finished files, so a crash costs only the last seconds.

rosbags (and rosbag2) open only finished storage files: an MCAP needs its footer, a sqlite3
bag its committed transaction, and the folder its ``metadata.yaml``, all written when the
writer closes. A long recording killed with SIGKILL would leave nothing readable. Here the
bag is split as ``ros2 bag record --max-bag-duration`` splits it:

* ``metadata.yaml`` exists from the start (an empty bag), and is replaced atomically each
  time a file is finished, listing only finished files;
* ``<name>_<k>.mcap`` (or ``.db3``) are the finished files;
* ``<name>_<k>/`` holds the file being written; after a crash it stays there, outside the
  bag, and :class:`ivif_ros.bag.reader.BagReader` can salvage its complete messages.

A file is finished when it has been open ``segment_s`` seconds (wall time) at the next write.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from ivif_ros.bag.opened import OpenedInWith
from ivif_ros.bag.typestore import DEFAULT_DISTRO, make_typestore, require_type
from ivif_ros.bag.writer import STORAGES, BagWriter, clear_output_bag
from ivif_ros.errors import ConfigError, InputError

DEFAULT_SEGMENT_S = 5.0
SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3"}
METADATA_VERSION = 9  # rosbag2 metadata format that rosbags writes (Writer.VERSION_LATEST)


class SegmentedBagWriter(OpenedInWith):
    """Same use as :class:`BagWriter` (``add_topic``, ``write``, context manager)."""

    def __init__(
        self,
        path: str | Path,
        *,
        storage: str = "mcap",
        segment_s: float = DEFAULT_SEGMENT_S,
        distro: str = DEFAULT_DISTRO,
        overwrite: bool = False,
    ):
        if storage not in STORAGES:
            raise ConfigError(f"bag storage {storage!r} is not supported; use one of {', '.join(STORAGES)}")
        if not segment_s > 0:
            raise ConfigError(f"bag segment length must be positive, got {segment_s} s")
        self.path = Path(path)
        clear_output_bag(self.path, overwrite)
        self.storage, self.segment_s = storage, float(segment_s)
        self.typestore = make_typestore(distro)
        self._msgtypes: dict[str, str] = {}
        self._segment: BagWriter | None = None
        self._segment_started = 0.0
        self._files: list[dict] = []  # metadata.yaml "files" entries of finished segments
        self._topics: dict[str, dict] = {}  # topic -> topics_with_message_count entry, summed
        self._is_open = False

    def open(self) -> None:
        try:
            self.path.mkdir(parents=True)
        except OSError as exc:
            raise InputError(f"cannot create bag {self.path}: {exc}") from None
        self._is_open = True
        self._write_metadata()

    @property
    def finished_files(self) -> int:
        return len(self._files)

    def add_topic(self, topic: str, msgtype: str) -> None:
        if self._msgtypes.get(topic, msgtype) != msgtype:
            raise ConfigError(f"topic {topic} is already in {self.path} as {self._msgtypes[topic]}, not {msgtype}")
        require_type(self.typestore, msgtype)
        self._msgtypes[topic] = msgtype
        if self._segment is not None:
            self._segment.add_topic(topic, msgtype)

    def write(self, topic: str, t_ns: int, msg) -> None:
        if topic not in self._msgtypes:
            raise ConfigError(f"topic {topic} was not added to {self.path}; call add_topic first")
        if self._segment is not None and time.monotonic() - self._segment_started >= self.segment_s:
            self._finish_segment()
        if self._segment is None:
            self._start_segment()
        self._segment.write(topic, t_ns, msg)

    def close(self) -> None:
        """Finish the file being written and list it in metadata.yaml."""
        if self._is_open:
            self._is_open = False
            self._finish_segment()

    # -- segments ------------------------------------------------------------------
    def _start_segment(self) -> None:
        name = f"{self.path.name}_{len(self._files)}"
        seg = BagWriter(self.path / name, storage=self.storage, typestore=self.typestore)
        seg.open()
        for topic, msgtype in self._msgtypes.items():
            seg.add_topic(topic, msgtype)
        self._segment, self._segment_started = seg, time.monotonic()

    def _finish_segment(self) -> None:
        seg, self._segment = self._segment, None
        if seg is None:
            return
        seg.close()
        folder = seg.path
        info = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        (storage_file,) = info["relative_file_paths"]
        final = self.path / f"{folder.name}{SUFFIX[self.storage]}"
        os.replace(folder / storage_file, final)
        for entry in info["files"]:
            self._files.append({**entry, "path": final.name})
        for t in info["topics_with_message_count"]:
            name = t["topic_metadata"]["name"]
            if name in self._topics:
                self._topics[name]["message_count"] += t["message_count"]
            else:
                self._topics[name] = t
        self._write_metadata()
        (folder / "metadata.yaml").unlink()
        folder.rmdir()

    def _write_metadata(self) -> None:
        """metadata.yaml of the finished files, replaced atomically."""
        files = [f for f in self._files if f["message_count"]]
        start = min((f["starting_time"]["nanoseconds_since_epoch"] for f in files), default=0)
        end = max(
            (f["starting_time"]["nanoseconds_since_epoch"] + f["duration"]["nanoseconds"] for f in files), default=0
        )
        info = {
            "version": METADATA_VERSION,
            "storage_identifier": self.storage,
            "relative_file_paths": [f["path"] for f in self._files],
            "duration": {"nanoseconds": end - start},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": sum(f["message_count"] for f in self._files),
            "topics_with_message_count": list(self._topics.values()),
            "compression_format": "",
            "compression_mode": "",
            "files": self._files,
            "custom_data": None,
            "ros_distro": "rosbags",
        }
        tmp = self.path / "metadata.yaml.tmp"
        tmp.write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False))
        os.replace(tmp, self.path / "metadata.yaml")
