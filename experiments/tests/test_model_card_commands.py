"""The model card's one-command reproduction (experiments/model_card.py --retrain) stays
runnable: every training command parses with the real ``ivif`` parser and its config loads,
every run it starts from (--teacher, --init-from) is written by an earlier row, and every row's
weights are in the repository. Retraining itself takes hours; this checks the plan without
running it."""

from pathlib import Path

from ivif_ros.cli import build_parser
from ivif_ros.training.config import load_config

import model_card

REPO = model_card.REPO
RUNS = Path("/runs")  # any root: the commands are checked as text, nothing is written


def _planned():
    """(name, weights, input mode, parsed args) per row, in --retrain order."""
    parser = build_parser()
    for name, (weights, mode, command) in model_card.MODELS.items():
        argv = command.format(runs=RUNS).split()
        assert argv[0] == "ivif", name
        yield name, weights, mode, parser.parse_args(argv[1:])


def test_every_card_row_is_shipped_and_its_command_parses_and_loads_its_config():
    for name, weights, mode, args in _planned():
        for suffix in (".safetensors", ".json"):
            assert (REPO / weights).with_suffix(suffix).is_file(), (name, suffix)
        assert args.command == "train" and args.kind in ("teacher", "student"), name
        cfg = load_config(REPO / args.config, {"input_mode": args.input_mode, "seed": args.seed})
        assert cfg.input_mode == mode, name  # the row is scored on the input it was trained on


def test_every_run_a_command_starts_from_is_written_by_an_earlier_row():
    written_runs: set[Path] = set()
    for name, weights, _, args in _planned():
        for path in filter(None, (args.teacher, args.init_from)):
            assert Path(path).parent in written_runs, f"{name} starts from {path}, which no earlier row writes"
        written_runs.add(Path(args.out))


def test_the_fusion_gap_table_is_written_from_results(tmp_path):
    fusion_gap = {
        k: {"observed": 0.0001, "ci95": [-0.002, 0.0021], "p_a_better": 0.53} for k in ("VIF", "Qabf", "SSIM")
    }
    results = {
        "fusion": {},
        "complexity": {},
        "fusion_gaps": {"student minus pixel max": fusion_gap},
    }
    model_card.write_markdown(results, tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text()
    assert "| student minus pixel max | " + " | ".join(["+0.0001 (-0.0020 .. +0.0021, 53%)"] * 3) + " |" in text


def test_every_fusion_gap_compares_a_fused_card_row_with_a_baseline():
    for a, b in model_card.FUSION_GAPS:
        assert model_card.MODELS[a][1] == "fused" and b in model_card.BASELINE_NAMES
