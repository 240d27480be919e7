"""Pre/post-processing: dtype handling, BT.601 agreement with core.color, padding, masks, NMS."""

import numpy as np
import pytest

from ivif_ros.core import color
from ivif_ros.core import postprocess as post
from ivif_ros.core.preprocess import pad_to_multiple, preprocess, to_unit_float
from ivif_ros.errors import InputError

rng = np.random.default_rng(0)


def test_to_unit_float_scales_each_dtype_to_0_1():
    assert to_unit_float(np.array([[0, 255]], np.uint8), "x").tolist() == [[0.0, 1.0]]
    np.testing.assert_allclose(
        to_unit_float(np.array([[0, 65535, 32768]], np.uint16), "x"), [[0, 1, 32768 / 65535]], atol=1e-7
    )
    assert to_unit_float(np.array([[-0.5, 0.25, 2.0]], np.float64), "x").tolist() == [[0.0, 0.25, 1.0]]
    assert to_unit_float(np.zeros((2, 2), np.uint8), "x").dtype == np.float32
    with pytest.raises(InputError, match="unsupported pixel type int32"):
        to_unit_float(np.zeros((2, 2), np.int32), "x")


def test_luma_and_chroma_match_core_color():
    vis = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    out = preprocess(rng.integers(0, 256, (64, 96), dtype=np.uint8), vis)
    y, cb, cr = color.rgb_to_ycbcr(vis.astype(np.float32) / 255)
    # 8-bit input: the luma is rounded to whole grey levels, the 8-bit Y that training and the
    # metrics read (rgb_to_y_u8). Float32 vs float64 arithmetic may round an exact .5 tie the
    # other way: a handful of pixels in uniform noise, 2 in 9.2 M on MSRS.
    levels = out.vis_y[0, 0] * 255
    np.testing.assert_allclose(levels, np.rint(levels), atol=1e-4)
    diff = np.abs(np.rint(levels) - color.rgb_to_y_u8(vis))
    assert diff.max() <= 1 and diff.mean() < 1e-3
    np.testing.assert_allclose(out.vis_y[0, 0], y, atol=0.5 / 255 + 1e-6)
    # OpenCV rounds its chroma gains to 4 digits: <= 3e-4 (0.08 grey levels), far below 8-bit quantisation.
    np.testing.assert_allclose(out.cb, cb, atol=4e-4)
    np.testing.assert_allclose(out.cr, cr, atol=4e-4)


def test_higher_depth_visible_luma_is_not_quantised():
    vis = rng.integers(0, 65536, (32, 64, 3), dtype=np.uint16)
    out = preprocess(np.zeros((32, 64), np.uint8), vis)
    y, _, _ = color.rgb_to_ycbcr(vis.astype(np.float32) / 65535)
    np.testing.assert_allclose(out.vis_y[0, 0], y, atol=1e-5)


def test_padding_replicates_edges_to_multiples_of_32_and_keeps_frame_size():
    ir = rng.integers(0, 256, (250, 333), dtype=np.uint8)
    out = preprocess(ir, ir)  # grey visible
    assert out.ir.shape == out.vis_y.shape == (1, 1, 256, 352)
    assert (out.height, out.width) == (250, 333) and out.cb is None
    padded = out.ir[0, 0]
    np.testing.assert_allclose(padded[:250, :333], ir / 255.0, atol=1e-7)
    np.testing.assert_array_equal(padded[250:, :333], np.repeat(padded[249:250, :333], 6, axis=0))
    np.testing.assert_array_equal(padded[:, 333:], np.repeat(padded[:, 332:333], 19, axis=1))
    already = np.zeros((64, 32), np.float32)
    assert pad_to_multiple(already) is already


def test_preprocess_rejects_mismatched_or_multichannel_ir():
    with pytest.raises(InputError, match="differ in size"):
        preprocess(np.zeros((10, 10), np.uint8), np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(InputError, match="single-channel"):
        preprocess(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="HxWx3 RGB or HxW grey"):
        preprocess(np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8))


def test_colour_round_trip_restores_the_visible_image():
    vis = rng.integers(0, 256, (100, 130, 3), dtype=np.uint8)
    out = preprocess(np.zeros((100, 130), np.uint8), vis)
    y = post.fused_luma(out.vis_y, out.height, out.width)
    rgb = post.restore_rgb8(y, out.cb, out.cr)
    assert rgb.dtype == np.uint8 and rgb.shape == vis.shape
    assert np.abs(rgb.astype(int) - vis).max() <= 1
    grey = post.restore_rgb8(y, None, None)
    assert grey.shape == vis.shape and (grey[..., 0] == grey[..., 2]).all()


