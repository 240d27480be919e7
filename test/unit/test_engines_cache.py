"""Artefact cache (used for TensorRT engines and ONNX exports), tested with a fake builder: no TensorRT needed."""

import json

import pytest

from ivif_ros.engines.base import ModelIO
from ivif_ros.engines.cache import ArtifactCache
from ivif_ros.engines.config import EngineConfig
from ivif_ros.engines.tensorrt_backend import engine_cache_key, engine_slot, input_profile

KEY = {"model": "abc", "shapes": [1, 1, 480, 640], "precision": "fp16", "tensorrt": "10.3", "torch": "2.13"}


class FakeBuilder:
    """Writes a small 'engine' file and counts how often it was asked to build."""

    def __init__(self, payload=b"engine-bytes"):
        self.payload = payload
        self.calls = 0

    def __call__(self, path):
        self.calls += 1
        path.write_bytes(self.payload + str(self.calls).encode())


def read(path):
    return path.read_bytes()


def test_miss_builds_then_hit_loads_without_building(tmp_path):
    cache, build = ArtifactCache(tmp_path), FakeBuilder()
    assert cache.status("e.ep", KEY) == "missing"
    first = cache.get_or_build("e.ep", KEY, build, read)
    second = cache.get_or_build("e.ep", KEY, build, read)
    assert first == second == b"engine-bytes1"
    assert build.calls == 1
    assert cache.status("e.ep", KEY) == "hit"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.ep", "e.ep.json"]  # no temp files left


@pytest.mark.parametrize("field", ["model", "shapes", "precision", "tensorrt", "torch"])
def test_any_key_change_is_stale_and_rebuilt_in_the_same_slot(tmp_path, field):
    cache, build = ArtifactCache(tmp_path), FakeBuilder()
    cache.get_or_build("e.ep", KEY, build, read)
    changed = {**KEY, field: "something else"}
    assert cache.status("e.ep", changed) == "stale"
    assert cache.get_or_build("e.ep", changed, build, read) == b"engine-bytes2"
    assert build.calls == 2
    assert json.loads((tmp_path / "e.ep.json").read_text())["key"] == changed


def test_truncated_artefact_is_corrupt_and_rebuilt(tmp_path):
    cache, build = ArtifactCache(tmp_path), FakeBuilder()
    cache.get_or_build("e.ep", KEY, build, read)
    (tmp_path / "e.ep").write_bytes(b"engi")
    assert cache.status("e.ep", KEY) == "corrupt"
    assert cache.get_or_build("e.ep", KEY, build, read) == b"engine-bytes2"


def test_unreadable_sidecar_is_corrupt_and_rebuilt(tmp_path):
    cache, build = ArtifactCache(tmp_path), FakeBuilder()
    cache.get_or_build("e.ep", KEY, build, read)
    (tmp_path / "e.ep.json").write_text("{not json")
    assert cache.status("e.ep", KEY) == "corrupt"
    cache.get_or_build("e.ep", KEY, build, read)
    assert build.calls == 2 and cache.status("e.ep", KEY) == "hit"


def test_entry_that_fails_to_load_is_rebuilt_once(tmp_path):
    cache, build = ArtifactCache(tmp_path), FakeBuilder()
    cache.get_or_build("e.ep", KEY, build, read)
    loads = []

    def flaky_load(path):
        loads.append(path)
        if len(loads) == 1:
            raise RuntimeError("deserialisation failed (e.g. engine built for another GPU)")
        return read(path)

    assert cache.get_or_build("e.ep", KEY, build, flaky_load) == b"engine-bytes2"
    assert build.calls == 2


def test_failed_build_leaves_no_entry(tmp_path):
    cache = ArtifactCache(tmp_path)

    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="builder crashed"):
        cache.get_or_build("e.ep", KEY, broken, read)
    assert list(tmp_path.iterdir()) == []
    assert cache.status("e.ep", KEY) == "missing"


