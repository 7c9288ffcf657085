import math

import pytest

from lowres.qa_metrics import exact_match, f1, max_over_gold, normalize_answer, squad_scores


@pytest.mark.parametrize("raw, normalized", [
    ("The Denver Broncos!", "denver broncos"),
    ("  an   apple, a pear ", "apple pear"),
    ("Levi's Stadium", "levis stadium"),
    ("theater", "theater"),            # articles only as whole words
    ("A", ""),
    ("24–10", "24–10"),                # the en dash is not ASCII punctuation in the official script
])
def test_normalize_answer_follows_official_rules(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_exact_match_ignores_case_punctuation_articles():
    assert exact_match("the Broncos.", "Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0


def test_f1_token_overlap():
    assert f1("Denver Broncos team", "the Denver Broncos") == pytest.approx(0.8)  # P 2/3, R 1
    assert f1("Broncos Broncos", "Broncos") == pytest.approx(2 * 0.5 * 1 / 1.5)  # counts are clipped
    assert f1("Carolina", "Denver Broncos") == 0.0
    assert f1("", "Denver") == 0.0
    assert f1("the", "a") == 0.0  # both empty after normalization: v1.1 scores 0


def test_max_over_gold_and_means():
    assert max_over_gold(f1, "Denver", ["Carolina Panthers", "Denver Broncos"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        max_over_gold(f1, "x", [])
    scores = squad_scores(["Denver Broncos", "six"], [["Denver Broncos"], ["seven", "7"]])
    assert scores == {"exact_match": 0.5, "f1": 0.5, "n": 2}
    assert math.isnan(squad_scores([], [])["f1"])
    with pytest.raises(ValueError):
        squad_scores(["a"], [])
