"""Losses: known values on known inputs, and gradients that reach inputs and parameters."""

import pytest
import torch

from ivif_ros.training import losses as L
from ivif_ros.training.clip import CLIPConfig, CLIPModel, LanguageDrivenLoss, load_clip, save_clip

torch.set_num_threads(1)


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    ir = torch.rand(2, 1, 32, 32, generator=g)
    vis = torch.rand(2, 1, 32, 32, generator=g)
    return ir, vis


def _grad_of(loss_fn, x):
    x = x.clone().requires_grad_(True)
    loss_fn(x).backward()
    return x.grad


def test_intensity_loss_is_zero_at_pixel_max_and_positive_elsewhere(pair):
    ir, vis = pair
    assert L.intensity_loss(torch.maximum(ir, vis), ir, vis).item() == 0.0
    assert L.intensity_loss((ir + vis) / 2, ir, vis).item() > 0.05


def test_salient_loss_only_counts_the_mask(pair):
    ir, vis = pair
    mask = torch.zeros_like(ir)
    mask[..., :8, :8] = 1
    fused = torch.maximum(ir, vis)
    fused_outside = fused.clone()
    fused_outside[..., 16:, 16:] = 0  # change only outside the mask
    assert L.salient_intensity_loss(fused_outside, ir, vis, mask).item() == 0.0
    fused_inside = fused.clone()
    fused_inside[..., :8, :8] += 0.1
    assert L.salient_intensity_loss(fused_inside, ir, vis, mask).item() == pytest.approx(0.1, abs=1e-5)


def test_gradient_loss_zero_when_fused_has_the_stronger_edges():
    ir = torch.zeros(1, 1, 16, 16)
    ir[..., 8:] = 1.0  # strong vertical edge
    vis = ir * 0.2  # the same edge, weaker
    assert L.gradient_loss(ir, ir, vis).item() == pytest.approx(0.0, abs=1e-7)
    assert L.gradient_loss(vis, ir, vis).item() > 0.1


def test_ssim_identical_is_one_and_loss_of_identical_sources_is_zero(pair):
    ir, _ = pair
    assert L.ssim(ir, ir).item() == pytest.approx(1.0, abs=1e-5)
    assert L.ssim_loss(ir, ir, ir).item() == pytest.approx(0.0, abs=1e-5)
    assert L.ssim(ir, torch.rand_like(ir)).item() < 0.2