def test_tensorrt_key_covers_weights_shapes_precision_versions_and_gpu():
    cfg = EngineConfig(backend="tensorrt", precision="fp16", width=640, height=480)
    versions = {"tensorrt": "10.3", "torch_tensorrt": "2.5", "torch": "2.5"}
    key = engine_cache_key("w" * 64, cfg, versions, "Orin")
    static = {"min": (1, 1, 480, 640), "opt": (1, 1, 480, 640), "max": (1, 1, 480, 640)}
    assert key["shapes"] == {"ir": static, "vis": static}
    detector_io = ModelIO(("image",), (3,), ("pred",))
    detector_key = engine_cache_key("w" * 64, cfg, versions, "Orin", detector_io)
    assert detector_key["shapes"] == {"image": {k: (1, 3, 480, 640) for k in static}}
    variants = [
        engine_cache_key("v" * 64, cfg, versions, "Orin"),
        engine_cache_key("w" * 64, EngineConfig(backend="tensorrt", precision="fp32"), versions, "Orin"),
        engine_cache_key("w" * 64, EngineConfig(backend="tensorrt", precision="fp16", dynamic=True), versions, "Orin"),
        engine_cache_key("w" * 64, cfg, {**versions, "tensorrt": "10.4"}, "Orin"),
        engine_cache_key("w" * 64, cfg, {**versions, "torch_tensorrt": "2.6"}, "Orin"),
        engine_cache_key("w" * 64, cfg, {**versions, "torch": "2.6"}, "Orin"),
        engine_cache_key("w" * 64, cfg, versions, "RTX 4090"),
    ]
    assert all(v != key for v in variants)


def test_tensorrt_dynamic_profile_and_slot_names():
    cfg = EngineConfig(
        backend="tensorrt", width=630, height=470, dynamic=True, min_size=(256, 320), max_size=(1024, 1280)
    )
    assert input_profile(cfg) == {"min": (1, 1, 256, 320), "opt": (1, 1, 480, 640), "max": (1, 1, 1024, 1280)}
    assert engine_slot("0123456789abcdef" * 4, cfg) == "tensorrt-0123456789abcdef-480x640-dyn-fp32.ep"


def test_entries_are_private_whatever_the_umask(tmp_path, monkeypatch):
    """Under umask 000 the cache folders are still 0700 and its files 0600 (so no other user can
    swap an engine), an existing world-writable cache folder is made private, and the per-user key
    that signs the entries is 0600 outside the cache."""
    import os
    import stat

    monkeypatch.setenv("IVIF_ROS_CACHE_SECRET_FILE", str(tmp_path / "config" / "ivif_ros" / "cache_secret"))
    old = os.umask(0)
    try:
        cache = ArtifactCache(tmp_path / "cache" / "engines")
        cache.get_or_build("e.ep", KEY, FakeBuilder(), read)
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o777)
        ArtifactCache(shared).get_or_build("e.ep", KEY, FakeBuilder(), read)
    finally:
        os.umask(old)

    def mode(p):
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(tmp_path / "cache") == mode(tmp_path / "cache" / "engines") == mode(shared) == 0o700
    for f in (tmp_path / "cache" / "engines").iterdir():
        assert mode(f) == 0o600, f
    secret = tmp_path / "config" / "ivif_ros" / "cache_secret"
    assert mode(secret) == 0o600 and mode(secret.parent) == 0o700


def test_a_rewritten_sidecar_does_not_make_a_swapped_artefact_load(tmp_path):
    """The sidecar's sha256 is the attacker's to rewrite; its HMAC under the user's secret is not."""
    from ivif_ros.core.hashing import file_sha256

    cache, build = ArtifactCache(tmp_path), FakeBuilder()
    cache.get_or_build("e.ep", KEY, build, read)
    (tmp_path / "e.ep").write_bytes(b"malicious engine")
    meta = json.loads((tmp_path / "e.ep.json").read_text())
    meta["sha256"] = file_sha256(tmp_path / "e.ep")
    (tmp_path / "e.ep.json").write_text(json.dumps(meta))
    assert cache.status("e.ep", KEY) == "untrusted"
    assert cache.get_or_build("e.ep", KEY, build, read) == b"engine-bytes2"
    assert build.calls == 2 and cache.status("e.ep", KEY) == "hit"
