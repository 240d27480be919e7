"""On-disk cache for built artefacts (exported ONNX files, TensorRT engines).

Each entry is a *slot* (a readable file name such as
``tensorrt-<model>-480x640-fp16.ep``) plus a JSON sidecar holding the full key
(weights hash, shapes, precision, library versions, GPU) and the artefact's
SHA-256. An entry is used only when the stored key equals the current key and
the file's hash matches; otherwise it is stale or corrupt and rebuilt in place,
so a version upgrade overwrites the old engine instead of piling up new ones.

Building and loading are passed in as functions, so the cache logic is tested
without TensorRT (a fake builder) and reused for every backend.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from ivif_ros.core.hashing import file_sha256

log = logging.getLogger(__name__)

T = TypeVar("T")


def key_digest(key: Mapping[str, object]) -> str:
    """Stable SHA-256 of a key mapping (order-independent, JSON-normalised)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


class ArtifactCache:
    """Build-once cache of files under ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def paths(self, slot: str) -> tuple[Path, Path]:
        """``(artefact, sidecar)`` paths of ``slot`` (slot includes the file extension)."""
        artefact = self.root / slot
        return artefact, artefact.with_name(artefact.name + ".json")

    def status(self, slot: str, key: Mapping[str, object]) -> str:
        """``'hit'``, ``'missing'``, ``'stale'`` (key differs) or ``'corrupt'`` (bad sidecar or file hash)."""
        artefact, sidecar = self.paths(slot)
        if not artefact.exists() or not sidecar.exists():
            return "missing"
        try:
            meta = json.loads(sidecar.read_text())
            stored_digest, stored_sha = meta["key_digest"], meta["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return "corrupt"
        if stored_digest != key_digest(key):
            return "stale"
        if file_sha256(artefact) != stored_sha:
            return "corrupt"
        return "hit"

    def get_or_build(
        self,
        slot: str,
        key: Mapping[str, object],
        build: Callable[[Path], None],
        load: Callable[[Path], T],
    ) -> T:
        """Load ``slot`` if its entry is valid for ``key``; otherwise ``build`` it and load that.

        ``build(path)`` must write the artefact to ``path``; it writes to a temporary
        name that is renamed into place only on success, so an interrupted build
        never leaves a half-written entry that looks valid. A valid-looking entry
        that still fails to load is treated as corrupt and rebuilt once.
        """
        artefact, sidecar = self.paths(slot)
        state = self.status(slot, key)
        if state == "hit":
            try:
                return load(artefact)
            except Exception as exc:  # any loader failure means the entry is unusable
                log.warning("cache entry %s failed to load (%s); rebuilding", artefact, exc)
                state = "corrupt"
        if state != "missing":
            log.warning("cache entry %s is %s for the current key; rebuilding", artefact, state)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = artefact.with_name(f".{artefact.name}.{os.getpid()}.tmp{artefact.suffix}")
        try:
            build(tmp)
            sha = file_sha256(tmp)
            os.replace(tmp, artefact)
        finally:
            tmp.unlink(missing_ok=True)
        meta = json.dumps({"key_digest": key_digest(key), "sha256": sha, "key": dict(key)}, indent=1, default=str)
        tmp_meta = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
        tmp_meta.write_text(meta)
        os.replace(tmp_meta, sidecar)  # atomic: a concurrent reader sees the old or the new sidecar, never half
        log.info("cache: built %s", artefact)
        return load(artefact)
