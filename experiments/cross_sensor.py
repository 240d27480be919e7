"""Cross-sensor protocol: fusion scores on MSRS dev_eval, TNO and VIFB, one table per set.

    python experiments/cross_sensor.py --data $IVIF_DATA          # baselines + the shipped student (~10 min)
    python experiments/cross_sensor.py --student runs/loso_tno/student.safetensors --heldout tno

Every set is scored like ``ivif eval`` does (``metrics.dataset_eval.evaluate``, CDDFuse
conventions): pixel-max, mean and GFF (``core.baselines``) and each ``--student`` through the
node's ``FusionPipeline``, columns EN SD SF AG MI SCD VIF Qabf SSIM and contrast (the fused
image's local contrast over the visible image's in its well-exposed regions, below 1 = haze).

Leave-one-sensor-out: a student trained with ``experiments/configs/loso_without_tno.yaml`` (or
``..._vifb``) is evaluated with ``--heldout tno`` (``vifb``). Which sets are in a student's
training data is read from its sidecar (``training.config.data``); ``--heldout`` states the
expectation and is checked against it, so a table cannot claim a held-out sensor the weights
were trained on. MSRS dev_eval is never trained on (the recipes use ``msrs_dev_train``).

Writes ``results.json`` and ``results.md`` (tables, and per student whether it beats pixel-max
on VIF, Qabf and SSIM and keeps AG and SF) and ``<set>_scores.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from ivif_ros.metrics.contrast import CONTRAST, CONTRAST_NOTE  # noqa: E402
from ivif_ros.metrics.dataset_eval import MODEL_PREFIX, SCORE_NAMES, _json_safe  # noqa: E402


@dataclass(frozen=True)
class EvalSet:
    title: str
    root: str  # relative to the data folder
    split: str | None = None  # names file relative to the data folder; None: every pair


SETS = {
    "msrs": EvalSet("MSRS dev_eval", "msrs/test", "splits/msrs_dev_eval.txt"),
    "tno": EvalSet("TNO", "tno"),
    "vifb": EvalSet("VIFB", "other/vifb"),
}
#: Sets a leave-one-sensor-out student can be trained without.
HELDOUT_CHOICES = ("tno", "vifb")
#: ``core.baselines`` key -> table name.
BASELINES = {"max": "pixel-max", "mean": "mean", "gff": "GFF"}
DEFAULT_STUDENT = REPO / "ivif_ros" / "weights" / "student.safetensors"
#: The issue's must-show: beat pixel-max on these ...
BEAT_KEYS = ("VIF", "Qabf", "SSIM")
#: ... and keep at least its gradient on these.
KEEP_KEYS = ("AG", "SF")


def training_sources(weights: Path) -> list[dict] | None:
    """The ``data`` entries of the training config recorded in the weights' sidecar, or None."""
    from ivif_ros.weights import resolve

    _, sidecar = resolve(weights)
    meta = json.loads(sidecar.read_text())
    config = (meta.get("training") or {}).get("config") or {}
    return config.get("data")


def _same_root(source_root: str, set_root: str) -> bool:
    parts, want = Path(str(source_root)).parts, Path(set_root).parts
    return parts[-len(want) :] == want


def in_training(sources: list[dict] | None, eval_set: EvalSet) -> bool | None:
    """Whether ``eval_set``'s pairs are in the training data: a source with its root and, for a
    split set, no names file of its own (a names file there picks the training pairs, and the
    recipes keep dev_eval out of it). None when the sidecar records no training data."""
    if sources is None:
        return None
    for s in sources:
        if _same_root(s.get("root", ""), eval_set.root) and (eval_set.split is None or not s.get("split")):
            return True
    return False


def sample_status(weights: Path, heldout: str | None) -> dict[str, bool | None]:
    """Set key -> in the student's training data (True), not (False), unknown (None).

    Raises ``SystemExit`` with the reason when ``heldout`` names a set the sidecar says was trained on.
    """
    sources = training_sources(weights)
    status = {key: in_training(sources, s) for key, s in SETS.items()}
    if heldout and status[heldout]:
        raise SystemExit(
            f"{weights}: --heldout {heldout} but its sidecar lists {SETS[heldout].root} in the training data "
            f"(training.config.data); train it with experiments/configs/loso_without_{heldout}.yaml"
        )
    if heldout and status[heldout] is None:
        status[heldout] = False  # the sidecar does not say; take --heldout's word
    return status


def student_labels(students: list[Path]) -> dict[Path, str]:
    """Table names: ``student`` for a single student, else ``student (<file stem, or its folder
    for a file named student>)``, or the whole path where those names collide."""
    if len(students) == 1:
        return {students[0]: "student"}
    short = {w: f"student ({w.stem if w.stem != 'student' else w.parent.name})" for w in students}
    if len(set(short.values())) < len(students):
        return {w: f"student ({w})" for w in students}
    return short


def evaluate_set(data: Path, key: str, students: list[Path], backend: str, limit: int | None) -> dict:
    """Scores of every method on one set: ``{title, images, means: {method: {score: mean}}}``."""
    from ivif_ros.datasets.paired import PairedDataset
    from ivif_ros.metrics.dataset_eval import evaluate, resolve_methods

    s = SETS[key]
    dataset = PairedDataset(data / s.root, data / s.split if s.split else None)
    specs = list(BASELINES) + [f"{MODEL_PREFIX}{w}" for w in students]
    methods = resolve_methods(specs, backend, frame_hw=dataset[0].ir.shape[:2])
    result = evaluate(dataset, methods, "cddfuse", limit, sample_count=0)
    labels = {**BASELINES, **{f"{MODEL_PREFIX}{w}": name for w, name in student_labels(students).items()}}
    means = result.means()
    return {
        "title": s.title,
        "root": s.root,
        "split": s.split,
        "images": len(result.images),
        # contrast is undefined where the visible image has no well-exposed texture (dark night frames)
        "contrast_images": sum(math.isfinite(row[CONTRAST]) for row in result.per_image[result.methods[0]]),
        "means": {labels[m]: means[m] for m in result.methods},
    }


