"""The model card's results table is the one experiments/model_card.py writes from
experiments/model_card/results.json, so the card cannot drift from the results."""

import json

import model_card


def test_the_card_table_is_written_from_results_json():
    results = json.loads((model_card.CARD / "results.json").read_text())
    card = model_card.CARD_FILE.read_text()
    table = card.split(model_card.CARD_BEGIN, 1)[1].split(model_card.CARD_END, 1)[0].strip()
    assert table == model_card.card_table(results)
    assert "| student (shipped; distilled) | 1.096 | 0.714 | 1.013 | 0.225 |" in table


def test_results_cover_every_card_row_and_baseline():
    results = json.loads((model_card.CARD / "results.json").read_text())
    assert set(results["detection"]) == set(model_card.MODELS)
    assert set(model_card.BASELINE_NAMES) <= set(results["fusion"])
    assert set(results["gaps"]) == {label for label, _, _ in model_card.GAPS}
