"""Reproduce every number and figure of ``ivif_ros/weights/MODEL_CARD.md``.

    python experiments/model_card.py --data $IVIF_DATA             # re-evaluate the weights (under 25 min, one core)
    python experiments/model_card.py --data $IVIF_DATA --retrain   # first re-run the seven trainings (~6 h)

The card compares the shipped student's fusion with the fusion baselines, the teacher, recipe E
(``experiments/configs/student_shipped.yaml``, which the shipped student is fine-tuned from with
the detector coupling of ``experiments/detector/recipe_d_coupling.yaml``) and recipe E's
equal-budget ablations (no teacher; seed repeats); the IR-only distilled student is trained too,
as the starting point of the two-stage recipes in ``experiments/configs``. The shipped weights
are in ``ivif_ros/weights/``, the ablations in ``experiments/weights/``. ``--retrain`` runs the
training commands of ``MODELS`` one after the other into ``--runs`` and copies their weights
and logs here. Writes ``results.json``, ``results.md`` and the PNG figures into
``experiments/model_card/``. Besides each model's scores, the tables give the fusion gaps to
pixel max (``FUSION_GAPS``) with a paired bootstrap over the images, so a gap can be told from
the noise of 119 images. Detection is scored in the card's Detector section
(``experiments/detector/run_all.sh``). The earlier recipes are in ``experiments/RECIPES.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

CARD = HERE / "model_card"
CARD_FILE = REPO / "ivif_ros" / "weights" / "MODEL_CARD.md"

# name in the card -> (weights, relative to the repository, without suffix; input mode; training
# command). All students share one config and number of steps, so they have one budget.
_STUDENT = "ivif train student --config experiments/configs/student_shipped.yaml --threads 1 "
# A distilled run that had the machine to itself, so it used both cores.
_DISTIL_ALONE = _STUDENT.replace("--threads 1", "--threads 2") + "--teacher {runs}/teacher/teacher.safetensors "
_ABL = "experiments/weights/"
MODELS = {
    "teacher": (
        "ivif_ros/weights/teacher",
        "fused",
        "ivif train teacher --config config/train_teacher.yaml --out {runs}/teacher --threads 2",
    ),
    "student, recipe E (distilled)": (
        _ABL + "student_recipe_e",
        "fused",
        _STUDENT + "--teacher {runs}/teacher/teacher.safetensors --out {runs}/student",
    ),
    # The shipped student: recipe E fine-tuned with the frozen detector's loss (recipe D of the
    # detector comparison, experiments/detector/recipe_d_coupling.yaml).
    "student (shipped; recipe E + detector coupling)": (
        "ivif_ros/weights/student",
        "fused",
        "ivif train student --config experiments/detector/recipe_d_coupling.yaml --no-distill --threads 2 "
        "--init-from {runs}/student/student.safetensors --out {runs}/student_coupled",
    ),
    "student, no distillation": (
        _ABL + "student_nodistill",
        "fused",
        _STUDENT + "--no-distill --out {runs}/student_nodistill",
    ),
    # The IR-only student distilled from the same teacher (IR on both inputs): the first stage
    # of the two-stage recipes; it has no fused image to score.
    "student, IR-only input, distilled": (
        _ABL + "student_ir_distilled",
        "ir",
        _DISTIL_ALONE + "--input-mode ir --out {runs}/student_ir_distilled",
    ),
    # Seed repeats: one seed cannot resolve a gap of 0.005 Qabf.
    "student, no distillation, seed 1": (
        _ABL + "seeds/student_nodistill_s1",
        "fused",
        _STUDENT + "--no-distill --seed 1 --out {runs}/student_nodistill_s1",
    ),
    "student, recipe E (distilled), seed 1": (
        _ABL + "seeds/student_s1",
        "fused",
        _DISTIL_ALONE + "--seed 1 --out {runs}/student_s1",
    ),
}
GAP_RESAMPLES = 2000
BASELINE_NAMES = ("pixel max", "mean", "Laplacian pyramid", "guided filtering (GFF)")  # card names, in card order
# Fusion metrics of a model against a baseline, image by image (the must-show "beats pixel-max").
FUSION_GAPS = [
    ("student (shipped; recipe E + detector coupling)", "pixel max"),
    ("student, recipe E (distilled)", "pixel max"),
    ("student, recipe E (distilled), seed 1", "pixel max"),
]
FUSION_GAP_KEYS = ("VIF", "Qabf", "SSIM")


def bootstrap_fusion_gaps(per_image: dict) -> dict:
    """FUSION_GAPS whose two methods are in ``per_image`` (name -> per-image fusion metric rows)."""
    from mean_bootstrap import paired_mean_bootstrap

    return {
        f"{a} minus {b}": {
            k: paired_mean_bootstrap(
                [r[k] for r in per_image[a]], [r[k] for r in per_image[b]], resamples=GAP_RESAMPLES
            )
            for k in FUSION_GAP_KEYS
        }
        for a, b in FUSION_GAPS
        if a in per_image and b in per_image
    }


FUSION_KEYS = ["VIF", "Qabf", "SSIM", "EN", "SD", "SF", "AG", "MI", "SCD"]


def retrain(runs: Path) -> None:
    for name, (weights, _, command) in MODELS.items():
        command = command.format(runs=runs)
        out = Path(command.split("--out ", 1)[1].split()[0])  # the run folder the command writes
        print(f"== {name}: {command}", flush=True)
        subprocess.run([sys.executable, "-m", "ivif_ros.cli", *command.split()[1:]], cwd=REPO, check=True)
        kind = "teacher" if name == "teacher" else "student"
        dest = REPO / weights
        dest.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".safetensors", ".json"):
            shutil.copy(out / f"{kind}{suffix}", dest.with_suffix(suffix))
        (CARD / "logs").mkdir(parents=True, exist_ok=True)
        log_name = str(out.relative_to(runs)).replace("/", "_")  # e.g. student_nodistill_s1
        shutil.copy(out / "log.jsonl", CARD / "logs" / f"{log_name}.jsonl")


def load_pairs(root: Path, split: Path):
    from ivif_ros.datasets.paired import PairedDataset, rgb_to_gray

    pairs = []
    for p in PairedDataset(root, split):
        vis = p.vis if p.vis.ndim == 2 else rgb_to_gray(p.vis)
        pairs.append((p.name, p.ir, vis, p.boxes))
    return pairs


def run_model(model, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """uint8 HxW pair -> fused uint8, with edge padding to a multiple of 32."""
    import torch

    h, w = ir.shape
    ph, pw = -h % 32, -w % 32
    x = [
        torch.from_numpy(np.pad(a, ((0, ph), (0, pw)), mode="edge").astype(np.float32) / 255)[None, None]
        for a in (ir, vis)
    ]
    with torch.no_grad():
        fused, _ = model(*x)
    return np.clip(fused[0, 0, :h, :w].numpy() * 255 + 0.5, 0, 255).astype(np.uint8)


def evaluate_model(model, pairs, desc: str = "") -> tuple[dict, list[dict]]:
    """A fused model over ``pairs``: (mean fusion metrics, per-image fusion metric rows)."""
    from tqdm import tqdm

    from ivif_ros.metrics.fusion import fusion_metrics

    rows = [fusion_metrics(run_model(model, ir, vis), ir, vis) for _, ir, vis, _ in tqdm(pairs, desc=desc)]
    return {k: float(np.mean([r[k] for r in rows])) for k in FUSION_KEYS}, rows


def evaluate(pairs, limit_models=None, baselines: bool = True) -> dict:
    from tqdm import tqdm

    from ivif_ros.metrics.fusion import fusion_metrics
    from ivif_ros.models.complexity import count_macs, count_params
    from ivif_ros.weights import load_model

    from ivif_ros.core.baselines import BASELINES

    results = {"fusion": {}, "complexity": {}}
    per_image = {}
    methods = dict(zip(BASELINE_NAMES, (BASELINES[k] for k in ("max", "mean", "laplacian", "gff"))))
    # A run of some models still needs the baselines its fusion gaps compare with.
    wanted = {b for a, b in FUSION_GAPS if limit_models is None or a in limit_models}
    for name, fuse in methods.items():
        if not baselines and name not in wanted:
            continue
        rows = [fusion_metrics(fuse(ir, vis), ir, vis) for _, ir, vis, _ in tqdm(pairs, desc=name)]
        per_image[name] = rows
        if baselines:
            results["fusion"][name] = {k: float(np.mean([r[k] for r in rows])) for k in FUSION_KEYS}
    for name, (weights, mode, _) in MODELS.items():
        if limit_models and name not in limit_models:
            continue
        model, meta = load_model(REPO / weights)
        results["complexity"][name] = {
            "params": count_params(model),
            "gmacs_640x480": count_macs(model) / 1e9,
            "train_steps": meta["training"]["steps"],
        }
        if mode == "fused":  # a single-camera student's output is no fusion
            results["fusion"][name], per_image[name] = evaluate_model(model, pairs, desc=name)
    results["fusion_gaps"] = bootstrap_fusion_gaps(per_image)
    return results


def write_markdown(results: dict, path: Path) -> None:
    lines = ["| method | " + " | ".join(FUSION_KEYS) + " |", "|---" * (len(FUSION_KEYS) + 1) + "|"]
    for name, m in results["fusion"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in FUSION_KEYS) + " |")
    lines += [
        "",
        "| fusion gap, A minus B (paired bootstrap over images: gap, 95 % interval, resamples with A "
        "ahead) | " + " | ".join(FUSION_GAP_KEYS) + " |",
        "|---" * (len(FUSION_GAP_KEYS) + 1) + "|",
    ]
    for label, g in results.get("fusion_gaps", {}).items():
        lines.append(
            f"| {label} | "
            + " | ".join(
                f"{g[k]['observed']:+.4f} ({g[k]['ci95'][0]:+.4f} .. {g[k]['ci95'][1]:+.4f}, {g[k]['p_a_better']:.0%})"
                for k in FUSION_GAP_KEYS
            )
            + " |"
        )
    lines += ["", "| model | params | GMAC @640x480 | training steps |", "|---|---|---|---|"]
    for name, c in results["complexity"].items():
        lines.append(f"| {name} | {c['params']:,} | {c['gmacs_640x480']:.2f} | {c['train_steps']} |")
    path.write_text("\n".join(lines) + "\n")


CARD_BEGIN = "<!-- begin table: written from experiments/model_card/results.json by experiments/model_card.py -->"
CARD_END = "<!-- end table -->"


def card_table(results: dict) -> str:
    """The card's one results table: VIF, Qabf and SSIM per method."""
    rows = ["| method | VIF | Qabf | SSIM |", "|---|---|---|---|"]
    for name in [*BASELINE_NAMES, *MODELS]:
        f = results["fusion"].get(name)
        if f is None:
            continue
        label = f"{name} (baseline)" if name in BASELINE_NAMES else name
        rows.append(f"| {label} | " + " | ".join(f"{f[k]:.3f}" for k in ("VIF", "Qabf", "SSIM")) + " |")
    return "\n".join(rows)