def verdict(means: dict[str, dict[str, float]], method: str) -> dict[str, bool]:
    """The issue's must-show for one method against pixel-max on one set."""
    ref, got = means[BASELINES["max"]], means[method]
    return {
        **{f"beats {k}": got[k] > ref[k] for k in BEAT_KEYS},
        **{f"keeps {k}": got[k] >= ref[k] for k in KEEP_KEYS},
    }


def _fmt(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.2f}" if abs(v) >= 10 else f"{v:.3f}"


def set_table(entry: dict) -> list[str]:
    """Markdown table of one set, the best value of each column in bold."""
    means = entry["means"]
    best = {k: max((m[k] for m in means.values() if math.isfinite(m[k])), default=math.nan) for k in SCORE_NAMES}
    lines = ["| method | " + " | ".join(SCORE_NAMES) + " |", "|---|" + "---:|" * len(SCORE_NAMES)]
    for name, m in means.items():
        cells = [f"**{_fmt(m[k])}**" if m[k] == best[k] else _fmt(m[k]) for k in SCORE_NAMES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def sample_text(status: bool | None) -> str:
    return {True: "in its training data", False: "held out", None: "unknown (no training record)"}[status]


def write_markdown(results: dict, path: Path) -> None:
    lines = [
        "# Cross-sensor fusion scores",
        "",
        f"Command: `{results['command']}`",
        "",
        "CDDFuse metric conventions (`ivif_ros/metrics/fusion.py`), as `ivif eval`; means over the pairs. "
        + CONTRAST_NOTE,
        "",
    ]
    for key, entry in results["sets"].items():
        lines += [f"## {entry['title']} ({entry['images']} pairs, `{entry['root']}`)", ""]
        for student, status in results["in_sample"].items():
            lines.append(f"- {student}: {sample_text(status[key])}")
        lines += [
            "",
            *set_table(entry),
            "",
            f"`contrast`: mean over the {entry['contrast_images']} of {entry['images']} pairs whose visible image has well-exposed texture.",
            "",
        ]
        for student in results["in_sample"]:
            v = verdict(entry["means"], student)
            lines.append(
                f"- {student} vs pixel-max: " + ", ".join(f"{k} {'yes' if ok else 'no'}" for k, ok in v.items())
            )
        lines += ["", f"![{entry['title']}]({key}_scores.png)", ""]
    path.write_text("\n".join(lines))


def _shown(path: Path) -> str:
    """A path as written in results: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data",
        default=os.environ.get("IVIF_DATA"),
        help="folder holding msrs/, tno/, other/vifb/ and splits/ (default: $IVIF_DATA)",
    )
    ap.add_argument(
        "--student",
        nargs="*",
        type=Path,
        default=[DEFAULT_STUDENT],
        help="student weights (.safetensors with .json sidecar); default the shipped one; none: baselines only",
    )
    ap.add_argument("--heldout", choices=HELDOUT_CHOICES, help="the set the given students were trained without")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {', '.join(SETS)}")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cross_sensor", help="output folder")
    ap.add_argument("--limit", type=int, help="only the first N pairs of each set (a quick check)")
    ap.add_argument("--backend", default="torch", help="inference backend of the students (default torch)")
    args = ap.parse_args(argv)
    if not args.data:
        ap.error("give --data or set IVIF_DATA")
    data = Path(args.data)
    keys = [k.strip() for k in args.sets.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SETS]
    if unknown or not keys:
        ap.error(f"--sets: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(SETS)}")
    for k in keys:
        s = SETS[k]
        for p in filter(None, (data / s.root, data / s.split if s.split else None)):
            if not p.exists():
                ap.error(f"{p} not found: --data must be the data folder holding {s.root}")
    if args.heldout and not args.student:
        ap.error("--heldout describes the students; give --student")

    students = list(dict.fromkeys(args.student))
    names = student_labels(students)
    in_sample = {names[w]: sample_status(w, args.heldout) for w in students}
    for student, status in in_sample.items():
        print(f"{student}: " + "; ".join(f"{SETS[k].title} {sample_text(status[k])}" for k in SETS), flush=True)

    from ivif_ros.report.plots import metric_bars

    args.out.mkdir(parents=True, exist_ok=True)
    sets = {}
    for key in keys:
        sets[key] = evaluate_set(data, key, students, args.backend, args.limit)
        metric_bars(sets[key]["means"], SCORE_NAMES, args.out / f"{key}_scores.png", sets[key]["title"])
        print("\n".join([f"\n{sets[key]['title']} ({sets[key]['images']} pairs)", *set_table(sets[key])]), flush=True)
    command = "python experiments/cross_sensor.py " + " ".join((argv if argv is not None else sys.argv[1:])).replace(
        str(data), "$IVIF_DATA"
    )
    results = {
        "command": command.strip(),
        "generated": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "students": {names[w]: _shown(w) for w in students},
        "heldout": args.heldout,
        "in_sample": in_sample,
        "sets": sets,
        "verdicts": {s: {k: verdict(sets[k]["means"], s) for k in sets} for s in in_sample},
    }
    (args.out / "results.json").write_text(json.dumps(_json_safe(results), indent=2) + "\n")
    write_markdown(results, args.out / "results.md")
    print(f"\nwrote {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
