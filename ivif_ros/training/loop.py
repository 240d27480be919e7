"""The training loop shared by the teacher and the student.

One process on CPU (or CUDA when present); under ``torchrun`` (``RANK`` set) it joins a
process group (NCCL on GPU, gloo on CPU), shards the data with ``DistributedSampler`` and
wraps the model in DDP. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ivif_ros.errors import ConfigError
from ivif_ros.training import losses as L
from ivif_ros.training.augment import multifocus_pair
from ivif_ros.training.checkpoints import load_checkpoint, save_checkpoint
from ivif_ros.training.config import TrainConfig, portable_path
from ivif_ros.training.data import CropDataset, load_samples
from ivif_ros.training.warm_start import warm_start


class Trainable(nn.Module):
    """What the optimizer (and DDP) sees: the network plus the feature-distillation adapter.

    ``forward`` returns the network's full output dict, so DDP hooks the real computation.
    """

    def __init__(self, net: nn.Module, feature_adapter: nn.Module | None = None):
        super().__init__()
        self.net = net
        self.feature_adapter = feature_adapter

    def forward(self, ir, vis):
        return self.net.forward_features(ir, vis)


FUSION_PATH = (
    "net.fusion_maps.",
    "net.detail.",
    "net.prior.",
    "net.fusion_encoder.",
)  # the student's parameters that only shape the fused image


def param_groups(trainable: nn.Module, cfg: TrainConfig, kind: str) -> list[dict]:
    """One optimizer group, or two when ``fusion_path_lr`` gives the student's fusion path its own
    peak lr (the schedule scales both groups alike)."""
    if cfg.fusion_path_lr is None:
        return [{"params": list(trainable.parameters())}]
    if kind != "student":
        raise ConfigError(f"fusion_path_lr applies to the student's fusion path, not a {kind}; drop it from the config")
    named = list(trainable.named_parameters())
    fusion = [p for n, p in named if n.startswith(FUSION_PATH)]
    return [
        {"params": [p for n, p in named if not n.startswith(FUSION_PATH)]},
        {"params": fusion, "lr": cfg.fusion_path_lr},
    ]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _distributed() -> tuple[int, int, torch.device]:
    """Join the torchrun process group if launched by torchrun; return (rank, world, device)."""
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local)
    return dist.get_rank(), dist.get_world_size(), torch.device(f"cuda:{local}" if cuda else "cpu")


def fusion_losses(cfg: TrainConfig, out, b) -> dict[str, torch.Tensor]:
    f, ir, vis = out["fused"], b["ir"], b["vis"]
    return {
        "intensity": L.intensity_loss(f, ir, vis),
        "salient": L.salient_intensity_loss(f, ir, vis, b["salient"]),
        "gradient": L.gradient_loss(f, ir, vis),
        "ssim": L.ssim_loss(f, ir, vis),
        **({"qabf": L.edge_preservation_loss(f, ir, vis)} if cfg.weight("qabf") > 0 else {}),
        **({"ssim_metric": L.metric_ssim_loss(f, ir, vis)} if cfg.weight("ssim_metric") > 0 else {}),
        **({"contrast": L.contrast_loss(f, vis)} if cfg.weight("contrast") > 0 else {}),
    }


def task_losses(out, b, teacher: bool) -> dict[str, torch.Tensor]:
    """Semantic loss on the labelled images of the batch (none: zero loss); the teacher adds
    its detection and auxiliary heads' losses."""
    keep = b["labelled"] > 0
    if not keep.any():
        zero = out["seg_logits"].sum() * 0.0  # keeps the graph (and DDP) consistent
        names = ["semantic"] + (["heatmap", "box", "boundary", "binary"] if teacher else [])
        return {n: zero for n in names}
    seg = b["seg"][keep]
    d = {"semantic": L.semantic_loss(out["seg_logits"][keep], seg)}
    if teacher:
        d["heatmap"] = L.heatmap_focal_loss(out["det_heatmap"][keep], b["heatmap"][keep])
        d["box"] = L.box_regression_loss(out["det_box"][keep], b["box"][keep], b["centre"][keep])
        d["boundary"] = L.mask_bce_loss(out["boundary_logits"][keep], b["boundary"][keep])
        d["binary"] = L.mask_bce_loss(out["binary_logits"][keep], (seg > 0).float()[:, None])
    return d