def test_semantic_loss_small_for_confident_correct_logits():
    target = torch.randint(0, 4, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    good = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float() * 20
    assert L.semantic_loss(good, target).item() < 0.05
    assert L.semantic_loss(-good, target).item() > 5


def test_focal_loss_of_perfect_heatmap_is_small():
    gt = torch.zeros(1, 3, 16, 16)
    gt[0, 1, 5, 7] = 1.0
    gt[0, 1, 5, 8] = 0.6
    perfect = gt.clamp(1e-4, 1 - 1e-4)
    wrong = torch.full_like(gt, 0.5)
    # Not exactly 0: CenterNet still penalises a 0.6 prediction on a 0.6 Gaussian shoulder
    # by log(0.4) * 0.6^2 * 0.4^4 = 0.0084.
    assert L.heatmap_focal_loss(perfect, gt).item() == pytest.approx(0.0084, abs=5e-4)
    assert L.heatmap_focal_loss(wrong, gt).item() > 10 * L.heatmap_focal_loss(perfect, gt).item()


def test_box_regression_only_at_centres():
    target = torch.zeros(1, 4, 8, 8)
    centre = torch.zeros(1, 1, 8, 8)
    centre[0, 0, 3, 3] = 1
    target[0, :, 3, 3] = torch.tensor([0.5, 0.5, 1.0, 2.0])
    pred = target.clone()
    pred[0, :, 0, 0] = 9.0  # off-centre garbage is ignored
    assert L.box_regression_loss(pred, target, centre).item() == 0.0
    pred[0, 2, 3, 3] += 0.4
    assert L.box_regression_loss(pred, target, centre).item() == pytest.approx(0.1)


def test_kl_distillation_zero_for_identical_logits_and_positive_otherwise():
    logits = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    assert L.distilled_semantic_loss(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    assert L.distilled_semantic_loss(logits, logits.flip(1)).item() > 0.01


def test_output_and_feature_distillation(pair):
    ir, vis = pair
    assert L.output_distillation_loss(ir, ir).item() == 0.0
    fd = L.FeatureDistillation(8, 16)
    s, t = torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4)
    loss = fd(s, t)
    loss.backward()
    assert torch.isfinite(loss) and fd.adapter.weight.grad.abs().sum() > 0


def test_gradient_distillation_known_values():
    """Zero for identical images, blind to a constant offset (intensity is not its business),
    and for a step a known value: the Sobel x response of a vertical step of height h is 4h on
    the two columns beside it and 0 elsewhere."""
    ramp = torch.linspace(0, 1, 16).repeat(16, 1)[None, None]
    assert L.gradient_distillation_loss(ramp, ramp).item() == 0.0
    assert L.gradient_distillation_loss(ramp + 0.2, ramp).item() == pytest.approx(0.0, abs=1e-6)
    flat, step = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 0.5
    # x response 2.0 on 2 of 8 columns (16 of 64 pixels), y response 0: mean over 2*64 values
    assert L.gradient_distillation_loss(flat, step).item() == pytest.approx(2.0 * 16 / 128)


def test_edge_preservation_loss_matches_the_qabf_metric():
    """The differentiable Qabf equals the metric (ivif_ros.metrics.fusion.qabf) to 2e-3 on
    structured images, for a perfect, a blended and a blurred fusion."""
    import cv2
    import numpy as np

    from ivif_ros.metrics.fusion import qabf

    rng = np.random.default_rng(1)
    ir = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)), (0, 0), 2).round()
    ir[10:30, 20:30] = 230  # a warm target with sharp edges
    vis = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)), (0, 0), 1).round()
    t = lambda x: torch.tensor(x / 255.0, dtype=torch.float32)[None, None]  # noqa: E731
    for fused in (np.maximum(ir, vis), ((ir + vis) / 2).round(), cv2.blur(np.maximum(ir, vis), (3, 3)).round()):
        loss = L.edge_preservation_loss(t(fused), t(ir), t(vis))
        assert abs((1 - loss.item()) - qabf(fused, ir, vis)) < 2e-3
    # A source fused with itself: ratio 1 and angle 1 at every edge pixel, so Qabf is the
    # product of the two sigmoids at their maximum, 0.99885 * 0.97592.
    q_max = 0.9994 / (1 + np.exp(-15 * 0.5)) * 0.9879 / (1 + np.exp(-22 * 0.2))
    assert L.edge_preservation_loss(t(ir), t(ir), t(ir)).item() == pytest.approx(1 - q_max, abs=1e-4)


def test_metric_ssim_loss_matches_the_reference_ssim_metric():
    """metric_ssim follows the CDDFuse SSIM (ivif_ros.metrics.fusion.ssim, which sums the two
    sources) on structured 8-bit images: the constant floor moves it by < 4e-3 here. A flat,
    noise-free region fused with a faint ripple is where the reference's tiny constants bite:
    the Gaussian SSIM loss hardly notices, metric_ssim does."""
    import cv2
    import numpy as np

    from ivif_ros.metrics.fusion import ssim

    rng = np.random.default_rng(2)
    ir = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)), (0, 0), 2).round()
    ir[10:30, 20:30] = 230
    vis = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)), (0, 0), 1).round()
    t = lambda x: torch.tensor(x / 255.0, dtype=torch.float32)[None, None]  # noqa: E731
    for fused in (np.maximum(ir, vis), ((ir + vis) / 2).round(), cv2.blur(np.maximum(ir, vis), (3, 3)).round()):
        ours = L.metric_ssim(t(fused), t(ir)) + L.metric_ssim(t(fused), t(vis))
        assert abs(ours.item() - ssim(fused, ir, vis)) < 4e-3
    assert L.metric_ssim_loss(t(ir), t(ir), t(ir)).item() == pytest.approx(0.0, abs=1e-6)

    flat = torch.full((1, 1, 32, 32), 0.1)
    ripple = flat + 0.01 * torch.sin(torch.arange(32.0) * 1.3)  # +-2.5 grey levels
    assert L.ssim(ripple, flat).item() > 0.9  # the training SSIM's constants hide it
    assert L.metric_ssim(ripple, flat).item() < 0.1  # the metric's do not