def splice_into_card(tables: str, card: Path) -> None:
    """Replace the card's results table by ``tables``, so the card cannot lag behind results.json."""
    text = card.read_text()
    if CARD_BEGIN not in text or CARD_END not in text:
        raise SystemExit(
            f"{card}: the markers {CARD_BEGIN!r} and {CARD_END!r} are missing; restore them around the result tables"
        )
    head, rest = text.split(CARD_BEGIN, 1)
    tail = rest.split(CARD_END, 1)[1]
    card.write_text(f"{head}{CARD_BEGIN}\n{tables.rstrip()}\n{CARD_END}{tail}")


def plot(results: dict, pairs, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ivif_ros.weights import load_model

    names = list(results["fusion"])
    row_in = 0.17  # inches per bar: the figures grow with the card, so labels never overlap
    fig, axes = plt.subplots(1, 3, figsize=(15, 1.2 + row_in * len(names)), sharey=True)
    for ax, key in zip(axes, ("VIF", "Qabf", "SSIM")):
        vals = [results["fusion"][n][key] for n in names]
        ax.barh(names, vals, color=["#999" if n in BASELINE_NAMES else "#3a7" for n in names])
        ax.set_xlim(min(vals) * 0.95, max(vals) * 1.02)
        ax.axvline(results["fusion"]["pixel max"][key], color="#c33", lw=1, ls="--")  # the bar to clear
        ax.set_title(f"{key} on msrs_dev_eval", fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
    axes[0].invert_yaxis()  # shared y: inverting each axis would flip it back
    fig.suptitle("higher is better; dashed line: pixel max, the baseline to beat", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "fusion_metrics.png", dpi=110)
    plt.close(fig)

    # The shipped recipe's runs only: with the earlier recipes' eleven the plot is unreadable.
    logs = sorted((out / "logs").glob("*.jsonl"))
    if logs:

        def smooth(v, k=5):  # centred running mean: the logs hold single-batch values
            return np.convolve(np.pad(v, k // 2, mode="edge"), np.ones(k) / k, mode="valid")

        fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
        for log in logs:
            rows = [json.loads(ln) for ln in log.read_text().splitlines()]
            steps = [r["step"] for r in rows]
            axes[0].plot(steps, smooth([r["loss"] for r in rows]), label=log.stem)
            if "student_ir" not in log.stem:  # (ir, ir) inputs: fusion is trivial
                axes[1].plot(steps, smooth([r["ssim"] + r["gradient"] + r["intensity"] for r in rows]), label=log.stem)
        axes[0].set_title("total training loss (running mean of 5 logged batches)")
        axes[1].set_title("unweighted intensity + gradient + SSIM loss")
        for ax in axes:
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
        axes[0].set_yscale("log")
        fig.tight_layout()
        fig.savefig(out / "training_curves.png", dpi=110)
        plt.close(fig)

    student, _ = load_model(REPO / "ivif_ros/weights/student")
    picks = [pairs[i] for i in (0, len(pairs) // 2, len(pairs) - 1)]
    fig, axes = plt.subplots(len(picks), 4, figsize=(14, 3.1 * len(picks)))
    for row, (name, ir, vis, _) in zip(axes, picks):
        fused = run_model(student, ir, vis)
        for ax, img, title in zip(
            row, (ir, vis, np.maximum(ir, vis), fused), ("infrared", "visible (Y)", "pixel max", "student fused")
        ):
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "samples.png", dpi=90)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=os.environ.get("IVIF_DATA"), help="folder holding msrs/ and splits/ (default: $IVIF_DATA)"
    )
    ap.add_argument("--split", default="splits/msrs_dev_eval.txt", help="relative to --data")
    ap.add_argument("--retrain", action="store_true", help="re-run the training commands first (hours)")
    ap.add_argument("--runs", default="runs/card", help="run folders for --retrain")
    ap.add_argument("--out", default=str(CARD))
    ap.add_argument("--models", nargs="*", help="evaluate only these card names (default all)")
    ap.add_argument("--replot", action="store_true", help="only redraw the figures from <out>/results.json")
    ap.add_argument(
        "--tables",
        action="store_true",
        help="only rewrite results.md and the card's table from <out>/results.json (no data needed)",
    )
    args = ap.parse_args()
    out = Path(args.out)
    if args.tables:
        results = json.loads((out / "results.json").read_text())
        write_markdown(results, out / "results.md")
        if out.resolve() == CARD.resolve():
            splice_into_card(card_table(results), CARD_FILE)
        return 0
    if not args.data:
        ap.error("no data folder: pass --data DIR or set IVIF_DATA=DIR (the folder holding msrs/ and splits/)")

    import torch

    torch.set_num_threads(1)
    if args.retrain:
        retrain(Path(args.runs))
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.data)
    pairs = load_pairs(root / "msrs" / "test", root / args.split)
    if args.replot:
        plot(json.loads((out / "results.json").read_text()), pairs, out)
        return 0
    previous = out / "results.json"
    if args.models and previous.is_file():  # re-evaluate some models, keep the other rows
        results = json.loads(previous.read_text())
        for part, rows in evaluate(pairs, args.models, baselines=False).items():
            results.setdefault(part, {}).update(rows)
        labels = [f"{a} minus {b}" for a, b in FUSION_GAPS]
        kept = [k for k in results["fusion_gaps"] if k in labels]  # a gap dropped from FUSION_GAPS leaves the card
        results["fusion_gaps"] = {k: results["fusion_gaps"][k] for k in sorted(kept, key=labels.index)}
        order = [*results["fusion"].keys() & set(BASELINE_NAMES)]
        for part in ("fusion", "complexity"):  # card order: baselines, then MODELS
            results[part] = {
                k: results[part][k]
                for k in sorted(
                    results[part], key=lambda k: (k not in order, list(MODELS).index(k) if k in MODELS else 0)
                )
            }
    else:
        results = evaluate(pairs, args.models)
    results["data"] = {"root": "$IVIF_DATA/msrs/test", "split": args.split, "pairs": len(pairs)}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, out / "results.md")
    if out.resolve() == CARD.resolve():  # the card's own results: its tables follow
        splice_into_card(card_table(results), CARD_FILE)
    plot(results, pairs, out)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
