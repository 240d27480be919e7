"""Recover the complete messages of a truncated or damaged MCAP file.

A recording cut short (crash, full disk, power loss) has no summary section or footer,
and rosbags refuses to open it. The data section before the cut is still valid, so this
module walks the records linearly from the start and keeps every message that is
complete, stopping at the first record that runs past the end of the file. A chunk that
fails its CRC or cannot be decompressed is skipped and reported; the scan continues.

Messages are returned in file order (recorders write in receive order).
"""

from __future__ import annotations

import mmap
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2.storage_mcap import decompress

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END = 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F


@dataclass(frozen=True)
class SalvagedChannel:
    id: int
    topic: str
    msgtype: str
    msgdef: str  # schema text ('' when the file carries none)
    msgdef_encoding: str  # 'ros2msg' or 'ros2idl'


@dataclass
class McapSalvage:
    """Linear scanner of one MCAP file; ``errors`` says what could not be read."""

    path: Path
    channels: dict[int, SalvagedChannel] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def messages(self):
        """Yield ``(channel, log_time_ns, cdr_bytes)`` for every complete message."""
        self.errors.clear()
        schemas: dict[int, tuple[str, str, str]] = {}
        with open(self.path, "rb") as f:
            if f.read(8) != MAGIC:
                self.errors.append(f"{self.path}: not an MCAP file (bad magic bytes)")
                return
            f.seek(0, 2)
            if f.tell() <= 8:
                self.errors.append(f"{self.path}: file ends after the magic bytes")
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                buf = memoryview(mm)
                try:
                    yield from self._scan(buf, 8, len(buf), schemas, where="file")
                finally:
                    buf.release()

    def _scan(self, buf, pos: int, end: int, schemas, *, where: str):
        """Walk records in ``buf[pos:end]``; ``where`` is 'file', 'chunk' or 'cut chunk'
        (a chunk the file ends inside, whose overrun is already reported)."""
        while pos < end:
            if pos + 9 > end:
                self._cut(pos, "a record header", where)
                return
            op = buf[pos]
            (length,) = struct.unpack_from("<Q", buf, pos + 1)
            body, next_pos = pos + 9, pos + 9 + length
            if next_pos > end:
                if op == OP_CHUNK and where == "file":  # keep the complete messages of a cut chunk
                    yield from self._chunk(buf, body, end, schemas, cut=True)
                self._cut(pos, f"record type 0x{op:02x} of {length} bytes", where)
                return
            if op in (OP_DATA_END, OP_FOOTER):
                return
            if op == OP_SCHEMA:
                (sid,) = struct.unpack_from("<H", buf, body)
                name, p = _string(buf, body + 2)
                encoding, p = _string(buf, p)
                (n,) = struct.unpack_from("<I", buf, p)
                schemas[sid] = (name, encoding, bytes(buf[p + 4 : p + 4 + n]).decode())
            elif op == OP_CHANNEL:
                cid, sid = struct.unpack_from("<HH", buf, body)
                topic, _ = _string(buf, body + 4)
                name, encoding, text = schemas.get(sid, ("", "", ""))
                self.channels[cid] = SalvagedChannel(cid, topic, name, text, encoding)
            elif op == OP_MESSAGE:
                cid, _seq, log_time = struct.unpack_from("<HIQ", buf, body)
                channel = self.channels.get(cid)
                if channel is not None:
                    yield channel, log_time, bytes(buf[body + 22 : next_pos])
            elif op == OP_CHUNK and where == "file":
                yield from self._chunk(buf, body, next_pos, schemas)
            pos = next_pos

    def _chunk(self, buf, body: int, end: int, schemas, *, cut: bool = False):
        """Scan the records of a chunk; a ``cut`` chunk (file truncated inside it) can only
        be read when uncompressed, and then without its CRC."""
        if body + 40 > end:
            return
        _start, _end, size, crc = struct.unpack_from("<QQQI", buf, body)
        compression, p = _string(buf, body + 28)
        if p + 8 > end or (cut and compression):
            return
        (n,) = struct.unpack_from("<Q", buf, p)
        records = buf[p + 8 : min(p + 8 + n, end)]
        if cut:
            yield from self._scan(records, 0, len(records), schemas, where="cut chunk")
            return
        try:
            raw = decompress(bytes(records), compression, size, crc) if compression else records
        except ReaderError as exc:
            self.errors.append(f"{self.path}: chunk at byte {body - 9} skipped: {exc}")
            return
        if not compression and crc and zlib.crc32(raw) != crc:
            self.errors.append(f"{self.path}: chunk at byte {body - 9} skipped: checksum mismatch")
            return
        yield from self._scan(memoryview(raw), 0, len(raw), schemas, where="chunk")

    def _cut(self, pos: int, what: str, where: str) -> None:
        if where == "file":
            self.errors.append(f"{self.path}: file is truncated: {what} at byte {pos} runs past the end of the file")
        elif where == "chunk":
            self.errors.append(f"{self.path}: a chunk is corrupt: {what} overruns the chunk; rest of chunk skipped")


def _string(buf, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return bytes(buf[pos + 4 : pos + 4 + n]).decode(), pos + 4 + n
