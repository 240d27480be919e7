"""FusionPipeline end to end: transparent stand-in models check the data path exactly; the student checks it runs."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
from ivif_ros.engines import EngineConfig
from ivif_ros.errors import ConfigError, InputError

DATA = Path(os.environ.get("IVIF_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
#: The COCO detector (80 classes): the stand-in detectors below have its 85-channel output.
COCO = "detector_coco"
H, W = 250, 333  # deliberately not multiples of 32: exercises padding and cropping
BLOB = (120, 220)  # (row, col) of the hot object in the IR frame
BOX_W, BOX_H = 32.0, 64.0


class StandIn(torch.nn.Module):
    """Follows the fusion model I/O contract with outputs a test can predict.

    fused = vis; semantic class 1 where the IR (averaged over 4x4) is hot.
    """

    def forward(self, ir, vis):
        ir4 = F.avg_pool2d(ir, 4)
        seg = torch.cat([torch.zeros_like(ir4), 10 * (ir4 - 0.5), torch.zeros_like(ir4), torch.zeros_like(ir4)], 1)
        return vis, seg


class StandInDetector(torch.nn.Module):
    """A detector with FastestDet's I/O (BGR image in, 85-channel stride-16 map out) a test can predict.

    Objectness is 1 in the one cell where the *blue* input channel (index 0 of BGR), averaged
    over 16x16, peaks, else 0; the class is COCO ``person`` (0), or ``truck`` (7) with
    ``truck=True``; the box is centred in its cell (tanh offset 0.5) and BOX_W x BOX_H of
    the W x H frame (sigmoid sizes).
    """

    input_names, input_channels, output_names = ("image",), (3,), ("pred",)

    def __init__(self, truck: bool = False):
        super().__init__()
        self.cls = 7 if truck else 0

    def forward(self, x):
        blue = F.avg_pool2d(x[:, :1], 16)
        obj = (blue >= blue.amax(dim=(2, 3), keepdim=True)).float()
        n, _, h, w = obj.shape
        offset = torch.full((n, 2, h, w), float(np.arctanh(0.5)))
        size = torch.tensor([np.log(BOX_W / (W - BOX_W)), np.log(BOX_H / (H - BOX_H))], dtype=torch.float32)
        cls = torch.zeros(n, 80, h, w)
        cls[:, self.cls] = 1.0
        return torch.cat([obj, offset, size.view(1, 2, 1, 1).expand(n, 2, h, w), cls], 1)


def hot_blob_ir(dtype=np.uint8):
    yy, xx = np.mgrid[0:H, 0:W]
    blob = np.exp(-((yy - BLOB[0]) ** 2 + (xx - BLOB[1]) ** 2) / (2 * 12.0**2))
    peak = np.iinfo(dtype).max
    return np.round(peak * blob).astype(dtype)


@pytest.fixture(scope="module")
def pipeline():
    torch.set_num_threads(1)
    return FusionPipeline(
        PipelineConfig(detector=COCO, score_threshold=0.3),
        engine=_torch_engine(StandIn()),
        detector_engine=_torch_engine(StandInDetector()),
    )


def _torch_engine(model):
    from ivif_ros.engines import build_backend

    return build_backend("torch", model, EngineConfig(backend="torch"), "stand-in")


def blue_blob_vis(rng_seed=0):
    """Dim RGB noise with the hot blob added to the blue channel only (the detector reads BGR)."""
    vis = np.random.default_rng(rng_seed).integers(0, 60, (H, W, 3), dtype=np.uint8)
    vis[..., 2] = np.maximum(vis[..., 2], hot_blob_ir())
    return vis


def test_rgb_frame_gives_fused_colour_mask_overlay_and_one_box(pipeline):
    vis = blue_blob_vis()
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

    # the detector's box: one person centred on the blob's 352/22-cell
    assert len(r.detections) == 1 and r.detections.class_ids.tolist() == [0]
    assert pipeline.class_names == ("person", "bicycle", "car")
    x0, y0, x1, y1 = r.detections.xyxy[0]
    assert (x1 - x0, y1 - y0) == pytest.approx((BOX_W, BOX_H), rel=1e-4)
    cell_w, cell_h = W / 22, H / 22
    assert abs((x0 + x1) / 2 - BLOB[1]) <= cell_w / 2 + 1 and abs((y0 + y1) / 2 - BLOB[0]) <= cell_h / 2 + 1
    assert set(r.timings) == {"pre_ms", "infer_ms", "post_ms", "detect_ms", "total_ms"}
    assert r.timings["total_ms"] >= r.timings["infer_ms"] > 0 and r.timings["detect_ms"] > 0
    assert r.timings["total_ms"] >= r.timings["pre_ms"] + r.timings["infer_ms"] + r.timings["post_ms"]


def test_the_detector_sees_rgb_as_bgr(pipeline):
    """The same blob in the red channel only: the stand-in reads channel 0 of its input, blue, and finds
    its peak elsewhere (in the noise), so the box moves away from the blob."""
    vis = np.random.default_rng(0).integers(0, 60, (H, W, 3), dtype=np.uint8)
    vis[..., 0] = np.maximum(vis[..., 0], hot_blob_ir())
    r = pipeline.process(hot_blob_ir(), vis)
    x0, y0, x1, y1 = r.detections.xyxy[0]
    assert abs((x0 + x1) / 2 - BLOB[1]) > W / 22 or abs((y0 + y1) / 2 - BLOB[0]) > H / 22


def test_class_map_folds_detector_classes_into_published_ones():
    cfg = PipelineConfig(detector=COCO, score_threshold=0.3, class_map=["person", "vehicle=car,truck,bus"])
    folding = FusionPipeline(cfg, engine=_torch_engine(StandIn()), detector_engine=_torch_engine(StandInDetector(True)))
    r = folding.process(hot_blob_ir(), blue_blob_vis())
    assert folding.class_names == ("person", "vehicle") and r.detections.class_ids.tolist() == [1]
    folding.config.class_map = ["person", "car"]  # a truck is no car: nothing to publish
    assert len(folding.process(hot_blob_ir(), blue_blob_vis()).detections) == 0
    assert folding.class_names == ("person", "car")


def test_no_detector_publishes_no_boxes():
    quiet = FusionPipeline(PipelineConfig(detector=""), engine=_torch_engine(StandIn()))
    r = quiet.process(hot_blob_ir(), blue_blob_vis())
    assert quiet.detector_engine is None and len(r.detections) == 0 and quiet.class_names == ()


def test_grey_uint16_frames_are_accepted(pipeline):
    vis = np.random.default_rng(1).integers(0, 65536, (H, W), dtype=np.uint16)
    r = pipeline.process(hot_blob_ir(np.uint16), vis)
    expected = np.round(vis / 257.0)
    assert np.abs(r.fused_y.astype(int) - expected).max() <= 1
    assert (r.fused_rgb == r.fused_y[:, :, None]).all()
    assert len(pipeline.process(hot_blob_ir(np.uint16), hot_blob_ir(np.uint16)).detections) == 1


def test_boxes_are_clipped_to_the_frame(pipeline):
    vis = np.zeros((H, W, 3), np.uint8)
    vis[-6:, -6:, 2] = 255  # bright blue corner: the 32x64 box sticks out of the frame
    r = pipeline.process(np.zeros((H, W), np.uint8), vis)
    assert len(r.detections) >= 1
    assert (r.detections.xyxy[:, [0, 2]] <= W).all() and (r.detections.xyxy[:, [1, 3]] <= H).all()


def test_mismatched_frames_are_an_input_error(pipeline):
    with pytest.raises(InputError, match="register the IR"):
        pipeline.process(np.zeros((H, W), np.uint8), np.zeros((H + 2, W, 3), np.uint8))


def test_bad_pipeline_config_names_the_field():
    with pytest.raises(ConfigError, match="seg_upsample"):
        PipelineConfig(seg_upsample="cubic")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"detector_size": [350, 352]}, r"pipeline.detector_size.*multiples of 32"),
        ({"detector_size": [0, 352]}, r"pipeline.detector_size.*\[0, 0\]"),
        ({"class_map": ["person", "lorry"]}, r"pipeline.class_map: 'lorry' .*not a class of the detector"),
        ({"class_map": ["car=car,truck", "truck"]}, r"pipeline.class_map: detector class 'truck' is mapped to both"),
        ({"class_map": []}, r"pipeline.class_map: empty"),
        ({"detector": "no_such_detector"}, r"pipeline.detector: cannot read the class names of 'no_such_detector'"),
    ],
)
def test_bad_detector_settings_are_config_errors_naming_the_field(settings, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig(**{"detector": COCO, **settings})


def test_detector_settings_through_the_config_schema():
    from ivif_ros.core.config import FusionConfig

    cfg = FusionConfig.from_flat(
        {
            "pipeline.detector": COCO,
            "pipeline.class_map": ["person", "car=car,truck,bus"],
            "pipeline.detector_size": [640, 480],
        }
    )
    assert cfg.pipeline.detector_classes().names == ("person", "car")
    assert cfg.pipeline.detector_hw((480, 640)) == (480, 640)
    assert FusionConfig.from_flat({"pipeline.detector_size": [0, 0]}).pipeline.detector_hw((250, 333)) == (256, 352)
    with pytest.raises(ConfigError, match="pipeline.detector_size.*2 values"):
        FusionConfig.from_flat({"pipeline.detector_size": [352]})


def cpu_backends() -> list[str]:
    import importlib.util

    return ["torch"] + [b for b in ("onnxruntime", "openvino") if importlib.util.find_spec(b) is not None]


def test_shipped_student_and_detector_agree_on_every_cpu_engine(tmp_path):
    """The shipped student + detector on an MSRS pair: the same fused image and the same people,
    bicycles and cars on every CPU backend (fp32)."""
    from ivif_ros.datasets.paired import read_image

    root = DATA / "msrs" / "test"
    if not root.exists():
        pytest.skip(
            f"development data {root} is absent: put the shared data beside the repository as ../shared "
            "or set IVIF_DATA"
        )
    ir, vis = read_image(root / "ir" / "00537D.png"), read_image(root / "vi" / "00537D.png")
    results = {}
    for backend in cpu_backends():
        cfg = PipelineConfig(
            score_threshold=0.2, engine=EngineConfig(backend=backend, precision="fp32", threads=1, cache_dir=tmp_path)
        )
        pipeline = FusionPipeline(cfg)
        assert pipeline.engine.name == pipeline.detector_engine.name == backend
        results[backend] = pipeline.process(ir, vis)
    reference = results.pop("torch")
    assert reference.fused_rgb.shape == (480, 640, 3)
    assert len(reference.detections) >= 3 and {0, 2} <= set(reference.detections.class_ids.tolist())
    for backend, r in results.items():
        assert np.abs(r.fused_rgb.astype(int) - reference.fused_rgb).max() <= 1, backend
        assert (r.mask == reference.mask).mean() > 0.999, backend
        a, b = reference.detections, r.detections
        assert len(a) == len(b) and (a.class_ids == b.class_ids).all(), backend
        assert np.abs(a.xyxy - b.xyxy).max() < 0.5 and np.abs(a.scores - b.scores).max() < 1e-3, backend


def test_a_fine_tuned_three_class_detector_is_resolved_by_its_sidecar_names(tmp_path):
    """A detector saved with classes person/bicycle/car (as ``ivif train detector`` writes it) runs with
    the default class map; a map naming COCO classes it does not have is refused, naming them."""
    from ivif_ros.models.fastestdet import build_fastestdet
    from ivif_ros.weights import save_model

    torch.manual_seed(0)
    path = save_model(
        build_fastestdet(num_classes=3), tmp_path / "detector", {"detection_classes": ["person", "bicycle", "car"]}
    )
    cfg = PipelineConfig(
        detector=str(path),
        score_threshold=0.0,
        top_k=5,
        engine=EngineConfig(backend="torch", threads=1, cache_dir=tmp_path),
    )
    fine_tuned = FusionPipeline(cfg, engine=_torch_engine(StandIn()))
    r = fine_tuned.process(hot_blob_ir(), blue_blob_vis())
    assert fine_tuned.class_names == ("person", "bicycle", "car")
    assert 0 < len(r.detections) <= 5 and set(r.detections.class_ids.tolist()) <= {0, 1, 2}
    with pytest.raises(ConfigError, match="'truck' .*not a class of the detector.*person, bicycle, car"):
        PipelineConfig(detector=str(path), class_map=["person", "car=car,truck"])
