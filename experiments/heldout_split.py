"""A day/night-stratified held-out split of ``splits/msrs_dev_train.txt`` for choosing a recipe.

    python experiments/heldout_split.py OUT_DIR     # writes OUT_DIR/heldout.txt and OUT_DIR/train_rest.txt

experiments/heldout/msrs_dev_heldout40.txt is its heldout.txt, which a training config leaves out
with ``exclude:`` on the msrs_dev_train source.

msrs_dev_eval is about half night, so the held-out set must be too: an earlier held-out set
(the last 40 training pairs, 33 day / 7 night) ranked a recipe above pixel-max on Qabf that
fell below it on msrs_dev_eval (RECIPES.md). This one takes
every 6th day pair and every 6th night pair (20 + 20). A recipe is trained on train_rest.txt
and scored on heldout.txt with ``experiments/val40.py --split OUT_DIR/heldout.txt``; msrs_dev_eval is
never used to choose.

    python experiments/heldout_split.py --blocks 2 OUT_DIR   # whole blocks instead, as msrs_dev_eval

Every-6th-frame pairs each have their adjacent frame (4 frame numbers on, a near-identical view)
in the training data, while msrs_dev_eval is whole blocks of 20 consecutive frames that training
never sees; recipes K-R were ranked differently on the two (RECIPES.md). ``--blocks N``
holds out N whole day blocks and N whole night blocks of msrs_dev_train, cut as the data README
cuts msrs_dev_eval's (20 consecutive names of one kind, by frame number), so that selection sees
unseen stretches of road too. It costs 40 training pairs per N and suits new recipes only: every
run before it trained on those blocks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_args import add_data_argument  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's ivif_ros, as experiments/model_card.py


def stratified_heldout(names: list[str], every: int = 6) -> list[str]:
    """Every ``every``-th day ('D' suffix) and night ('N' suffix) name, in list order."""
    day = [n for n in names if n.endswith("D")]
    night = [n for n in names if n.endswith("N")]
    return sorted(day[every // 2 :: every] + night[every // 2 :: every])


def frame_number(name: str) -> int:
    """MSRS names are a zero-padded frame number and D or N: '00016N' -> 16."""
    return int(name[:-1])


def blockwise_heldout(names: list[str], per_kind: int, block: int = 20) -> list[str]:
    """``per_kind`` whole blocks of ``block`` names of each kind (day, night), evenly spread.

    Each kind's names are sorted by frame number and cut into consecutive blocks of ``block``
    (msrs_dev_train is the MSRS test split minus every third such block, so this recovers the
    original blocks); only full blocks are eligible.
    """
    held = []
    for kind in ("D", "N"):
        ordered = sorted((n for n in names if n.endswith(kind)), key=frame_number)
        full = [ordered[i : i + block] for i in range(0, len(ordered) - block + 1, block)]
        if not 0 < per_kind <= len(full):
            raise SystemExit(f"--blocks {per_kind}: give 1 to {len(full)}, the full {kind} blocks of {block} names")
        # Spread over the drive, not side by side, so that two held-out blocks are not one scene.
        picks = [round((i + 0.5) * len(full) / per_kind - 0.5) for i in range(per_kind)]
        held += [n for i in picks for n in full[i]]
    return sorted(held)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    add_data_argument(ap)
    ap.add_argument(
        "--blocks", type=int, default=0, help="hold out this many whole day and night blocks instead of every 6th pair"
    )
    args = ap.parse_args()
    from ivif_ros.datasets.paired import read_names

    names = read_names(args.data / "splits" / "msrs_dev_train.txt")
    held = blockwise_heldout(names, args.blocks) if args.blocks else stratified_heldout(names)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heldout.txt").write_text("\n".join(held) + "\n")
    held_set = set(held)
    (args.out / "train_rest.txt").write_text("\n".join(n for n in names if n not in held_set) + "\n")
    print(f"{len(held)} held out ({sum(n.endswith('N') for n in held)} night), {len(names) - len(held)} to train on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
