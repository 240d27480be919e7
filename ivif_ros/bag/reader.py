"""Read rosbag2 bags (mcap or sqlite3; a bag folder or a single .mcap/.db3 file) with rosbags.

* Message definitions stored in the bag win over the distro's (a bag recorded on
  Humble decodes with Humble's definitions); types the bag does not define come from
  the chosen distro typestore plus ivif_ros's own messages.
* Asking for a topic or type the bag does not have gives an error that lists what the
  bag does contain.
* Damaged bags: a truncated MCAP file (recording cut short: no index, no footer) is
  opened in salvage mode. :meth:`BagReader.messages` then yields every complete message
  and afterwards raises :class:`BagDamagedError` (``strict=True``, the default) or
  stops quietly (``strict=False``); either way ``reader.errors`` says what was lost.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

from rosbags.rosbag2 import Reader, ReaderError
from rosbags.typesys import Stores, TypesysError, get_types_from_idl, get_types_from_msg, get_typestore

from ivif_ros.bag.mcap_salvage import McapSalvage
from ivif_ros.bag.opened import OpenedInWith
from ivif_ros.bag.typestore import DEFAULT_DISTRO, make_typestore
from ivif_ros.errors import InputError

try:  # rosbags reads sqlite3 bags with apsw when it is installed, and raises its errors
    from apsw import Error as _ApswError
except ImportError:  # pragma: no cover - apsw is optional in rosbags

    class _ApswError(Exception):
        pass


# What a damaged storage file raises while opening or reading (never a bug of ours).
STORAGE_ERRORS = (ReaderError, sqlite3.DatabaseError, _ApswError, OSError)


class BagMessage(NamedTuple):
    topic: str
    t_ns: int  # receive (log) time in the bag, nanoseconds since the epoch
    msg: object  # decoded rosbags message


@dataclass(frozen=True)
class TopicInfo:
    topic: str
    msgtype: str
    count: int


class BagDamagedError(InputError):
    """The bag is truncated or corrupt; raised after all readable messages were yielded.

    ``yielded`` is how many messages the iteration produced before this was raised.
    """

    def __init__(self, message: str, yielded: int):
        super().__init__(message)
        self.yielded = yielded


def _closure(fielddefs: dict, roots: set[str]) -> dict:
    """``roots`` and every message type their fields reference, from a typestore's fielddefs."""
    out: dict = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out or name not in fielddefs:
            continue
        out[name] = fielddefs[name]
        stack = [fielddefs[name][1]]
        while stack:  # field trees are nested tuples/lists; type names are the strings with a '/'
            node = stack.pop()
            if isinstance(node, str):
                if "/" in node and node not in out:
                    todo.append(node)
            elif isinstance(node, (tuple, list)):
                stack.extend(node)
    return out