@pytest.mark.parametrize(
    "name", ["intensity", "gradient", "ssim", "ssim_metric", "qabf", "guidance", "distill_output", "distill_gradient"]
)
def test_fusion_losses_give_finite_nonzero_gradients(pair, name):
    ir, vis = pair
    fns = {
        "intensity": lambda f: L.intensity_loss(f, ir, vis),
        "gradient": lambda f: L.gradient_loss(f, ir, vis),
        "ssim": lambda f: L.ssim_loss(f, ir, vis),
        "ssim_metric": lambda f: L.metric_ssim_loss(f, ir, vis),
        "qabf": lambda f: L.edge_preservation_loss(f, ir, vis),
        "guidance": lambda f: L.guidance_loss(f, vis),
        "distill_output": lambda f: L.output_distillation_loss(f, vis),
        "distill_gradient": lambda f: L.gradient_distillation_loss(f, vis),
    }
    g = _grad_of(fns[name], (ir + vis) / 2)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_task_losses_give_gradients():
    logits = torch.randn(1, 4, 8, 8, requires_grad=True)
    heat = torch.rand(1, 3, 8, 8, requires_grad=True)
    (
        L.semantic_loss(logits, torch.randint(0, 4, (1, 8, 8)))
        + L.heatmap_focal_loss(heat, torch.rand(1, 3, 8, 8) * 0.9)
        + L.distilled_semantic_loss(logits, torch.randn(1, 4, 8, 8))
    ).backward()
    for t in (logits, heat):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_language_driven_loss_with_a_tiny_random_clip_checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = CLIPConfig(
        image_size=32,
        patch=8,
        vision_width=16,
        vision_layers=1,
        text_width=16,
        text_layers=1,
        heads=2,
        context=24,
        embed_dim=8,
    )
    path = tmp_path / "tiny_clip.safetensors"
    save_clip(CLIPModel(cfg), path)
    clip = load_clip(path)
    loss_fn = LanguageDrivenLoss(clip, ["bright target"], ["blurry", "dark"])
    fused = torch.rand(2, 1, 40, 40, requires_grad=True)
    loss = loss_fn(fused)
    loss.backward()
    # -log p(pos) with 1 positive of 3 prompts: positive, and below log(3) only if pos is preferred.
    assert loss.item() > 0
    assert torch.isfinite(fused.grad).all() and fused.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())  # CLIP stays frozen


def test_contrast_loss_sees_haze_only_where_the_visible_image_is_well_exposed():
    """0 for the visible image itself (and for more contrast), about the lost share for a hazy
    copy; dark or saturated visible regions do not count; gradients reach the fused image."""
    g = torch.Generator().manual_seed(0)
    vis = (0.5 + 0.2 * (torch.rand(1, 1, 48, 48, generator=g) - 0.5)).clamp(0, 1)
    assert float(L.contrast_loss(vis, vis)) == pytest.approx(0.0, abs=1e-4)
    assert float(L.contrast_loss(0.5 + 1.5 * (vis - 0.5), vis)) == pytest.approx(0.0, abs=1e-4)
    hazy = (0.6 * vis + 0.4 * 0.8).requires_grad_(True)
    loss = L.contrast_loss(hazy, vis)
    assert float(loss.detach()) == pytest.approx(0.4, abs=0.03)
    loss.backward()
    assert hazy.grad is not None and hazy.grad.abs().sum() > 0
    dark = vis * 0.1  # local means below 0.15: nothing is scored
    assert float(L.contrast_loss(torch.zeros_like(dark), dark)) == pytest.approx(0.0, abs=1e-6)
