"""Training smoke tests on a tiny synthetic paired dataset written by the test itself."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from ivif_ros.errors import ConfigError
from ivif_ros.training.config import load_config
from ivif_ros.training.data import CropDataset, load_samples
from ivif_ros.training.loop import train
from ivif_ros.training.targets import box_masks, boxes_centred_in, crop_boxes
from ivif_ros.weights import load_model

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """4 pairs of 64x80 images: a warm 'person' box bright in IR, textured background in VIS."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for sub in ("ir", "vi", "labels_det/ir", "labels_det/vi"):
        (root / sub).mkdir(parents=True)
    for i in range(4):
        ir = np.full((64, 80), 30, np.uint8)
        ir[20:50, 30:42] = 220
        vis = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), ir)
        cv2.imwrite(str(root / "vi" / f"{i:03d}.png"), vis)
        (root / "labels_det/ir" / f"{i:03d}.txt").write_text("0 0.45 0.546875 0.15 0.46875\n")
        (root / "labels_det/vi" / f"{i:03d}.txt").write_text("")
    return root


def write_config(tmp_path: Path, data: Path, **extra) -> Path:
    cfg = {
        "data_root": str(data),
        "data": [{"root": "."}],
        "crop": 32,
        "batch_size": 2,
        "steps": 3,
        "warmup_steps": 1,
        "log_every": 1,
        "checkpoint_every": 1,
        "guidance_every": 2,
        **extra,
    }
    path = tmp_path / "train.yaml"
    path.write_text(json.dumps(cfg))  # JSON is valid YAML
    return path


def test_crop_dataset_targets_match_the_box(tiny_data):
    ds = CropDataset(load_samples([{"root": str(tiny_data)}]), crop=64, num_det=3, length=8, seed=0)
    item = ds[0]
    assert item["ir"].shape == (1, 64, 64) and item["seg"].shape == (16, 16)
    assert item["labelled"] == 1
    assert item["heatmap"][0].max() == 1.0 and item["heatmap"][1:].max() == 0.0  # one person, no others
    assert item["centre"].sum() == 1
    assert set(item["seg"].unique().tolist()) == {0, 1}
    assert item["salient"].sum() > 0


def test_object_centred_crops_hold_a_box_centre(tiny_data):
    """With object_crop_prob 1 every crop of a labelled image holds the person's centre; with 0
    some 32-px crops of the 64x80 images miss it."""
    samples = load_samples([{"root": str(tiny_data)}])
    centred = CropDataset(samples, crop=32, num_det=3, length=24, seed=0, object_crop_prob=1.0)
    plain = CropDataset(samples, crop=32, num_det=3, length=24, seed=0)
    assert all(centred[i]["centre"].sum() == 1 for i in range(24))
    assert any(plain[i]["centre"].sum() == 0 for i in range(24))
    with pytest.raises(Exception, match="object_crop_prob"):
        CropDataset(samples, crop=32, num_det=3, length=1, object_crop_prob=1.5)


def test_visible_dropout_replaces_the_visible_crop_by_ir_and_changes_nothing_else(tiny_data):
    """About the share asked for of the crops get IR on both inputs; every other tensor (the
    crop window, flip, targets) is the same as without dropout, and on the IR-only ablation's
    input the dropout is a no-op, so the IR-only twin of a dropout recipe is the plain run."""
    samples = load_samples([{"root": str(tiny_data)}])
    plain = CropDataset(samples, crop=32, num_det=3, length=200, seed=0, object_crop_prob=0.5)
    dropped = CropDataset(samples, crop=32, num_det=3, length=200, seed=0, object_crop_prob=0.5, visible_dropout=0.5)
    replaced = 0
    for i in range(200):
        a, b = plain[i], dropped[i]
        for key in a:
            if key != "vis":
                assert torch.equal(a[key], b[key]), key
        if torch.equal(b["vis"], b["ir"]):
            replaced += 1
        else:
            assert torch.equal(a["vis"], b["vis"])
    assert 70 <= replaced <= 130  # binomial(200, 0.5): outside this range has p < 1e-4
    assert not any(torch.equal(plain[i]["vis"], plain[i]["ir"]) for i in range(200))
    ir_only = load_samples([{"root": str(tiny_data)}], input_mode="ir")
    twin = CropDataset(ir_only, crop=32, num_det=3, length=50, seed=0, visible_dropout=0.5)
    base = CropDataset(ir_only, crop=32, num_det=3, length=50, seed=0)
    assert all(torch.equal(twin[i][k], base[i][k]) for i in range(50) for k in base[i])
    with pytest.raises(ConfigError, match="visible_dropout"):
        CropDataset(samples, crop=32, num_det=3, length=1, visible_dropout=-0.1)


