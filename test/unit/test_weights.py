"""Shipped weights: they load with safetensors only, their sha256 matches, and tampering is caught."""

import json
import shutil

import pytest
import torch

from ivif_ros.errors import InputError
from ivif_ros.core.hashing import file_sha256
from ivif_ros.weights import WEIGHTS_DIR, load_model

torch.set_num_threads(1)


@pytest.mark.parametrize("name,arch", [("student", "student"), ("teacher", "teacher")])
def test_shipped_weights_load_and_match_their_hash(name, arch):
    model, meta = load_model(name)
    assert meta["architecture"] == arch
    assert meta["sha256"] == file_sha256(WEIGHTS_DIR / f"{name}.safetensors")
    assert meta["semantic_classes"][0] in ("background", "unlabelled")
    assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size < 5 * 2**20
    with torch.no_grad():
        fused, seg = model(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64))
    assert seg.shape[1] == len(meta["semantic_classes"])
    assert torch.isfinite(fused).all()


def test_student_is_trained_not_the_initial_prior():
    """A trained student must differ from its untrained pixel-max starting point."""
    model, _ = load_model("student")
    ir, vis = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        fused = model(ir, vis)[0]
    assert (fused - torch.maximum(ir, vis)).abs().mean() > 1e-3


def test_a_modified_weights_file_is_refused(tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"student{suffix}", tmp_path / f"student{suffix}")
    data = bytearray((tmp_path / "student.safetensors").read_bytes())
    data[-1] ^= 0xFF  # flip bits in the last tensor's data
    (tmp_path / "student.safetensors").write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256"):
        load_model(tmp_path / "student.safetensors")


def test_missing_sidecar_and_wrong_architecture_are_explained(tmp_path):
    shutil.copy(WEIGHTS_DIR / "student.safetensors", tmp_path / "student.safetensors")
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "student")
    meta = json.loads((WEIGHTS_DIR / "student.json").read_text())
    meta["config"]["width"] = 48  # a sidecar that does not describe these tensors
    (tmp_path / "student.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="does not fit"):
        load_model(tmp_path / "student")
