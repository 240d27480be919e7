"""IR -> visible registration (ivif_ros.core.registration) against OpenCV's own warps."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ivif_ros.core.config import RegistrationConfig
from ivif_ros.core.registration import Registration, load_homography
from ivif_ros.errors import ConfigError, InputError


@pytest.fixture
def ir():
    rng = np.random.default_rng(0)
    # smooth content, so interpolation rounding differences stay at one grey level
    return cv2.GaussianBlur(rng.integers(0, 256, (120, 160), dtype=np.uint8), (7, 7), 2)


def test_homography_matches_warp_perspective(ir):
    h = np.array([[1.05, 0.02, -3.0], [-0.01, 0.98, 4.0], [1e-5, -2e-5, 1.0]])
    reg = Registration(RegistrationConfig(mode="homography", homography=h.ravel().tolist()))
    out = reg(ir, (170, 110))
    ref = cv2.warpPerspective(ir, h, (170, 110), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert out.shape == (110, 170)
    # rounding of the fixed-point sampling positions: at most one grey level inside the field
    # of view; the rim of the field of view blends with the black border slightly differently
    inside = cv2.erode(cv2.warpPerspective(np.ones_like(ir), h, (170, 110)), np.ones((5, 5), np.uint8)) > 0
    assert diff[inside].max() <= 1 and diff.mean() < 0.1


def test_resize_and_crop_match_cv2_resize(ir):
    reg = Registration(RegistrationConfig(mode="resize"))
    assert np.abs(reg(ir, (320, 240)).astype(int) - cv2.resize(ir, (320, 240)).astype(int)).max() <= 1
    assert np.abs(reg(ir, (96, 80)).astype(int) - cv2.resize(ir, (96, 80)).astype(int)).max() <= 1
    crop = Registration(RegistrationConfig(mode="crop", crop_xywh=[20, 10, 100, 80]))
    ref = cv2.resize(ir[10:90, 20:120], (200, 160))
    # the rim differs by design: it samples the real IR pixels just outside the crop, which
    # cv2.resize of the cut-out cannot see and replaces with the edge
    assert np.abs(crop(ir, (200, 160)).astype(int) - ref.astype(int))[1:-1, 1:-1].max() <= 1


def test_crop_outside_image_names_the_setting(ir):
    reg = Registration(RegistrationConfig(mode="crop", crop_xywh=[100, 0, 100, 80]))
    with pytest.raises(InputError, match="crop_xywh"):
        reg(ir, (200, 160))


def test_none_mode_passes_through_or_explains(ir):
    reg = Registration(RegistrationConfig(mode="none"))
    assert reg(ir, (160, 120)) is ir
    with pytest.raises(InputError, match="registration.mode"):
        reg(ir, (320, 240))


def test_camera_info_mode_uses_intrinsics(ir):
    k_ir = np.array([[100.0, 0, 80], [0, 100, 60], [0, 0, 1]])
    k_vis = np.array([[200.0, 0, 160], [0, 200, 120], [0, 0, 1]])
    reg = Registration(RegistrationConfig(mode="camera_info"))
    out = reg(ir, (320, 240), k_ir, k_vis)
    ref = cv2.warpPerspective(ir, k_vis @ np.linalg.inv(k_ir), (320, 240))
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    with pytest.raises(InputError, match="camera_info"):
        reg(ir, (320, 240), None, k_vis)


def test_maps_are_computed_once_per_size(ir, monkeypatch):
    import ivif_ros.core.registration as registration

    calls = []
    real = registration.remap_tables
    monkeypatch.setattr(registration, "remap_tables", lambda *a: calls.append(a[1:]) or real(*a))
    reg = Registration(RegistrationConfig(mode="resize"))
    for _ in range(3):
        reg(ir, (320, 240))
    reg(ir, (640, 480))
    assert calls == [((120, 160), (240, 320)), ((120, 160), (480, 640))]


@pytest.mark.parametrize("suffix", [".npy", ".txt", ".csv", ".yaml", ".json"])
def test_calibration_file_formats(tmp_path, suffix):
    h = np.array([[1.1, 0.0, 2.0], [0.0, 0.9, -1.0], [0.0, 0.0, 1.0]])
    path = tmp_path / f"h{suffix}"
    if suffix == ".npy":
        np.save(path, h)
    elif suffix in (".txt", ".csv"):
        np.savetxt(path, h, delimiter="," if suffix == ".csv" else " ")
    else:
        path.write_text(json.dumps({"homography": h.tolist()}))
    np.testing.assert_allclose(load_homography(path), h)
    reg = Registration(RegistrationConfig(mode="homography", calibration_file=str(path)))
    np.testing.assert_allclose(reg.homography((160, 120), (160, 120)), h)


def test_bad_calibration_files_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_homography(tmp_path / "missing.npy")
    (tmp_path / "h.yaml").write_text("H: [1, 0, 0]\n")
    with pytest.raises(ConfigError, match="'homography'"):
        load_homography(tmp_path / "h.yaml")
    np.save(tmp_path / "singular.npy", np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="invertible"):
        load_homography(tmp_path / "singular.npy")
