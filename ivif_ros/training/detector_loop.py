"""``ivif train detector``: fine-tune the COCO FastestDet on labelled IR/visible pairs.

Deterministic and resumable: the epoch order and every augmentation draw come from
generators seeded by ``(seed, epoch)`` and ``(seed, step)``, so a run stopped and resumed
from its checkpoint takes exactly the steps an uninterrupted run takes. The loss log
(``losses.csv``) is cut back to the checkpoint's step on resume.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from ivif_ros.errors import ConfigError
from ivif_ros.training.checkpoints import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from ivif_ros.training.detector_config import DetectorTrainConfig
from ivif_ros.training.detector_data import DetSample, FusedCache, load_samples, make_batch
from ivif_ros.training.detector_loss import detector_loss

LOG_NAME = "losses.csv"
LOG_COLUMNS = ["step", "epoch", "lr", "box", "obj", "cls", "total"]


def load_training_samples(cfg: DetectorTrainConfig, root: Path, progress: bool = True) -> list[DetSample]:
    cache = FusedCache(cfg.fusion_model, cfg.cache_dir) if cfg.input_mode == "fused" else None
    samples = []
    for src in cfg.data:
        split = root / src["split"] if src.get("split") else None
        samples += load_samples(root / src["root"], split, cfg.input_mode, cfg.labels, cache, progress)
    if not samples:
        raise ConfigError("the training data is empty; check 'data' in the config")
    return samples


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def _trim_log(path: Path, step: int) -> None:
    if not path.is_file():
        return
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, LOG_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def train_detector(
    cfg: DetectorTrainConfig,
    root: Path,
    out: Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    command: str = "",
    progress: bool = True,
    samples: list[DetSample] | None = None,
) -> Path | None:
    """Run (or continue) a fine-tuning; return the exported weights path when it finishes."""
    import torch
    from tqdm import tqdm

    from ivif_ros.training.detector_init import coco_detector

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not resume and (out / CHECKPOINT_NAME).exists():
        raise ConfigError(
            f"{out} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it or choose another --out"
        )
    torch.manual_seed(cfg.seed)
    samples = samples if samples is not None else load_training_samples(cfg, root, progress)
    model, source_meta = coco_detector(cfg.classes)
    model.train()
    steps_per_epoch = max(1, len(samples) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, round(cfg.warmup_epochs * steps_per_epoch))
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total, warmup))
    step = 0
    log_path = out / LOG_NAME
    if resume:
        step = load_checkpoint(out, model, optimizer, scheduler)
        _trim_log(log_path, step)
    else:
        log_path.unlink(missing_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    new_log = not log_path.is_file()
    out_hw = (cfg.input_size[1], cfg.input_size[0])
    aug = cfg.augment_config()
    end = total if stop_after is None else min(total, step + stop_after)
    with (
        open(log_path, "a", newline="") as logf,
        tqdm(total=total, initial=step, desc=f"detector ({cfg.input_mode})", unit="step", disable=not progress) as bar,
    ):
        writer = csv.DictWriter(logf, LOG_COLUMNS)
        if new_log:
            writer.writeheader()
        order = None
        while step < end:
            epoch, k = divmod(step, steps_per_epoch)
            if order is None or k == 0:
                order = np.random.default_rng([cfg.seed, epoch]).permutation(len(samples))
            idx = order[k * cfg.batch_size : (k + 1) * cfg.batch_size]
            rng = np.random.default_rng([cfg.seed, 1_000_003, step])
            images, targets = make_batch(samples, idx, out_hw, rng, aug)
            parts = detector_loss(model.forward_logits(images), targets, tuple(cfg.loss_weights))
            optimizer.zero_grad(set_to_none=True)
            parts.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == end:
                row = {
                    "step": step,
                    "epoch": epoch,
                    "lr": f"{optimizer.param_groups[0]['lr']:.6g}",
                    **{k: f"{getattr(parts, k).item():.5f}" for k in ("box", "obj", "cls", "total")},
                }
                writer.writerow(row)
                logf.flush()
                bar.set_postfix(loss=row["total"], box=row["box"])
            if step % cfg.checkpoint_every == 0 or step == end:
                save_checkpoint(out, model, optimizer, scheduler, step)
    if step < total:
        print(f"stopped after step {step} of {total}; continue with --resume --out {out}")
        return None
    return export_detector(model, out / "detector", cfg, source_meta, command, samples=len(samples))


def run_minutes(out: Path) -> float:
    """Wall time of a run from its start (``config.json``) to its last checkpoint, resumes included."""
    return ((out / CHECKPOINT_NAME).stat().st_mtime - (out / "config.json").stat().st_mtime) / 60.0


def export_detector(model, stem: Path, cfg: DetectorTrainConfig, source_meta: dict, command: str, samples: int) -> Path:
    """Write ``stem.safetensors`` + sidecar: classes, run-time input, the licence notice of the
    COCO checkpoint it was fine-tuned from, and how it was trained (paths relative)."""
    from ivif_ros.weights import save_model

    meta = {
        "detection_classes": list(cfg.classes),
        # the input it was trained at is its native size now; the image is what it was tuned on
        "input": {
            **source_meta.get("input", {}),
            "native_hw": [cfg.input_size[1], cfg.input_size[0]],
            "image": cfg.input_mode,
        },
        "licence": source_meta.get("licence", ""),
        "source": {
            "fine_tuned_from": source_meta.get("weights_file", "detector_coco.safetensors"),
            "fine_tuned_from_sha256": source_meta.get("sha256"),
            "pretrained": source_meta.get("source", {}),
        },
        "training": {
            "command": command,
            "config": {k: v for k, v in cfg.to_dict().items() if k != "cache_dir"},
            "pairs": samples,
            "wall_minutes": round(run_minutes(stem.parent), 1),
        },
    }
    return save_model(model.eval(), stem, meta)