def test_an_object_larger_than_the_crop_is_a_whole_detection_target_and_fills_the_mask():
    """A car far wider than the crop (as a quarter of the MSRS cars are for 160-px crops): its
    centre cell is a positive whose regression target is the whole box, since the network sees
    whole images at test time, and the semantic mask marks its visible part as car. (Clipping
    gave a crop-sized box; under half visible, the car was background in both.)"""
    from ivif_ros.training.data import Sample

    ir = np.zeros((64, 256), np.uint8)
    car = Sample("car", ir, ir, np.array([[8, 0, 248, 64]], np.float32), np.array([2]))
    ds = CropDataset([car], crop=32, num_det=3, length=16, seed=0, object_crop_prob=1.0)
    for i in range(16):
        item = ds[i]
        assert item["centre"].sum() == 1 and item["heatmap"][2].max() == 1.0
        iy, ix = np.argwhere(item["centre"][0].numpy())[0]
        assert np.exp(item["box"][2:, iy, ix].numpy()) * 4 == pytest.approx([240, 64], rel=1e-5)
        assert (item["seg"] == 3).all()  # the car (class id 3) fills the whole crop
    # A box whose centre lies outside the crop is no detection target; its visible part is car.
    xyxy, cls = np.array([[-40, 0, 20, 32]], np.float32), np.array([2])
    assert len(boxes_centred_in(xyxy, cls, 0, 0, 32, 32, flip=False)[1]) == 0
    mask = box_masks(*crop_boxes(xyxy, cls, 0, 0, 32, 32, flip=False, min_visible=0.0), 32, 32, 4)
    assert (mask[:, :5] == 3).all() and (mask[:, 5:] == 0).all()


def test_dense_segmentation_labels_replace_box_masks(tmp_path, tiny_data):
    seg_dir = tiny_data / "seg"
    seg_dir.mkdir(exist_ok=True)
    for i in range(4):
        label = np.zeros((64, 80), np.uint8)
        label[:, :40] = 7  # left half: class 7 (e.g. MSRS guardrail)
        cv2.imwrite(str(seg_dir / f"{i:03d}.png"), label)
    samples = load_samples([{"root": str(tiny_data), "seg_labels": "seg"}])
    ds = CropDataset(samples, crop=64, num_det=3, length=4, seed=0)
    classes = set(torch.cat([ds[i]["seg"].unique() for i in range(4)]).tolist())
    assert classes == {0, 7}  # dense labels, not the box mask's class 1


def test_three_steps_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_data):
    cfg = load_config(write_config(tmp_path, tiny_data))
    straight = train(cfg, "student", tmp_path / "straight")
    assert train(cfg, "student", tmp_path / "split", stop_after=2) is None
    assert torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["step"] == 2
    resumed = train(cfg, "student", tmp_path / "split", resume=True)
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(ln) for ln in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in log)
    assert "guidance" in log[0] and "guidance" not in log[1]  # guidance_every: 2
    model, meta = load_model(resumed)
    assert meta["training"]["steps"] == 3 and meta["architecture"] == "student"


def test_teacher_trains_and_distils_into_a_student(tmp_path, tiny_data):
    cfg = load_config(write_config(tmp_path, tiny_data, steps=2, loss_weights={"distill_gradient": 1.0}))
    teacher_path = train(cfg, "teacher", tmp_path / "teacher")
    log = [json.loads(ln) for ln in (tmp_path / "teacher" / "log.jsonl").read_text().splitlines()]
    assert {"fidelity", "boundary", "binary", "heatmap", "box"} <= set(log[-1])
    teacher, _ = load_model(teacher_path)
    student_path = train(cfg, "student", tmp_path / "student", teacher=teacher, teacher_source=str(teacher_path))
    log = [json.loads(ln) for ln in (tmp_path / "student" / "log.jsonl").read_text().splitlines()]
    assert {"distill_output", "distill_gradient", "distill_feature", "distill_semantic"} <= set(log[-1])
    assert not {"heatmap", "box"} & set(log[-1])  # the student has no detection heads
    assert load_model(student_path)[1]["training"]["distilled_from"] == str(teacher_path)


