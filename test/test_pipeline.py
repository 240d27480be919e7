"""FusionPipeline end to end: a transparent stand-in model checks the data path exactly; the student checks it runs."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
from ivif_ros.engines import EngineConfig
from ivif_ros.errors import ConfigError, InputError

H, W = 250, 333  # deliberately not multiples of 32: exercises padding and cropping
BLOB = (120, 220)  # (row, col) of the hot object in the IR frame
BOX_W, BOX_H = 32.0, 64.0


class StandIn(torch.nn.Module):
    """Follows the model I/O contract with outputs a test can predict.

    fused = vis; semantic class 1 where the IR (averaged over 4x4) is hot;
    detection class 0 heatmap = the 4x4-averaged IR; every box 32x64 px centred in its cell.
    """

    def forward(self, ir, vis):
        ir4 = F.avg_pool2d(ir, 4)
        seg = torch.cat([torch.zeros_like(ir4), 10 * (ir4 - 0.5), torch.zeros_like(ir4), torch.zeros_like(ir4)], 1)
        heat = torch.cat([ir4, torch.zeros_like(ir4), torch.zeros_like(ir4)], 1)
        box = torch.ones_like(ir4).repeat(1, 4, 1, 1)
        box = box * torch.tensor([0.5, 0.5, np.log(BOX_W / 4), np.log(BOX_H / 4)], dtype=torch.float32).view(1, 4, 1, 1)
        return vis, seg, heat, box


def hot_blob_ir(dtype=np.uint8):
    yy, xx = np.mgrid[0:H, 0:W]
    blob = np.exp(-((yy - BLOB[0]) ** 2 + (xx - BLOB[1]) ** 2) / (2 * 12.0**2))
    peak = np.iinfo(dtype).max
    return np.round(peak * blob).astype(dtype)


@pytest.fixture(scope="module")
def pipeline():
    torch.set_num_threads(1)
    return FusionPipeline(PipelineConfig(score_threshold=0.3), engine=_torch_engine(StandIn()))


def _torch_engine(model):
    from ivif_ros.engines import build_backend

    return build_backend("torch", model, EngineConfig(backend="torch"), "stand-in")


def test_rgb_frame_gives_fused_colour_mask_overlay_and_one_box(pipeline):
    vis = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    r = pipeline.process(hot_blob_ir(), vis)

    assert r.fused_rgb.shape == r.overlay.shape == r.color_mask.shape == (H, W, 3)
    assert r.fused_y.shape == r.mask.shape == (H, W)
    assert all(a.dtype == np.uint8 for a in (r.fused_rgb, r.fused_y, r.mask, r.color_mask, r.overlay))
    # fused = vis luma with vis chroma restored -> the visible image back, up to rounding
    assert np.abs(r.fused_rgb.astype(int) - vis).max() <= 1

    hot = r.mask == 1
    assert hot[BLOB] and not hot[0, 0] and set(np.unique(r.mask)) == {0, 1}
    np.testing.assert_array_equal(r.overlay[~hot], r.fused_rgb[~hot])
    assert (r.overlay[hot] != r.fused_rgb[hot]).any(axis=1).all()

    assert len(r.detections) == 1 and r.detections.class_ids.tolist() == [0]
    x0, y0, x1, y1 = r.detections.xyxy[0]
    assert (x1 - x0, y1 - y0) == pytest.approx((BOX_W, BOX_H))
    assert abs((x0 + x1) / 2 - BLOB[1]) <= 4 and abs((y0 + y1) / 2 - BLOB[0]) <= 4
    assert set(r.timings) == {"pre_ms", "infer_ms", "post_ms", "total_ms"}
    assert r.timings["total_ms"] >= r.timings["infer_ms"] > 0


def test_grey_uint16_frames_are_accepted(pipeline):
    vis = np.random.default_rng(1).integers(0, 65536, (H, W), dtype=np.uint16)
    r = pipeline.process(hot_blob_ir(np.uint16), vis)
    expected = np.round(vis / 257.0)
    assert np.abs(r.fused_y.astype(int) - expected).max() <= 1
    assert (r.fused_rgb == r.fused_y[:, :, None]).all()
    assert len(r.detections) == 1


def test_boxes_are_clipped_to_the_frame(pipeline):
    ir = np.zeros((H, W), np.uint8)
    ir[-6:, -6:] = 255  # hot corner: the 32x64 box sticks out of the frame
    r = pipeline.process(ir, np.zeros((H, W, 3), np.uint8))
    assert len(r.detections) >= 1
    assert (r.detections.xyxy[:, [0, 2]] <= W).all() and (r.detections.xyxy[:, [1, 3]] <= H).all()


def test_mismatched_frames_are_an_input_error(pipeline):
    with pytest.raises(InputError, match="register the IR"):
        pipeline.process(np.zeros((H, W), np.uint8), np.zeros((H + 2, W, 3), np.uint8))


def test_bad_pipeline_config_names_the_field():
    with pytest.raises(ConfigError, match="seg_upsample"):
        PipelineConfig(seg_upsample="cubic")


def test_student_on_an_msrs_pair_runs_identically_on_eager_and_onnxruntime(tmp_path):
    """The shipped architecture through two backends gives the same images and boxes."""
    from ivif_ros.datasets.paired import read_image
    from ivif_ros.models.student import build_student

    root = Path(os.environ.get("IVIF_DATA", "/nonexistent"), "msrs", "test")
    if not root.exists():
        pytest.skip("needs the MSRS test folder under $IVIF_DATA (the data folder)")
    ir, vis = read_image(root / "ir" / "00537D.png"), read_image(root / "vi" / "00537D.png")
    torch.manual_seed(0)
    model = build_student().eval()
    results = [
        FusionPipeline(PipelineConfig(engine=EngineConfig(backend=b, threads=1, cache_dir=tmp_path)), model=model).process(ir, vis)
        for b in ("torch", "onnxruntime")
    ]
    a, b = results
    assert a.fused_rgb.shape == (480, 640, 3)
    assert np.abs(a.fused_rgb.astype(int) - b.fused_rgb).max() <= 1
    assert (a.mask == b.mask).mean() > 0.999
    assert len(a.detections) == len(b.detections)
