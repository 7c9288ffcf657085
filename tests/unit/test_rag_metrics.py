"""Retrieval metrics against hand-computed values, ties by enumeration, fewer-than-k hits, ANN recall."""
import itertools
import math
import random

import numpy as np
import pytest

from lowres.retrieval_metrics import (ann_recall_at_k, ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank,
                                      retrieval_scores)

L2 = math.log2


def test_hand_computed_ranking():
    ranked, rel = ["a", "b", "c", "d"], {"b", "d"}
    assert precision_at_k(ranked, rel, 1) == 0.0
    assert precision_at_k(ranked, rel, 2) == 0.5
    assert recall_at_k(ranked, rel, 2) == 0.5
    assert recall_at_k(ranked, rel, 4) == 1.0
    assert reciprocal_rank(ranked, rel) == 0.5
    assert ndcg_at_k(ranked, rel, 4) == pytest.approx((1 / L2(3) + 1 / L2(5)) / (1 + 1 / L2(3)))
    assert ndcg_at_k(ranked, rel, 1) == 0.0


def test_fewer_than_k_hits_count_as_misses():
    assert precision_at_k(["a"], {"a"}, 5) == pytest.approx(0.2)
    assert recall_at_k(["a"], {"a"}, 5) == 1.0
    assert ndcg_at_k(["a"], {"a"}, 5) == 1.0
    assert ndcg_at_k(["x", "a"], {"a", "b"}, 10) == pytest.approx((1 / L2(3)) / (1 + 1 / L2(3)))
    assert precision_at_k([], {"a"}, 3) == 0.0
    assert reciprocal_rank([], {"a"}) == 0.0


def test_ties_take_the_expectation_over_orders():
    ranked, scores, rel = ["a", "b", "c"], [0.9, 0.9, 0.5], {"b"}
    assert precision_at_k(ranked, rel, 1, scores) == 0.5
    assert recall_at_k(ranked, rel, 1, scores) == 0.5
    assert ndcg_at_k(ranked, rel, 1, scores) == 0.5
    assert reciprocal_rank(ranked, rel, scores=scores) == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    assert reciprocal_rank(ranked, rel, k=1, scores=scores) == 0.5
    # without scores the given order decides
    assert precision_at_k(ranked, rel, 1) == 0.0 and reciprocal_rank(ranked, rel) == 0.5
    # two relevant in a tie of three: first hit at rank 1 w.p. 2/3, rank 2 w.p. 1/3
    assert reciprocal_rank(["a", "b", "c"], {"a", "b"}, scores=[1, 1, 1]) == pytest.approx(2 / 3 + 1 / 6)


def brute_force(fn, ranked, rel, k, scores):
    """Mean of the metric over every order of every tie group."""
    groups = [list(g) for _, g in itertools.groupby(zip(ranked, scores), key=lambda x: x[1])]
    values = [fn([item for group in combo for item, _ in group], rel, k)
              for combo in itertools.product(*[list(itertools.permutations(g)) for g in groups])]
    return float(np.mean(values))


@pytest.mark.parametrize("seed", range(5))
def test_ties_match_enumeration(seed):
    rng = random.Random(seed)
    ranked = [f"d{i}" for i in range(7)]
    scores = sorted((rng.choice([0.1, 0.5, 0.9]) for _ in ranked), reverse=True)
    rel = set(rng.sample(ranked, 3)) | {"missing"}
    for k in (1, 3, 5, 10):
        for fn in (precision_at_k, recall_at_k, ndcg_at_k):
            assert fn(ranked, rel, k, scores) == pytest.approx(brute_force(fn, ranked, rel, k, scores))
        rr = lambda r, rel_, k_: reciprocal_rank(r, rel_, k_)  # noqa: E731
        assert reciprocal_rank(ranked, rel, k, scores) == pytest.approx(brute_force(rr, ranked, rel, k, scores))


def test_duplicates_keep_first_position_and_errors():
    assert reciprocal_rank(["a", "a", "b"], {"b"}) == 0.5
    with pytest.raises(ValueError):
        precision_at_k(["a"], set(), 1)
    with pytest.raises(ValueError):
        precision_at_k(["a"], {"a"}, 0)


def test_retrieval_scores_means():
    out = retrieval_scores([["a", "b"], ["c"]], [{"a"}, {"b"}], ks=(1, 2))
    assert out["precision@1"] == 0.5 and out["recall@2"] == 0.5 and out["mrr"] == 0.5
    assert out["precision@2"] == pytest.approx(0.25)


def test_ann_recall():
    exact = np.array([[1, 2, 3], [4, 5, -1]])
    assert ann_recall_at_k(exact, exact, 3) == 1.0
    assert ann_recall_at_k(np.array([[3, 9, 1], [5, -1, -1]]), exact, 3) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert ann_recall_at_k(np.array([[9, 9, 9], [4, 5, -1]]), exact, 1) == pytest.approx(0.5)
