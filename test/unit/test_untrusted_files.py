"""Files from outside: damaged bags, hostile or tampered weights, stale or corrupt engine caches.

* ``ivif replay`` on a damaged bag ends with an explained error (exit 2) or a partial
  report (exit 1), never a traceback.
* Weights and checkpoints are never unpickled beyond tensors: a pickle whose ``__reduce__``
  would create a marker file is refused, with an error naming the file, and the marker does
  not appear. Weights whose sha256 differs from their sidecar are refused.
* The ONNX artefact that ONNX Runtime and OpenVINO load is used only when its cache key
  (weights hash, opset, torch/onnx versions) and its file hash match; otherwise it is
  rebuilt in place and the engine still agrees with eager PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from replay_support import check_accounting, make_config, make_sample

from ivif_ros.cli import main
from ivif_ros.errors import InputError

pytestmark = pytest.mark.reliability
torch.set_num_threads(1)
FRAMES = 8


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrusted_bags")
    return {
        "mcap": make_sample(root / "mcap", frames=FRAMES),
        "sqlite3": make_sample(root / "sq", FRAMES, "sqlite3"),
        "config": make_config(root / "model"),
    }


def replay(bag, out, config, capsys) -> tuple[int, str]:
    code = main(
        ["replay", str(bag), "--out", str(out), "--config", str(config), "--samples", "1", "--metrics-every", "4"]
    )
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def killed_recording(src, dst, keep: float):
    """A recorder killed mid-write: the storage file cut short and no metadata.yaml (written at close)."""
    dst.mkdir()
    data = next(src.glob("bag.*")).read_bytes()
    (dst / next(src.glob("bag.*")).name).write_bytes(data[: int(len(data) * keep)])
    return dst


def test_sqlite3_cut_inside_its_last_page_gives_a_partial_report(bags, tmp_path, capsys):
    """apsw (rosbags' sqlite3 driver) raises its own CorruptError: still a partial replay, not a traceback."""
    shutil.copytree(bags["sqlite3"], tmp_path / "bag")
    db = next((tmp_path / "bag").glob("*.db3"))
    db.write_bytes(db.read_bytes()[:-3000])
    code, out = replay(tmp_path / "bag", tmp_path / "out", bags["config"], capsys)
    assert code == 1 and "PARTIAL" in out and "malformed" in out, out[-2000:]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["partial"]


def test_metadata_claiming_more_messages_than_the_bag_holds_is_reported(bags, tmp_path, capsys):
    shutil.copytree(bags["mcap"], tmp_path / "bag")
    meta = tmp_path / "bag" / "metadata.yaml"
    meta.write_text(meta.read_text().replace(f"message_count: {FRAMES}\n", "message_count: 3000\n", 1))
    code, out = replay(tmp_path / "bag", tmp_path / "out", bags["config"], capsys)
    assert code == 1 and "lists 3000 messages on /ir/image_raw" in out and f"but {FRAMES} were read" in out, out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["partial"] and any("3000" in e for e in summary["errors"])


@pytest.mark.parametrize("storage, keep", [("mcap", 0.6), ("sqlite3", 1.0)])
def test_killed_recording_gives_a_partial_report(bags, tmp_path, capsys, storage, keep):
    """MCAP: truncated, no footer, no metadata; sqlite3: the database is whole (transactions) but
    metadata.yaml is missing. Either way the readable messages are replayed and the report says partial."""
    bag = killed_recording(bags[storage], tmp_path / "bag", keep)
    code, out = replay(bag, tmp_path / "out", bags["config"], capsys)
    assert code == 1 and "PARTIAL" in out and "metadata.yaml is missing" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["partial"] and summary["errors"]
    check_accounting(summary["counts"])
    assert 0 < summary["counts"]["fused"] <= FRAMES
    assert "Partial report" in (tmp_path / "out" / "report.md").read_text()


def _garbage(path, n=20_000):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, n, np.uint8).tobytes())
    return path


