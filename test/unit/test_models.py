"""Model I/O contract (docs/contracts.md), output ranges, MAC budget and ONNX export."""

import pytest
import torch

from ivif_ros.models import build_student, build_teacher
from ivif_ros.models.complexity import count_macs

torch.set_num_threads(1)


# The shipped student and its optional parts (a fusion-context encoder, a 1/16 stage).
STUDENT_VARIANTS = {
    "student": {},
    "student_fusion_context": {"fusion_context": 16},
    "student_blocks16": {"blocks16": 2},
    "student_blocks16_fusion_context": {"blocks16": 2, "fusion_context": 16},
}


@pytest.fixture(scope="module", params=[*STUDENT_VARIANTS, "teacher"])
def model(request):
    torch.manual_seed(0)
    if request.param == "teacher":
        return build_teacher({"num_seg": 5, "num_det": 2}).eval()
    return build_student({"num_seg": 5, **STUDENT_VARIANTS[request.param]}).eval()


def test_outputs_follow_the_contract(model):
    ir, vis = torch.rand(2, 1, 64, 96), torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        fused, seg = model(ir, vis)  # no detection outputs: the detector runs on the fused image
    assert fused.shape == (2, 1, 64, 96)
    assert seg.shape == (2, 5, 16, 24)
    assert fused.min() >= 0 and fused.max() <= 1


def test_untrained_fusion_starts_at_soft_pixel_max(model):
    """The fusion prior: before training the fused image is the (soft) maximum selection."""
    ir, vis = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        fused = model(ir, vis)[0]
    hard_max = torch.maximum(ir, vis)
    assert (fused - hard_max).abs().mean() < 0.01
    assert (fused - (ir + vis) / 2).abs().mean() > 0.1


def test_train_mode_gradients_reach_every_parameter_group(model):
    model.train()
    out = model.forward_features(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64))
    loss = sum(v.float().mean() for v in out.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.zero_grad(set_to_none=True)
    model.eval()


def test_mac_counter_counts_convs_exactly():
    net = torch.nn.Conv2d(2, 4, 3, padding=1)

    class TwoInput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = net

        def forward(self, ir, vis):
            return self.conv(torch.cat([ir, vis], 1))

    assert count_macs(TwoInput(), 8, 10) == 8 * 10 * 4 * 2 * 9


@pytest.mark.parametrize("variant", STUDENT_VARIANTS)
def test_student_meets_its_compute_budget_and_is_a_tenth_of_the_teacher(variant):
    student = count_macs(build_student(STUDENT_VARIANTS[variant]), 480, 640)
    teacher = count_macs(build_teacher(), 480, 640)
    assert student * 10 <= teacher
    if variant == "student":  # the shipped network keeps its own, tighter budget
        assert student <= 0.8e9


def test_a_1_16_stage_changes_only_the_trunk_and_is_off_by_default():
    """``blocks16`` adds a stage beside the trunk (the shipped student has none); a 64 x 64 input
    gives 4 x 4 cells at 1/16, so the stage must also work where the map is tiny."""
    plain, deep = build_student(), build_student({"blocks16": 2})
    assert not hasattr(plain, "stage16")
    extra = {k.split(".")[0] for k in deep.state_dict()} - {k.split(".")[0] for k in plain.state_dict()}
    assert extra == {"stage16", "lateral16"}
    with torch.no_grad():
        out = deep.eval()(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64))
    assert all(torch.isfinite(t).all() for t in out)


@pytest.mark.parametrize("variant", STUDENT_VARIANTS)
def test_student_exports_to_onnx(tmp_path, variant):
    onnx = pytest.importorskip("onnx")
    student = build_student(STUDENT_VARIANTS[variant]).eval()
    path = tmp_path / "student.onnx"
    ir = torch.rand(1, 1, 64, 64)
    torch.onnx.export(
        student,
        (ir, ir),
        str(path),
        opset_version=17,
        dynamo=False,
        input_names=["ir", "vis"],
        output_names=["fused", "seg_logits"],
    )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {
        "Conv",
        "Relu",
        "Add",
        "Mul",
        "Sub",
        "Sigmoid",
        "Concat",
        "Resize",
        "Clip",
        "Slice",
        "GlobalAveragePool",
        "Constant",
        "Identity",
        "Shape",
        "Gather",
        "Cast",
        "Unsqueeze",
        "Max",
        "Min",
    }, ops


def test_scale_gradient_is_identity_forward_and_scales_the_backward_pass():
    from ivif_ros.models.blocks import scale_gradient

    for scale in (0.0, 0.25, 1.0):
        x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = scale_gradient(x, scale)
        assert torch.equal(y, x)
        if scale == 0.0:  # a plain detach: nothing flows back
            assert not y.requires_grad
            continue
        (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
        assert torch.allclose(x.grad, scale * torch.tensor([1.0, 2.0, 3.0]))


def test_fusion_grad_scale_zero_keeps_fusion_losses_out_of_the_trunk_only():
    """At ``fusion_grad_scale`` 0 a loss on the fused image trains the fusion maps and the
    full-resolution detail head but leaves the shared trunk alone; the semantic loss still
    reaches the trunk, and in eval mode the network computes exactly what it does at scale 1."""
    torch.manual_seed(0)
    net = build_student({"fusion_grad_scale": 0.0}).train()
    ir, vis = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
    out = net.forward_features(ir, vis)
    (out["fused"] - vis).abs().mean().backward(retain_graph=True)
    grads = {n: p.grad for n, p in net.named_parameters()}
    assert all(grads[n] is None for n in grads if n.startswith(("stem.", "stage4.", "stage8.", "merge.")))
    assert grads["fusion_maps.weight"].abs().sum() > 0
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith("detail."))
    net.zero_grad(set_to_none=True)
    out["seg_logits"].mean().backward()
    assert net.stem[0][0].weight.grad.abs().sum() > 0

    full = build_student({"fusion_grad_scale": 1.0})
    full.load_state_dict(net.state_dict())
    net.eval(), full.eval()
    with torch.no_grad():
        for a, b in zip(net(ir, vis), full(ir, vis)):
            assert torch.equal(a, b)
