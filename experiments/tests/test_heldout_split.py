"""experiments/heldout_split.py's block-wise hold-out recovers whole blocks, as msrs_dev_eval's are cut."""

import pytest

import heldout_split


def _dev_split(day: int = 179, night: int = 182, block: int = 20):
    """Names cut as the data README cuts MSRS test: per kind, blocks of 20 by frame number,
    every third block (index 2, 5, ...) to eval. Returns (train names, its original blocks)."""
    train, blocks = [], []
    for kind, count in (("D", day), ("N", night)):
        names = [f"{4 * i + (1 if kind == 'N' else 0):05d}{kind}" for i in range(count)]
        for b, start in enumerate(range(0, count, block)):
            if b % 3 != 2:
                chunk = names[start : start + block]
                train += chunk
                blocks.append(chunk)
    return train, blocks


def test_blockwise_holds_out_whole_original_blocks():
    train, blocks = _dev_split()
    held = heldout_split.blockwise_heldout(list(reversed(train)), per_kind=2)  # order must not matter
    assert len(held) == 80 and sum(n.endswith("N") for n in held) == 40
    whole = [b for b in blocks if set(b) <= set(held)]
    assert len(whole) == 4 and sum(len(b) for b in whole) == 80  # nothing but whole blocks
    assert all(len(b) == 20 for b in whole)


def test_blockwise_spreads_blocks_and_refuses_too_many():
    train, _ = _dev_split()
    day = sorted(int(n[:-1]) for n in heldout_split.blockwise_heldout(train, per_kind=2) if n.endswith("D"))
    assert day[-1] - day[0] > 200  # two blocks far apart, not neighbours
    for bad in (7, 0, -1):
        with pytest.raises(SystemExit, match="give 1 to 6, the full D blocks"):
            heldout_split.blockwise_heldout(train, per_kind=bad)


def test_stratified_heldout_takes_every_sixth_of_each_kind():
    train, _ = _dev_split()
    held = heldout_split.stratified_heldout(train)
    assert sum(n.endswith("D") for n in held) == 20 and sum(n.endswith("N") for n in held) == 20