def train(
    cfg: TrainConfig,
    kind: str,
    out_dir: Path,
    *,
    teacher=None,
    teacher_source: str | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    command: str = "",
) -> Path | None:
    """Train ``kind`` ('teacher' or 'student', optionally distilled from ``teacher``).

    ``stop_after`` ends this session after that many steps with a checkpoint (continue later
    with ``resume=True``); the result is identical to an uninterrupted run.

    Writes ``checkpoint.pt`` (resumable), ``log.jsonl`` and the final ``<kind>.safetensors``
    + ``.json`` into ``out_dir``; returns the safetensors path (rank 0) or None.
    """
    from ivif_ros.models import build_student, build_teacher
    from ivif_ros.weights import save_model

    rank, world, device = _distributed()
    seed_everything(cfg.seed + rank)
    out_dir = Path(out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    model_cfg = {**cfg.model, "num_seg": len(cfg.semantic_classes)}
    if kind == "teacher":
        model_cfg["num_det"] = len(cfg.detection_classes)
    net = (build_teacher if kind == "teacher" else build_student)(model_cfg)
    initialised_from = None
    if cfg.init_from:
        initialised_from = warm_start(
            net, kind, cfg.init_from, cfg.input_mode, cfg.detection_classes, cfg.semantic_classes
        )
        initialised_from["from"] = portable_path(initialised_from["from"])
    adapter = None
    if teacher is not None:
        teacher = teacher.to(device).eval().requires_grad_(False)
        with torch.no_grad():  # feature widths from a probe; eval mode keeps BN statistics untouched
            probe = torch.zeros(1, 1, 64, 64, device=device)
            t_ch = teacher.forward_features(probe, probe)["feat"].shape[1]
            s_ch = net.eval().forward_features(probe, probe)["feat"].shape[1]
            net.train()
        adapter = L.FeatureDistillation(s_ch, t_ch)
    trainable = Trainable(net, adapter).to(device)
    coupling = None
    if cfg.detector_coupling:
        if kind != "student" or world > 1 or "RANK" in os.environ:
            raise ConfigError(
                f"detector_coupling trains a student in one process, not a {kind} under torchrun; "
                "drop it from the config"
            )
        from ivif_ros.training.coupling import DetectorCoupling

        coupling = DetectorCoupling(cfg.detector_coupling, cfg.resolved_data_root(), cfg.seed, device)
    clip_loss = None
    if cfg.clip_checkpoint:
        from ivif_ros.training.clip import LanguageDrivenLoss

        clip_loss = LanguageDrivenLoss.from_checkpoint(cfg.clip_checkpoint, **cfg.clip_prompts).to(device)

    optimizer = torch.optim.AdamW(param_groups(trainable, cfg, kind), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_factor(step: int) -> float:  # linear warm-up then cosine decay to 5 %
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    step = load_checkpoint(out_dir, trainable, optimizer, scheduler) if resume else 0

    model = trainable
    if world > 1 or "RANK" in os.environ:
        model = nn.parallel.DistributedDataParallel(
            trainable, device_ids=[device.index] if device.type == "cuda" else None
        )

    samples = load_samples(cfg.resolved_sources(), cfg.input_mode)
    # One pass over a fixed-order stream of crops; step i uses items [i*B*W, (i+1)*B*W) for
    # batch B and world size W, so resuming skips exactly the items already trained on.
    per_step = cfg.batch_size * world
    dataset = CropDataset(
        samples,
        cfg.crop,
        len(cfg.detection_classes),
        length=cfg.steps * per_step,
        seed=cfg.seed,
        object_crop_prob=cfg.object_crop_prob,
        visible_dropout=cfg.visible_dropout,
        visible_jitter=cfg.visible_jitter,
        ir_jitter=cfg.ir_jitter,
        visible_only_crop_prob=cfg.visible_only_crop_prob,
    )
    remaining = torch.utils.data.Subset(dataset, range(step * per_step, len(dataset)))
    sampler = None
    if "RANK" in os.environ:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(remaining, num_replicas=world, rank=rank, shuffle=False)
    loader = DataLoader(remaining, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=True)

    gen = torch.Generator()
    log = open(out_dir / "log.jsonl", "a") if rank == 0 else None
    start = time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {kind}", disable=rank != 0, dynamic_ncols=True)
    trainable.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    interval: dict[str, list[float]] = defaultdict(list)
    for batch in loader:
        if step >= end:
            break
        b = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        ir, vis = b["ir"], b["vis"]
        n = ir.shape[0]
        guided = cfg.guidance_every > 0 and step % cfg.guidance_every == 0 and cfg.weight("guidance") > 0
        if guided:  # one forward over real + synthetic multi-focus pairs (a single DDP forward per step)
            gen.manual_seed(cfg.seed * 1_000_003 + step)  # per-step seed: resuming reproduces it
            near, far, target = multifocus_pair(vis, gen)
            ir, vis = torch.cat([ir, near]), torch.cat([vis, far])
        full = model(ir, vis)
        out = {k: v[:n] for k, v in full.items()}
        parts = fusion_losses(cfg, out, b)
        parts.update(task_losses(out, b, teacher=kind == "teacher"))
        if guided:
            parts["guidance"] = L.guidance_loss(full["fused"][n:], target)
        if kind == "teacher":
            parts["fidelity"] = L.fidelity_loss(out["recon_ir"], out["recon_vis"], b["ir"], b["vis"])
        if teacher is not None:
            with torch.no_grad():
                t_out = teacher.forward_features(b["ir"], b["vis"])
            parts["distill_output"] = L.output_distillation_loss(out["fused"], t_out["fused"])
            if cfg.weight("distill_gradient") > 0:
                parts["distill_gradient"] = L.gradient_distillation_loss(out["fused"], t_out["fused"])
            parts["distill_feature"] = trainable.feature_adapter(out["feat"], t_out["feat"])
            parts["distill_semantic"] = L.distilled_semantic_loss(
                out["seg_logits"], t_out["seg_logits"], cfg.temperature
            )
        if clip_loss is not None:
            parts["clip"] = clip_loss(out["fused"])
        if coupling is not None:
            parts["detector"] = coupling.loss(trainable.net, step)
        loss = sum(cfg.weight(k) * v for k, v in parts.items())
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"step {step}: loss is {loss.item()} ({ {k: float(v) for k, v in parts.items()} }); "
                "lower lr in the config"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        for k, v in (("loss", loss), *parts.items()):
            interval[k].append(v.item())
        if rank == 0 and (step % cfg.log_every == 0 or step == end):
            # Means over the interval (guidance: over the steps that had it).
            rec = {
                "step": step,
                "time_s": round(time.time() - start, 2),
                "lr": scheduler.get_last_lr()[0],
                **{k: sum(v) / len(v) for k, v in interval.items()},
            }
            interval.clear()
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{rec['loss']:.4f}")
        if rank == 0 and (step % cfg.checkpoint_every == 0 or step == end):
            save_checkpoint(out_dir, trainable, optimizer, scheduler, step)
    bar.close()
    result = None
    if rank == 0 and step < cfg.steps:
        log.close()
        print(f"stopped at step {step}/{cfg.steps}; continue with --resume --out {out_dir}")
    elif rank == 0:
        log.close()
        result = save_model(
            net,
            out_dir / kind,
            {
                "semantic_classes": cfg.semantic_classes,
                **({"detection_classes": cfg.detection_classes} if kind == "teacher" else {}),
                "training": {
                    "command": command or " ".join(sys.argv),
                    "data_root": cfg.provenance()["data_root"],
                    "data": cfg.provenance()["data"],
                    "input_mode": cfg.input_mode,
                    "steps": step,
                    "batch_size": cfg.batch_size,
                    "crop": cfg.crop,
                    "distilled_from": teacher_source,
                    "initialised_from": initialised_from,
                    "clip_loss": bool(cfg.clip_checkpoint),
                    "wall_time_s_last_session": round(time.time() - start, 1),
                    "config": cfg.provenance(),
                    "world_size": world,
                    "device": str(device),
                    "ddp_backend": torch.distributed.get_backend()
                    if isinstance(model, nn.parallel.DistributedDataParallel)
                    else None,
                },
            },
        )
    if "RANK" in os.environ:
        import torch.distributed as dist

        dist.destroy_process_group()
    return result
