"""``ivif train teacher|student|detector``: config-driven training with resumable checkpoints.

Examples::

    ivif train detector --config config/train_detector.yaml --data $IVIF_DATA --out runs/detector
    ivif train teacher --config config/train_teacher.yaml --data $IVIF_DATA --out runs/teacher
    ivif train student --teacher teacher --config config/train_student.yaml   # data from $IVIF_DATA
    ivif train student --no-distill --config config/train_student.yaml --out runs/student_nodistill
    ivif train student --config config/train_student.yaml --print-config       # the resolved config, then exit
    torchrun --nproc_per_node 2 -m ivif_ros.cli train teacher --config ...   # DDP
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path


def add_parser(subparsers, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("kind", choices=["teacher", "student", "detector"], help="which network to train")
    p.add_argument("--config", required=True, help="training YAML (see config/train_*.yaml)")
    p.add_argument("--out", default=None, help="run folder (default runs/<kind>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument(
        "--teacher",
        default=None,
        help="student only: teacher weights (.safetensors with .json sidecar, or a shipped name)",
    )
    p.add_argument("--no-distill", action="store_true", help="student only: train without a teacher")
    p.add_argument(
        "--data",
        default=None,
        help="folder holding the datasets the config names (default: $IVIF_DATA, else the config's data_root)",
    )
    p.add_argument("--steps", type=int, default=None, help="override the number of optimisation steps")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed (repeat runs of one config)")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="end this session after N steps with a checkpoint (continue with --resume)",
    )
    p.add_argument(
        "--input-mode",
        choices=["fused", "ir", "vis", "visible"],
        default=None,
        help="ablation: feed (ir, vis), (ir, ir) or (vis, vis); detector: fused, ir or visible image",
    )
    p.add_argument(
        "--visible-dropout",
        type=float,
        default=None,
        help="override the config's visible_dropout (share of crops whose visible image is replaced by IR)",
    )
    p.add_argument(
        "--visible-jitter",
        type=float,
        default=None,
        help="override the config's visible_jitter (strength of the visible exposure augmentation)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="override the config's init_from: start from this trained model's weights (a warm "
        "start; a single-camera student is folded for a fused training)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--epochs", type=int, default=None, help="detector only: override the config's epochs")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (base merged, overrides applied, paths absolute) as YAML and exit",
    )
    return p


def _portable(arg: str, args) -> str:
    """A command-line word as recorded in a sidecar: machine-specific folders made generic."""
    if args.data and arg in (args.data, f"--data={args.data}"):
        return arg.replace(args.data, "$IVIF_DATA")
    if args.out and arg == args.out and Path(arg).is_absolute():
        return f"runs/{Path(arg).name}"
    return shlex.quote(arg)


def _without_session_flags(argv: list[str]) -> list[str]:
    """The words that reproduce the run: --resume and --stop-after N only split it into sessions."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--stop-after":
            skip = True
        elif a != "--resume" and not a.startswith("--stop-after="):
            out.append(a)
    return out


def run_detector(args) -> int:
    import torch

    from ivif_ros.errors import ConfigError
    from ivif_ros.training.detector_config import data_root, load_detector_config

    if args.teacher or args.no_distill or args.steps or args.init_from:
        raise ConfigError(
            "--teacher, --no-distill, --steps and --init-from do not apply to 'ivif train detector'; use --epochs"
        )
    mode = {"vis": "visible"}.get(args.input_mode, args.input_mode)
    cfg = load_detector_config(args.config, {"seed": args.seed, "input_mode": mode, "epochs": args.epochs})
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    from ivif_ros.training.detector_loop import train_detector

    root = data_root(args.data)
    out = Path(args.out or "runs/detector")
    command = "ivif " + " ".join(_portable(a, args) for a in _without_session_flags(sys.argv[1:]))
    path = train_detector(cfg, root, out, resume=args.resume, stop_after=args.stop_after, command=command)
    if path is not None:
        print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def run(args) -> int:
    if args.kind == "detector":
        return run_detector(args)
    import torch

    from ivif_ros.errors import ConfigError
    from ivif_ros.training.config import DATA_ENV, load_config
    from ivif_ros.training.loop import train

    cfg = load_config(
        args.config,
        {
            "data_root": args.data,
            "steps": args.steps,
            "seed": args.seed,
            "input_mode": args.input_mode,
            "visible_dropout": args.visible_dropout,
            "visible_jitter": args.visible_jitter,
            "init_from": args.init_from,
        },
    )
    if args.print_config:
        import yaml

        resolved = cfg.to_dict()
        resolved["data_root"] = cfg.data_root or os.environ.get(DATA_ENV) or f"(unset: pass --data or set {DATA_ENV})"
        print(yaml.safe_dump(resolved, sort_keys=False, default_flow_style=None, width=110), end="")
        return 0
    if args.kind == "teacher" and (args.teacher or args.no_distill):
        raise ConfigError("--teacher and --no-distill apply to 'ivif train student' only")
    if args.kind == "student" and not args.teacher and not args.no_distill:
        raise ConfigError("ivif train student needs --teacher <weights> to distil, or --no-distill")
    cfg.resolved_data_root()  # no data folder: say so before loading anything
    if args.threads:
        torch.set_num_threads(args.threads)
    teacher = None
    if args.teacher:
        from ivif_ros.weights import load_model

        teacher, meta = load_model(args.teacher)
        if meta["architecture"] != "teacher":
            raise ConfigError(f"--teacher {args.teacher} holds a {meta['architecture']}, not a teacher")
        if meta["semantic_classes"] != cfg.semantic_classes:
            raise ConfigError(
                f"--teacher {args.teacher} predicts {meta['semantic_classes']} but {args.config} "
                f"trains {cfg.semantic_classes}; distil from a teacher with the same semantic_classes"
            )
    out = Path(args.out or f"runs/{args.kind}")
    command = "ivif " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = train(
        cfg,
        args.kind,
        out,
        teacher=teacher,
        teacher_source=args.teacher,
        resume=args.resume,
        stop_after=args.stop_after,
        command=command,
    )
    if path is not None:
        print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