def test_torchrun_world_size_one_uses_ddp_with_gloo(tmp_path, tiny_data):
    config = write_config(tmp_path, tiny_data, steps=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "1",
        "--master_port",
        "29613",
        "-m",
        "ivif_ros.cli",
        "train",
        "student",
        "--no-distill",
        "--config",
        str(config),
        "--seed",
        "7",
        "--out",
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "ddp" / "student.json").read_text())
    assert meta["training"]["world_size"] == 1 and meta["training"]["steps"] == 2
    assert meta["training"]["ddp_backend"] == "gloo"
    assert meta["training"]["config"]["seed"] == 7  # --seed overrides the config's seed


def test_cli_rejects_a_student_without_teacher_or_no_distill(tmp_path, tiny_data):
    proc = subprocess.run(
        [sys.executable, "-m", "ivif_ros.cli", "train", "student", "--config", str(write_config(tmp_path, tiny_data))],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--no-distill" in proc.stderr


def held_out_config(tmp_path: Path, data: Path, exclude: str) -> Path:
    path = write_config(tmp_path, data)
    cfg = json.loads(path.read_text())
    cfg["data"] = [{"root": ".", "exclude": exclude}]
    path.write_text(json.dumps(cfg))
    return path


def test_an_exclude_file_relative_to_the_config_holds_pairs_out(tmp_path, tiny_data):
    (tmp_path / "held.txt").write_text("001\n003\n")
    cfg = load_config(held_out_config(tmp_path, tiny_data, "held.txt"))
    assert [s.name for s in load_samples(cfg.resolved_sources())] == ["000", "002"]
    (tmp_path / "held.txt").write_text("001\n999\n")  # a name not in the source: refuse, not train on it
    with pytest.raises(ConfigError, match="999"):
        load_samples(load_config(held_out_config(tmp_path, tiny_data, "held.txt")).resolved_sources())
    with pytest.raises(ConfigError, match="exclude file"):
        load_config(held_out_config(tmp_path, tiny_data, "absent.txt"))


def test_a_config_with_a_base_overrides_its_keys_and_merges_loss_weights(tmp_path, tiny_data):
    (tmp_path / "held.txt").write_text("001\n")
    base = held_out_config(tmp_path, tiny_data, "held.txt")
    base.write_text(
        json.dumps({**json.loads(base.read_text()), "lr": 0.002, "loss_weights": {"qabf": 3.0, "box": 1.0}})
    )
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "recipe.yaml"
    recipe.write_text("base: ../train.yaml\nlr: 0.0005\nloss_weights: {box: 2.0}\n")
    cfg = load_config(recipe)
    assert cfg.lr == 0.0005 and cfg.steps == 3  # set here / from the base
    assert cfg.loss_weights == {"qabf": 3.0, "box": 2.0}
    # the base's held-out file is found beside the base, not beside the recipe
    assert [s.name for s in load_samples(cfg.resolved_sources())] == ["000", "002", "003"]
    grand = tmp_path / "recipes" / "grand.yaml"
    grand.write_text("base: recipe.yaml\nsteps: 7\n")
    assert (load_config(grand).steps, load_config(grand).lr) == (7, 0.0005)
    assert load_config(base).lr == 0.002  # the base itself is untouched


def test_a_bad_base_is_refused_by_name(tmp_path, tiny_data):
    write_config(tmp_path, tiny_data)
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing.yaml \(the base of .*c.yaml\) not found"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: train.yaml\nsteps_typo: 4\n")
    with pytest.raises(ConfigError, match="steps_typo"):
        load_config(tmp_path / "d.yaml")


def test_model_paths_in_a_config_are_relative_to_it_and_cli_overrides_to_the_shell(tmp_path, tiny_data):
    write_config(tmp_path, tiny_data)
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "r.yaml"
    recipe.write_text(
        "base: ../train.yaml\ninit_from: ../w/student.safetensors\nclip_checkpoint: /abs/clip.safetensors\n"
    )
    cfg = load_config(recipe)
    assert cfg.init_from == str((tmp_path / "w" / "student.safetensors").resolve())
    assert cfg.clip_checkpoint == "/abs/clip.safetensors"
    assert load_config(recipe, {"init_from": "runs/s/student.safetensors"}).init_from == "runs/s/student.safetensors"