class BagReader(OpenedInWith):
    """An open rosbag2 bag; use as a context manager."""

    def __init__(self, path: str | Path, *, distro: str = DEFAULT_DISTRO):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"bag {self.path} does not exist")
        self.distro = distro
        self.errors: list[str] = []
        self._reader: Reader | None = None
        self._salvage: list[McapSalvage] = []
        self._topics: dict[str, TopicInfo] = {}
        self.typestore = None

    # -- opening -------------------------------------------------------------------
    def open(self) -> None:
        target = self._storage_target()
        try:
            reader = Reader(target)
            reader.open()
        except (*STORAGE_ERRORS, KeyError, ValueError) as exc:
            mcaps = self._mcap_files(target)
            if not mcaps:
                raise InputError(
                    f"bag {self.path} cannot be read: {exc}. The file is damaged or not a rosbag2 bag "
                    "(expected a folder with metadata.yaml, or a .mcap/.db3 file)"
                ) from None
            self._open_salvage(mcaps, exc)
            return
        self._reader = reader
        conns = reader.connections
        self._topics = {
            topic: TopicInfo(topic, info.msgtype or "<mixed types>", info.msgcount)
            for topic, info in reader.topics.items()
        }
        self.typestore = self._build_typestore([(c.msgtype, c.msgdef.format.name, c.msgdef.data) for c in conns])

    def _storage_target(self) -> Path:
        """The bag folder, or its single .mcap file when metadata.yaml is missing
        (a recording that was killed before rosbag2 wrote it)."""
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            files = sorted(self.path.glob("*.mcap")) + sorted(self.path.glob("*.db3"))
            if len(files) != 1:
                raise InputError(
                    f"bag folder {self.path} has no metadata.yaml and {len(files)} storage files; "
                    "pass the .mcap/.db3 file itself"
                )
            self.errors.append(f"{self.path}: metadata.yaml is missing; reading {files[0].name} directly")
            return files[0]
        return self.path

    @staticmethod
    def _mcap_files(target: Path) -> list[Path]:
        if target.is_dir():
            return sorted(target.glob("*.mcap"))
        return [target] if target.suffix == ".mcap" else []

    def _open_salvage(self, mcaps: list[Path], exc: Exception) -> None:
        """Index a damaged MCAP by scanning it: count complete messages per topic."""
        self.errors.append(f"{self.path}: rosbags cannot open it ({exc}); salvaging complete messages")
        self._salvage = [McapSalvage(p) for p in mcaps]
        counts: dict[int, dict[int, int]] = {}
        for i, scanner in enumerate(self._salvage):
            per_channel = counts.setdefault(i, {})
            for channel, _t, _data in scanner.messages():
                per_channel[channel.id] = per_channel.get(channel.id, 0) + 1
            self.errors.extend(scanner.errors)
        if not any(scanner.channels for scanner in self._salvage):
            raise InputError(
                f"bag {self.path} cannot be read: {exc}; nothing is salvageable: "
                + "; ".join(self.errors[1:] or ["no topic records before the damage"])
            )
        topics: dict[str, TopicInfo] = {}
        defs = []
        for i, scanner in enumerate(self._salvage):
            for ch in scanner.channels.values():
                n = counts[i].get(ch.id, 0) + (topics[ch.topic].count if ch.topic in topics else 0)
                topics[ch.topic] = TopicInfo(ch.topic, ch.msgtype, n)
                fmt = {"ros2msg": "MSG", "ros2idl": "IDL"}.get(ch.msgdef_encoding, "NONE")
                defs.append((ch.msgtype, fmt, ch.msgdef))
        self._topics = dict(sorted(topics.items()))
        self.typestore = self._build_typestore(defs)

    def _build_typestore(self, definitions: list[tuple[str, str, str]]):
        """The bag's own definitions first, then the distro's and ivif_ros's for the rest."""
        bag_types: dict = {}
        for msgtype, fmt, text in definitions:
            if not text.strip():  # recorders that store no definition leave it empty
                continue
            try:
                if fmt == "MSG":
                    bag_types.update(get_types_from_msg(text, msgtype))
                elif fmt == "IDL":
                    for block in text.split("=" * 80 + "\n"):
                        if block.strip():
                            body = block.split("\n", 1)[1] if block.startswith("IDL: ") else block
                            bag_types.update(get_types_from_idl(body))
            except TypesysError as exc:
                self.errors.append(
                    f"{self.path}: definition of {msgtype} in the bag is unusable ({exc}); using the {self.distro} one"
                )
        store = get_typestore(Stores.EMPTY)
        store.register(bag_types)
        missing = {msgtype for msgtype, _, _ in definitions} - set(store.fielddefs)
        if missing:  # only what the bag lacks (registering a whole distro costs ~0.2 s)
            base = make_typestore(self.distro)
            store.register(_closure(base.fielddefs, missing - set(store.fielddefs) & set(base.fielddefs)))
        return store

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- inspection ----------------------------------------------------------------
    @property
    def damaged(self) -> bool:
        """True when the bag is being read in salvage mode (some data may be lost)."""
        return bool(self._salvage)

    @property
    def topics(self) -> dict[str, TopicInfo]:
        return dict(self._topics)

    def describe(self) -> str:
        """A table of the bag's topics, types and message counts (used in error messages)."""
        if not self._topics:
            return f"bag {self.path} contains no topics"
        width = max(len(t) for t in self._topics)
        rows = [f"  {t.topic:<{width}}  {t.msgtype}  ({t.count} msgs)" for t in self._topics.values()]
        return f"bag {self.path} contains:\n" + "\n".join(rows)

    def require(self, topic: str, msgtypes: str | tuple[str, ...] | None = None) -> TopicInfo:
        """Return ``topic``'s info, or raise ``InputError`` listing what the bag contains."""
        info = self._topics.get(topic)
        if info is None:
            raise InputError(f"topic {topic} is not in the bag; {self.describe()}")
        allowed = (msgtypes,) if isinstance(msgtypes, str) else msgtypes
        if allowed and info.msgtype not in allowed:
            raise InputError(
                f"topic {topic} has type {info.msgtype}, expected {' or '.join(allowed)}; {self.describe()}"
            )
        return info

    # -- iteration -----------------------------------------------------------------
    def messages(
        self, topics: list[str] | None = None, *, start: int | None = None, stop: int | None = None, strict: bool = True
    ) -> Iterator[BagMessage]:
        """Yield ``(topic, t_ns, msg)`` of ``topics`` (all when None), decoded, in time order.

        ``start``/``stop`` bound the receive time in ns (``start <= t < stop``). On a
        damaged bag every readable message is yielded first; then ``BagDamagedError`` is
        raised if ``strict``, and ``self.errors`` lists the problems in any case.
        """
        wanted = list(self._topics) if topics is None else topics
        for topic in wanted:
            self.require(topic)
        known_problems = len(self.errors)
        yielded = 0
        for topic, t_ns, raw, msgtype in self.raw_messages(wanted, start=start, stop=stop):
            try:
                msg = self.typestore.deserialize_cdr(raw, msgtype)
            except Exception as exc:  # rosbags raises several exception types for malformed CDR
                self.errors.append(f"topic {topic}: message at t={t_ns} ns cannot be decoded as {msgtype}: {exc}")
                continue
            yielded += 1
            yield BagMessage(topic, t_ns, msg)
        if strict and (self.damaged or len(self.errors) > known_problems):
            raise BagDamagedError(
                f"bag {self.path} is damaged; {yielded} messages were read. Problems: " + "; ".join(self.errors),
                yielded,
            )

    def raw_messages(self, topics: list[str], *, start: int | None = None, stop: int | None = None):
        """Yield ``(topic, t_ns, cdr_bytes, msgtype)`` without decoding (e.g. to copy a bag).

        Read errors stop the iteration and are appended to ``self.errors``.
        """
        wanted = set(topics)
        if self._salvage:
            lo, hi = (start if start is not None else -1), (stop if stop is not None else 2**63)
            for scanner in self._salvage:
                for ch, t_ns, data in scanner.messages():
                    if ch.topic in wanted and lo <= t_ns < hi:
                        yield ch.topic, t_ns, data, ch.msgtype
                self.errors.extend(e for e in scanner.errors if e not in self.errors)
            return
        conns = [c for c in self._reader.connections if c.topic in wanted]
        if not conns:  # rosbags reads *all* connections when given none
            return
        try:
            for conn, t_ns, data in self._reader.messages(conns, start=start, stop=stop):
                yield conn.topic, t_ns, data, conn.msgtype
        except STORAGE_ERRORS as exc:
            self.errors.append(f"{self.path}: reading stopped early: {exc}")
