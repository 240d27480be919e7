"""A day/night-stratified held-out split of ``splits/msrs_dev_train.txt`` for choosing a recipe.

    python bench/heldout_split.py OUT_DIR     # writes OUT_DIR/heldout.txt and OUT_DIR/train_rest.txt

config/heldout/msrs_dev_heldout40.txt is its heldout.txt, which a training config leaves out
with ``exclude:`` on the msrs_dev_train source.

msrs_dev_eval is about half night, so the held-out set must be too: an earlier held-out set
(the last 40 training pairs, 33 day / 7 night) ranked a recipe above pixel-max on Qabf that
fell below it on msrs_dev_eval (MODEL_CARD.md, "How the recipe was chosen"). This one takes
every 6th day pair and every 6th night pair (20 + 20). A recipe is trained on train_rest.txt
and scored on heldout.txt with ``bench/val40.py --split OUT_DIR/heldout.txt``; msrs_dev_eval is
never used to choose.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's ivif_ros, as bench/model_card.py


def stratified_heldout(names: list[str], every: int = 6) -> list[str]:
    """Every ``every``-th day ('D' suffix) and night ('N' suffix) name, in list order."""
    day = [n for n in names if n.endswith("D")]
    night = [n for n in names if n.endswith("N")]
    return sorted(day[every // 2::every] + night[every // 2::every])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--data-root", type=Path, default=Path("/work/shared/data"))
    args = ap.parse_args()
    from ivif_ros.datasets.paired import read_names

    names = read_names(args.data_root / "splits" / "msrs_dev_train.txt")
    held = stratified_heldout(names)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heldout.txt").write_text("\n".join(held) + "\n")
    held_set = set(held)
    (args.out / "train_rest.txt").write_text("\n".join(n for n in names if n not in held_set) + "\n")
    print(f"{len(held)} held out ({sum(n.endswith('N') for n in held)} night), {len(names) - len(held)} to train on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