def test_every_training_config_loads_and_names_no_data_folder():
    """The shipped training configs read alone: no base, and the data folder comes from --data
    or $IVIF_DATA, never from a path of the machine they were written on."""
    from ivif_ros.training.detector_config import load_detector_config

    for path in sorted((REPO / "config").glob("train_*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if path.name == "train_detector.yaml":
            cfg = load_detector_config(path)
            assert cfg.data and cfg.epochs > 0, path
        else:
            cfg = load_config(path)
            assert cfg.data and cfg.steps > 0 and cfg.data_root is None, path
        assert "base" not in raw and "data_root" not in raw, path


def test_the_data_folder_comes_from_data_or_ivif_data(tmp_path, monkeypatch):
    monkeypatch.delenv("IVIF_DATA", raising=False)
    cfg = load_config(REPO / "config" / "train_student.yaml")
    with pytest.raises(ConfigError, match=r"pass --data DIR or set IVIF_DATA=DIR"):
        cfg.resolved_sources()
    monkeypatch.setenv("IVIF_DATA", str(tmp_path))
    assert cfg.resolved_sources()[0]["root"] == str(tmp_path / "msrs" / "test")
    assert cfg.provenance()["data_root"] == "$IVIF_DATA"  # a sidecar records no machine path
    given = load_config(REPO / "config" / "train_student.yaml", {"data_root": str(tmp_path / "other")})
    with pytest.raises(ConfigError, match="does not exist"):
        given.resolved_sources()  # --data wins over $IVIF_DATA, and a missing folder is named


def test_train_print_config_shows_the_resolved_config(tmp_path, capsys, monkeypatch):
    from ivif_ros.cli import main

    monkeypatch.setenv("IVIF_DATA", str(tmp_path))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"base: {REPO / 'config' / 'train_student.yaml'}\nsteps: 7\nloss_weights: {{qabf: 5.0}}\n")
    assert main(["train", "student", "--config", str(recipe), "--seed", "3", "--print-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["steps"] == 7 and shown["seed"] == 3 and shown["data_root"] == str(tmp_path)
    assert shown["loss_weights"]["qabf"] == 5.0 and shown["loss_weights"]["ssim_metric"] == 1.0  # merged with the base
    assert not (tmp_path / "runs").exists()


def test_visible_jitter_changes_only_the_visible_exposure(tiny_data):
    """Each visible crop gets its own gain / gamma / noise draw while the IR crop, the window,
    flip and targets stay those of the plain run; exposures differ from crop to crop; the
    IR-only ablation's input (IR on both sides) is left alone; the strength is checked."""
    samples = load_samples([{"root": str(tiny_data)}])
    plain = CropDataset(samples, crop=32, num_det=3, length=40, seed=0, object_crop_prob=0.5)
    jittered = CropDataset(samples, crop=32, num_det=3, length=40, seed=0, object_crop_prob=0.5, visible_jitter=0.5)
    changed, ratios = 0, []
    for i in range(40):
        a, b = plain[i], jittered[i]
        for key in a:
            if key != "vis":
                assert torch.equal(a[key], b[key]), key
        assert b["vis"].min() >= 0 and b["vis"].max() <= 1
        changed += not torch.equal(a["vis"], b["vis"])
        ratios.append(float(b["vis"].mean() / a["vis"].mean().clamp_min(1e-3)))
    assert changed == 40
    assert min(ratios) < 0.9 and max(ratios) > 1.1  # exposures differ from crop to crop
    again = CropDataset(samples, crop=32, num_det=3, length=40, seed=0, object_crop_prob=0.5, visible_jitter=0.5)
    assert all(torch.equal(again[i]["vis"], jittered[i]["vis"]) for i in range(40))  # seeded
    ir_only = load_samples([{"root": str(tiny_data)}], input_mode="ir")
    twin = CropDataset(ir_only, crop=32, num_det=3, length=20, seed=0, visible_jitter=0.5)
    base = CropDataset(ir_only, crop=32, num_det=3, length=20, seed=0)
    assert all(torch.equal(twin[i][k], base[i][k]) for i in range(20) for k in base[i])
    with pytest.raises(ConfigError, match="visible_jitter"):
        CropDataset(samples, crop=32, num_det=3, length=1, visible_jitter=1.5)


def test_ir_jitter_changes_only_the_ir_response(tiny_data):
    """Each IR crop gets its own gain / offset / gamma / noise (sometimes blur) while the visible
    crop, the window and the targets stay those of the plain run; seeded; single-camera crops
    are left alone; the strength is checked."""
    samples = load_samples([{"root": str(tiny_data)}])
    plain = CropDataset(samples, crop=32, num_det=3, length=30, seed=0, object_crop_prob=0.5)
    jittered = CropDataset(samples, crop=32, num_det=3, length=30, seed=0, object_crop_prob=0.5, ir_jitter=0.5)
    means = []
    for i in range(30):
        a, b = plain[i], jittered[i]
        assert all(torch.equal(a[k], b[k]) for k in a if k != "ir")
        assert not torch.equal(a["ir"], b["ir"]) and 0 <= b["ir"].min() and b["ir"].max() <= 1
        means.append(float(b["ir"].mean() - a["ir"].mean()))
    assert min(means) < -0.02 and max(means) > 0.02  # responses differ from crop to crop
    again = CropDataset(samples, crop=32, num_det=3, length=30, seed=0, object_crop_prob=0.5, ir_jitter=0.5)
    assert all(torch.equal(again[i]["ir"], jittered[i]["ir"]) for i in range(30))
    ir_only = load_samples([{"root": str(tiny_data)}], input_mode="ir")
    twin = CropDataset(ir_only, crop=32, num_det=3, length=10, seed=0, ir_jitter=0.5)
    base = CropDataset(ir_only, crop=32, num_det=3, length=10, seed=0)
    assert all(torch.equal(twin[i][k], base[i][k]) for i in range(10) for k in base[i])
    with pytest.raises(ConfigError, match="ir_jitter"):
        CropDataset(samples, crop=32, num_det=3, length=1, ir_jitter=1.5)


def test_init_from_folds_a_single_camera_student_so_the_fused_trunk_starts_where_it_was(tmp_path, tiny_data):
    """init_from: an IR-only student warm-starts a fused one. After the fold its semantic and
    detection outputs on (ir, vis) equal the source's on (ir, ir), whatever the visible image;
    the sidecar records the warm start; a wrong architecture, class list or model config is
    refused by name."""
    from ivif_ros.models import build_student
    from ivif_ros.training.warm_start import warm_start

    ir_student = train(
        load_config(write_config(tmp_path, tiny_data, steps=2, input_mode="ir")), "student", tmp_path / "ir_student"
    )
    source, _ = load_model(ir_student)
    net = build_student({"num_seg": 4})
    done = warm_start(
        net,
        "student",
        str(ir_student),
        "fused",
        ["person", "bicycle", "car"],
        ["background", "person", "bicycle", "car"],
    )
    assert done["source_input_mode"] == "ir" and done["first_conv_folded_onto"] == "ir"
    net.eval()
    torch.manual_seed(0)
    ir, vis = torch.rand(2, 1, 1, 32, 48)
    with torch.no_grad():
        ours, theirs = net.forward_features(ir, vis), source.forward_features(ir, ir)
        other_vis = net.forward_features(ir, torch.rand(1, 1, 32, 48))
    for key in ("seg_logits", "feat"):
        assert torch.allclose(ours[key], theirs[key], atol=1e-5), key
        assert torch.allclose(ours[key], other_vis[key], atol=1e-5), key  # visible enters at zero weight
    assert not torch.allclose(ours["fused"], other_vis["fused"])  # the fusion path still reads visible

    path = train(
        load_config(write_config(tmp_path, tiny_data, steps=1, init_from=str(ir_student))),
        "student",
        tmp_path / "fused",
    )
    record = load_model(path)[1]["training"]["initialised_from"]
    assert record["from"] == str(ir_student) and record["first_conv_folded_onto"] == "ir"
    assert record["sha256"] == json.loads(ir_student.with_suffix(".json").read_text())["sha256"]

    # A sidecar written before a model key existed (here the later fusion_grad_scale) still fits:
    # configs are compared as built, defaults filled.
    old = json.loads(ir_student.with_suffix(".json").read_text())
    del old["config"]["fusion_grad_scale"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "student.safetensors").write_bytes(ir_student.read_bytes())
    (tmp_path / "old" / "student.json").write_text(json.dumps(old))
    warm_start(
        build_student({"num_seg": 4}),
        "student",
        str(tmp_path / "old" / "student.safetensors"),
        "fused",
        ["person", "bicycle", "car"],
        ["background", "person", "bicycle", "car"],
    )

    teacher = train(load_config(write_config(tmp_path, tiny_data, steps=1)), "teacher", tmp_path / "teacher")
    with pytest.raises(ConfigError, match="is a teacher but this trains a student"):
        warm_start(
            build_student({"num_seg": 4}),
            "student",
            str(teacher),
            "fused",
            ["person", "bicycle", "car"],
            ["background", "person", "bicycle", "car"],
        )
    with pytest.raises(ConfigError, match="semantic_classes"):
        train(
            load_config(
                write_config(tmp_path, tiny_data, init_from=str(ir_student), semantic_classes=["background", "person"])
            ),
            "student",
            tmp_path / "bad",
        )
    with pytest.raises(ConfigError, match="model config"):
        train(
            load_config(write_config(tmp_path, tiny_data, init_from=str(ir_student), model={"width": 16})),
            "student",
            tmp_path / "bad2",
        )


def test_init_from_grows_a_fusion_context_encoder_that_starts_silent(tmp_path, tiny_data):
    """A student without the fusion-context encoder warm-starts one with it: every output,
    the fused image included, starts equal to the (folded) source's; the encoder then gets a
    gradient through the fusion maps' new weights. Removing an encoder is refused."""
    from ivif_ros.models import build_student
    from ivif_ros.training.warm_start import fold_single_camera, warm_start

    classes, seg = ["person", "bicycle", "car"], ["background", "person", "bicycle", "car"]
    ir_student = train(
        load_config(write_config(tmp_path, tiny_data, steps=2, input_mode="ir")), "student", tmp_path / "ir_student"
    )
    source, _ = load_model(ir_student)
    folded = build_student({"num_seg": 4})
    folded.load_state_dict(fold_single_camera(source.state_dict(), "ir"))
    net = build_student({"num_seg": 4, "fusion_context": 8})
    done = warm_start(net, "student", str(ir_student), "fused", classes, seg)
    assert done["grown"] == ["fusion_context"]
    torch.manual_seed(0)
    ir, vis = torch.rand(2, 1, 1, 32, 48)
    net.eval(), folded.eval()
    with torch.no_grad():
        for key, ours in net.forward_features(ir, vis).items():
            assert torch.allclose(ours, folded.forward_features(ir, vis)[key], atol=1e-6), key
    net.train()
    net.forward_features(ir, vis)["fused"].mean().backward()
    assert net.fusion_maps.weight.grad[:, -8:].abs().sum() > 0  # the new slice learns first

    path = train(
        load_config(write_config(tmp_path, tiny_data, steps=1, init_from=str(ir_student), model={"fusion_context": 8})),
        "student",
        tmp_path / "grown",
    )
    assert load_model(path)[1]["config"]["fusion_context"] == 8
    with pytest.raises(ConfigError, match=r"differ in \['fusion_context'\]"):
        warm_start(build_student({"num_seg": 4}), "student", str(path), "fused", classes, seg)


def test_fusion_path_lr_gives_only_the_fusion_path_its_own_learning_rate(tmp_path, tiny_data):
    from ivif_ros.models import build_student
    from ivif_ros.training.loop import FUSION_PATH, Trainable, param_groups

    cfg = load_config(write_config(tmp_path, tiny_data, lr=0.001, fusion_path_lr=0.004))
    trainable = Trainable(build_student({"num_seg": 4}))
    groups = param_groups(trainable, cfg, "student")
    assert len(groups) == 2 and groups[1]["lr"] == 0.004 and "lr" not in groups[0]
    names = {id(p): n for n, p in trainable.named_parameters()}
    assert {names[id(p)].split(".")[1] for p in groups[1]["params"]} == {"fusion_maps", "detail", "prior"}
    with_context = Trainable(build_student({"num_seg": 4, "fusion_context": 8}))
    context_names = {id(p): n for n, p in with_context.named_parameters()}
    fusion = {context_names[id(p)].split(".")[1] for p in param_groups(with_context, cfg, "student")[1]["params"]}
    assert fusion == {"fusion_maps", "detail", "prior", "fusion_encoder"}
    assert sum(len(g["params"]) for g in groups) == len(list(trainable.parameters()))
    assert not any(names[id(p)].startswith(FUSION_PATH) for p in groups[0]["params"])
    path = train(cfg, "student", tmp_path / "run")
    assert load_model(path)[1]["training"]["config"]["fusion_path_lr"] == 0.004
    with pytest.raises(ConfigError, match="fusion_path_lr applies to the student"):
        train(cfg, "teacher", tmp_path / "teacher")