def test_restored_rgb_keeps_the_fused_luma_and_the_visible_chroma():
    """A consumer that takes the grey of the published rgb8 image gets the fused luma back."""
    import cv2

    from ivif_ros.core.color import rgb_to_y_u8, rgb_to_ycbcr

    vis = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), (0, 0), 2)
    out = preprocess(np.zeros((120, 160), np.uint8), vis)
    y = np.clip(post.fused_luma(out.vis_y, out.height, out.width) * 0.7 + 0.3 * rng.random((120, 160)), 0, 1)
    rgb = post.restore_rgb8(y.astype(np.float32), out.cb, out.cr)
    y8 = post.to_uint8(y.astype(np.float32))
    saturated = (rgb == 0).any(-1) | (rgb == 255).any(-1)
    assert (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) == y8)[~saturated].all()
    assert np.mean(rgb_to_y_u8(rgb) != y8) < 1e-3
    _, cb, cr = rgb_to_ycbcr(rgb)
    _, cb0, cr0 = rgb_to_ycbcr(vis)
    # chroma as close as channel rounding allows (plain rounding of each channel gives the same)
    assert np.abs(cb - cb0)[~saturated].mean() < 0.6 and np.abs(cr - cr0)[~saturated].mean() < 0.6


def test_to_uint8_rounds_and_saturates():
    assert post.to_uint8(np.array([[-0.2, 0.5, 1.7, 0.999]], np.float32)).tolist() == [[0, 128, 255, 255]]


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
def test_seg_mask_is_full_resolution_and_follows_argmax(method):
    logits = np.zeros((1, 3, 16, 24), np.float32)
    logits[0, 2, :8, :12] = 5.0  # top-left quadrant class 2
    logits[0, 1, 8:, 12:] = 5.0  # bottom-right quadrant class 1
    mask = post.seg_mask(logits, 60, 90, method)
    assert mask.shape == (60, 90) and mask.dtype == np.uint8
    assert (mask[:28, :44] == 2).all() and (mask[36:, 52:] == 1).all() and (mask[:28, 52:] == 0).all()


def test_colorize_and_overlay_leave_background_untouched():
    palette = post.palette_for(4)
    mask = np.array([[0, 1], [3, 9]], np.uint8)
    colours = post.colorize(mask, palette)
    np.testing.assert_array_equal(colours[0, 1], palette[1])
    np.testing.assert_array_equal(colours[1, 1], palette[3])  # out-of-range id -> last colour
    rgb = np.full((2, 2, 3), 100, np.uint8)
    out = post.overlay(rgb, mask, colours, alpha=0.5)
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(out[0, 1], np.round((np.array([100, 100, 100]) + palette[1]) / 2))
    assert post.palette_for(12).shape == (12, 3) and len({tuple(c) for c in post.palette_for(12)}) == 12


def _greedy_nms_reference(xyxy, scores, thr):
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if all(post.iou_matrix(xyxy[i : i + 1], xyxy[j : j + 1])[0, 0] <= thr for j in keep):
            keep.append(i)
    return keep


def test_nms_matches_a_plain_greedy_reference():
    xy = rng.uniform(0, 200, (60, 2))
    wh = rng.uniform(10, 60, (60, 2))
    xyxy = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.random(60).astype(np.float32)
    assert post.nms(xyxy, scores, 0.4).tolist() == _greedy_nms_reference(xyxy, scores, 0.4)


def test_classwise_nms_never_suppresses_across_classes():
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], np.float32)
    dets = post.Detections(xyxy, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 0, 1]))
    kept = post.classwise_nms(dets, 0.5)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.7])
    assert kept.class_ids.tolist() == [0, 1]


def test_clip_boxes_drops_boxes_in_the_padding():
    dets = post.Detections(
        np.array([[-5, -5, 20, 20], [105, 10, 120, 30]], np.float32), np.ones(2, np.float32), np.zeros(2, np.int64)
    )
    clipped = post.clip_boxes(dets, height=50, width=100)
    assert clipped.xyxy.tolist() == [[0, 0, 20, 20]]
