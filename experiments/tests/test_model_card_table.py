"""The model card's results table is the one experiments/model_card.py writes from
experiments/model_card/results.json, so the card cannot drift from the results."""

import json

import model_card


def test_the_card_table_is_written_from_results_json():
    results = json.loads((model_card.CARD / "results.json").read_text())
    card = model_card.CARD_FILE.read_text()
    table = card.split(model_card.CARD_BEGIN, 1)[1].split(model_card.CARD_END, 1)[0].strip()
    assert table == model_card.card_table(results)
    assert "| student (shipped; recipe E + detector coupling) | 1.107 | 0.720 | 1.008 |" in table


def test_results_cover_every_card_row_and_baseline():
    results = json.loads((model_card.CARD / "results.json").read_text())
    assert set(results["complexity"]) == set(model_card.MODELS)
    fused = {name for name, (_, mode, _) in model_card.MODELS.items() if mode == "fused"}
    assert set(results["fusion"]) == fused | set(model_card.BASELINE_NAMES)
    assert set(results["fusion_gaps"]) == {f"{a} minus {b}" for a, b in model_card.FUSION_GAPS}