def _bag_with(src, dst, transform):
    shutil.copytree(src, dst)
    storage = next(dst.glob("bag.*"))
    storage.write_bytes(transform(storage.read_bytes()))
    return dst


@pytest.mark.parametrize(
    "case, expected",
    [
        ("random bytes as .mcap", "not an MCAP file"),
        ("random bytes in a bag folder", "not an MCAP file"),
        ("mcap cut inside its first record", "nothing is salvageable"),
        ("random bytes as .db3", "not a database"),
        ("sqlite3 cut in half", "malformed"),
        ("sqlite3 pages overwritten", "malformed"),
    ],
)
def test_unreadable_bag_is_explained(bags, tmp_path, capsys, case, expected):
    def scribble(data: bytes) -> bytes:  # a failing disk: every 997th byte after the header page replaced
        d = bytearray(data)
        d[4096::997] = np.random.default_rng(1).integers(0, 256, len(d[4096::997]), np.uint8).tobytes()
        return bytes(d)

    bag = {
        "random bytes as .mcap": lambda: _garbage(tmp_path / "x.mcap"),
        "random bytes in a bag folder": lambda: _bag_with(
            bags["mcap"], tmp_path / "b", lambda d: _garbage(tmp_path / "g").read_bytes()
        ),
        "mcap cut inside its first record": lambda: _bag_with(bags["mcap"], tmp_path / "b", lambda d: d[:40]),
        "random bytes as .db3": lambda: _garbage(tmp_path / "x.db3"),
        "sqlite3 cut in half": lambda: _bag_with(bags["sqlite3"], tmp_path / "b", lambda d: d[: len(d) // 2]),
        "sqlite3 pages overwritten": lambda: _bag_with(bags["sqlite3"], tmp_path / "b", scribble),
    }[case]()
    code, out = replay(bag, tmp_path / "out", bags["config"], capsys)
    assert code == 2, out
    assert f"ivif replay: error: bag {bag}" in out and expected in out, out


def test_intact_sqlite3_still_opens(bags):
    """Guards the corrupt-sqlite3 cases: the source database itself is fine."""
    with sqlite3.connect(next(bags["sqlite3"].glob("*.db3"))) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- weights and checkpoints ------------------------------------------------------------------


class CreatesMarker:
    """Unpickling this runs ``open(marker, 'w')``: proof that a loader executed pickled code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_at_the_model_path_is_refused_and_not_executed(tmp_path):
    from ivif_ros.weights import load_model

    marker = tmp_path / "EXECUTED"
    payload = pickle.dumps({"state_dict": CreatesMarker(marker)})
    pickle.loads(payload)  # the payload works: unpickling it does create the marker
    assert marker.exists()
    marker.unlink()
    weights = tmp_path / "student.safetensors"
    weights.write_bytes(payload)
    # The attacker also controls the sidecar, so the hash check passes: safetensors is the last line.
    (tmp_path / "student.json").write_text(
        json.dumps({"architecture": "student", "config": {}, "sha256": hashlib.sha256(payload).hexdigest()})
    )
    with pytest.raises(InputError, match="not a safetensors file.*never from pickles"):
        load_model(weights)
    checkpoint = tmp_path / "checkpoints" / "model.pt"  # the usual PyTorch checkpoint
    checkpoint.parent.mkdir()
    torch.save({"model": CreatesMarker(marker)}, checkpoint)
    with pytest.raises(InputError, match="model.safetensors not found"):
        load_model(checkpoint)  # .pt is not a weights format here: only <name>.safetensors is looked for
    assert not marker.exists()


@pytest.mark.parametrize("content", ["pickle", "garbage"])
def test_resume_checkpoint_is_loaded_weights_only(tmp_path, content):
    from ivif_ros.training.checkpoints import CHECKPOINT_NAME, load_checkpoint

    marker = tmp_path / "EXECUTED"
    path = tmp_path / CHECKPOINT_NAME
    if content == "pickle":
        torch.save({"model": CreatesMarker(marker), "step": 3}, path)
    else:
        _garbage(path, 1000)
    with pytest.raises(InputError, match=f"{CHECKPOINT_NAME} was not loaded.*weights_only=True"):
        load_checkpoint(tmp_path, torch.nn.Linear(1, 1), None, None)
    assert not marker.exists()


SIDECAR_PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a width-8000 student needs ~7 GB
from ivif_ros.errors import InputError
from ivif_ros.weights import load_model
try:
    load_model(sys.argv[1])
except InputError as exc:
    print(exc)
    sys.exit(2)
"""


@pytest.mark.parametrize(
    "width, fragment",
    [
        (8000, "fusion_maps.weight is (4, 32, 3, 3) in the file, (4, 8000, 3, 3) by the sidecar's config"),
        (200000, "does not fit the student"),
        ("abc", "config.width = 'abc' is not valid: expected an integer"),
        (None, "config.width = 'None' is not valid"),
        (-3, "config.width = '-3' is not valid"),
    ],
)
def test_sidecar_is_checked_against_the_tensors_before_a_model_is_built(tmp_path, width, fragment):
    """A sidecar that does not describe the safetensors' tensors is refused with one explained error,
    before anything is allocated (the probe runs under a 2 GB address-space limit)."""
    import subprocess
    import sys

    from ivif_ros.weights import WEIGHTS_DIR

    shutil.copy(WEIGHTS_DIR / "student.safetensors", tmp_path / "student.safetensors")
    meta = json.loads((WEIGHTS_DIR / "student.json").read_text())
    meta["config"]["width"] = width
    (tmp_path / "student.json").write_text(json.dumps(meta))
    proc = subprocess.run(
        [sys.executable, "-c", SIDECAR_PROBE, str(tmp_path / "student.safetensors")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and str(tmp_path / "student.json") in proc.stdout, proc.stdout
    assert fragment in proc.stdout and len(proc.stdout.splitlines()) == 1, proc.stdout


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    from ivif_ros.models import build_student
    from ivif_ros.weights import save_model

    torch.manual_seed(0)
    model = build_student().eval()
    stem = tmp_path_factory.mktemp("weights") / "student"
    save_model(model, stem, {"det_classes": ["person", "bicycle", "car"]})
    return model, stem


def test_tampered_weights_are_refused(student, bags, tmp_path, capsys):
    """One flipped bit in a tensor: the file still parses and the model would run, wrongly."""
    from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
    from ivif_ros.engines import EngineConfig

    _, stem = student
    for suffix in (".safetensors", ".json"):
        shutil.copy(stem.with_suffix(suffix), tmp_path / f"student{suffix}")
    weights = tmp_path / "student.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256 .* does not match"):
        FusionPipeline(PipelineConfig(model=str(weights), engine=EngineConfig(backend="torch", width=64, height=64)))
    config = tmp_path / "replay.yaml"
    config.write_text(f"pipeline:\n  model: {weights}\nengine:\n  backend: torch\n  threads: 1\n")
    code, out = replay(bags["mcap"], tmp_path / "out", config, capsys)
    assert code == 2 and f"{weights}: sha256" in out and "re-download or re-export" in out, out


# -- engine caches -------------------------------------------------------------------------------


def _onnx_entry(cache_dir):
    artefacts = list((cache_dir / "engines").glob("onnx-*.onnx"))
    assert len(artefacts) == 1, artefacts
    return artefacts[0], artefacts[0].with_name(artefacts[0].name + ".json")


def _outputs_agree(engine, model):
    rng = np.random.default_rng(0)
    ir, vis = (rng.random((1, 1, 64, 64), np.float32) for _ in range(2))
    with torch.no_grad():
        expected = model(torch.from_numpy(ir), torch.from_numpy(vis))[0].numpy()
    np.testing.assert_allclose(engine.infer(ir, vis)[0], expected, atol=2e-4)


def _stale_key(artefact, sidecar):
    """Rewrite the entry as if an older torch had exported it (a key that no longer matches)."""
    from ivif_ros.engines.cache import key_digest

    meta = json.loads(sidecar.read_text())
    meta["key"]["torch"] = "2.0.0"
    meta["key_digest"] = key_digest(meta["key"])
    sidecar.write_text(json.dumps(meta))


def _corrupt_file(artefact, sidecar):
    artefact.write_bytes(artefact.read_bytes()[:1000])  # truncated by a full disk


def _corrupt_sidecar(artefact, sidecar):
    sidecar.write_text('{"key_digest": ')


def _tampered_with_matching_sidecar(artefact, sidecar):
    """Someone who can write the cache negates the exported weights and rewrites the sidecar's
    sha256 to match the new file: only the HMAC under the user's secret can tell."""
    import onnx
    from onnx import numpy_helper

    from ivif_ros.engines.cache import file_sha256

    graph = onnx.load(str(artefact))
    for init in graph.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype == np.float32 and values.size > 16:
            init.CopyFrom(numpy_helper.from_array(-values, init.name))
    onnx.save(graph, str(artefact))
    meta = json.loads(sidecar.read_text())
    meta["sha256"] = file_sha256(artefact)
    sidecar.write_text(json.dumps(meta))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize(
    "damage",
    [_stale_key, _corrupt_file, _corrupt_sidecar, _tampered_with_matching_sidecar],
    ids=["stale_key", "corrupt_file", "corrupt_sidecar", "tampered_with_matching_sidecar"],
)
def test_stale_or_corrupt_engine_cache_is_rebuilt_not_used(student, tmp_path, caplog, backend, damage):
    from ivif_ros.engines import EngineConfig, create_engine
    from ivif_ros.engines.cache import file_sha256

    model, _ = student
    config = EngineConfig(backend=backend, width=64, height=64, threads=1, cache_dir=tmp_path)
    create_engine(model, config)
    artefact, sidecar = _onnx_entry(tmp_path)
    good_key = json.loads(sidecar.read_text())["key"]
    damage(artefact, sidecar)
    before = artefact.stat().st_mtime_ns

    with caplog.at_level(logging.WARNING, logger="ivif_ros.engines.cache"):
        engine = create_engine(model, config)
    assert any("rebuilding" in r.getMessage() and str(artefact) in r.getMessage() for r in caplog.records)
    assert _onnx_entry(tmp_path) == (artefact, sidecar)  # rebuilt in place, not beside
    meta = json.loads(sidecar.read_text())
    assert meta["key"] == good_key and meta["sha256"] == file_sha256(artefact)
    assert artefact.stat().st_mtime_ns != before
    _outputs_agree(engine, model)


def test_other_weights_never_use_the_cached_export(student, tmp_path):
    """The slot is named by the weights hash: changed weights export anew, the old entry stays unused."""
    from ivif_ros.engines import EngineConfig, create_engine

    model, _ = student
    config = EngineConfig(backend="onnxruntime", width=64, height=64, threads=1, cache_dir=tmp_path)
    create_engine(model, config)
    from ivif_ros.models import build_student

    torch.manual_seed(1)
    retrained = build_student().eval()
    engine = create_engine(retrained, config)
    assert len(list((tmp_path / "engines").glob("onnx-*.onnx"))) == 2
    _outputs_agree(engine, retrained)


def test_malicious_calibration_npy_is_refused(tmp_path):
    from ivif_ros.core.registration import load_homography
    from ivif_ros.errors import ConfigError

    marker = tmp_path / "EXECUTED"
    path = tmp_path / "homography.npy"
    np.save(path, np.array([CreatesMarker(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="cannot read a homography"):
        load_homography(path)
    assert not marker.exists() and os.path.getsize(path) > 0
