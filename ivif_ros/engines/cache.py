"""On-disk cache for built artefacts (exported ONNX files, TensorRT engines).

Each entry is a *slot* (a readable file name such as
``tensorrt-<model>-480x640-fp16.ep``) plus a JSON sidecar holding the full key
(weights hash, shapes, precision, library versions, GPU) and the artefact's
SHA-256. An entry is used only when the stored key equals the current key and
the file's hash matches; otherwise it is stale or corrupt and rebuilt in place,
so a version upgrade overwrites the old engine instead of piling up new ones.

Whoever can write the cache could rewrite a sidecar to match a tampered artefact, so the
sidecar's own word is not enough: it also carries an HMAC of (key digest, artefact hash)
under a per-user secret kept outside the cache (``cache_secret`` below, mode 0600 in a
0700 folder). The key itself is always recomputed from the loaded weights by the caller.
An entry whose HMAC does not verify is ``untrusted`` and rebuilt. The cache folders are
created 0700 and the files 0600, whatever the umask.

Building and loading are passed in as functions, so the cache logic is tested
without TensorRT (a fake builder) and reused for every backend.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from ivif_ros.core.hashing import file_sha256
from ivif_ros.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")


def key_digest(key: Mapping[str, object]) -> str:
    """Stable SHA-256 of a key mapping (order-independent, JSON-normalised)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


SECRET_ENV = "IVIF_ROS_CACHE_SECRET_FILE"
_process_secret: bytes | None = None


def secret_path() -> Path:
    """``$IVIF_ROS_CACHE_SECRET_FILE``, else ``$XDG_CONFIG_HOME/ivif_ros/cache_secret`` (``~/.config``)."""
    if os.environ.get(SECRET_ENV):
        return Path(os.environ[SECRET_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ivif_ros" / "cache_secret"


def cache_secret() -> bytes:
    """The per-user key that signs cache entries, created on first use (0600 in a 0700 folder).

    A key file that others could read or write (not ours, or group/other bits set) is not used;
    nor is one that cannot be created (read-only home). Then a key for this process only is
    used: every entry from an earlier process fails to verify and is rebuilt, which is slow
    but safe.
    """
    global _process_secret
    path = secret_path()
    try:
        private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(os.urandom(32).hex())
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                raise PermissionError(
                    f"{path} is not private to this user (mode {st.st_mode & 0o777:o}, owner uid {st.st_uid})"
                )
            secret = bytes.fromhex(f.read(200).strip())
        if len(secret) < 16:
            raise ValueError(f"{path} holds no key")
        return secret
    except (OSError, ValueError, ConfigError) as exc:
        if _process_secret is None:
            log.warning(
                "engine cache: cannot use the key file (%s); cached entries are rebuilt in every "
                "process. Delete it (it is recreated) or set %s to a private path",
                exc,
                SECRET_ENV,
            )
            _process_secret = os.urandom(32)
        return _process_secret


def entry_mac(digest: str, sha: str) -> str:
    """HMAC-SHA256 binding an artefact hash to its key digest under the user's cache secret."""
    return hmac.new(cache_secret(), f"{digest}:{sha}".encode(), hashlib.sha256).hexdigest()


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 whatever the umask; an existing folder of
    ours that others may write is made private. One owned by someone else is refused."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir(mode=0o700)
        except FileExistsError:
            pass
        os.chmod(p, 0o700)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise ConfigError(
            f"engine.cache_dir: {path} belongs to uid {st.st_uid}, not to this user; "
            "set engine.cache_dir (or IVIF_ROS_CACHE_DIR) to a folder of your own"
        )
    if st.st_mode & 0o022:
        log.warning("engine cache: %s was writable by others (mode %o); made it private", path, st.st_mode & 0o777)
        os.chmod(path, 0o700)
    return path


class ArtifactCache:
    """Build-once cache of files under ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def paths(self, slot: str) -> tuple[Path, Path]:
        """``(artefact, sidecar)`` paths of ``slot`` (slot includes the file extension)."""
        artefact = self.root / slot
        return artefact, artefact.with_name(artefact.name + ".json")

    def status(self, slot: str, key: Mapping[str, object]) -> str:
        """``'hit'``, ``'missing'``, ``'stale'`` (key differs), ``'corrupt'`` (bad sidecar or file hash)
        or ``'untrusted'`` (sidecar not signed with this user's cache secret)."""
        artefact, sidecar = self.paths(slot)
        if not artefact.exists() or not sidecar.exists():
            return "missing"
        try:
            meta = json.loads(sidecar.read_text())
            stored_digest, stored_sha, stored_mac = meta["key_digest"], meta["sha256"], meta.get("mac", "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "corrupt"
        digest = key_digest(key)
        if stored_digest != digest:
            return "stale"
        sha = file_sha256(artefact)
        if sha != stored_sha:
            return "corrupt"
        if not isinstance(stored_mac, str) or not hmac.compare_digest(stored_mac, entry_mac(digest, sha)):
            return "untrusted"
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
        private_dir(self.root)
        tmp = artefact.with_name(f".{artefact.name}.{os.getpid()}.tmp{artefact.suffix}")
        try:
            build(tmp)
            os.chmod(tmp, 0o600)
            sha = file_sha256(tmp)
            os.replace(tmp, artefact)
        finally:
            tmp.unlink(missing_ok=True)
        digest = key_digest(key)
        meta = json.dumps(
            {"key_digest": digest, "sha256": sha, "mac": entry_mac(digest, sha), "key": dict(key)},
            indent=1,
            default=str,
        )
        tmp_meta = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
        fd = os.open(tmp_meta, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(meta)
        os.replace(tmp_meta, sidecar)  # atomic: a concurrent reader sees the old or the new sidecar, never half
        log.info("cache: built %s", artefact)
        return load(artefact)
