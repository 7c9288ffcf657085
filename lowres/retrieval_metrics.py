"""Ranked-retrieval metrics with binary relevance: precision@k, recall@k, MRR, nDCG@k, ANN recall@k.

Conventions (each is tested against hand-computed cases):
- A ranking is a list of ids, best first; repeated ids keep their first (best) position.
- Fewer than k hits: the missing positions count as non-relevant, so precision@k still divides by k, and
  recall@k / nDCG@k simply cannot reach 1 when too few relevant ids were returned.
- Ties: when `scores` are given, ids with equal scores form a tie group whose internal order is arbitrary.
  Metrics are then the expected value over all orders of each group (McSherry & Najork, ECIR 2008): each
  position in a group holds a relevant id with probability r/g, which is exact for the linear metrics
  (precision, recall, DCG) and computed exactly for the reciprocal rank. Without scores the order is taken
  as given (ties broken by position).
- nDCG uses gain 1 per relevant id and discount 1/log2(rank+1); the ideal ranking puts min(k, |relevant|)
  relevant ids first.
"""
from __future__ import annotations

import math
from math import comb
from typing import Iterable, Sequence

import numpy as np


def dedupe(ranked: Sequence, scores: Sequence[float] | None = None) -> tuple[list, list | None]:
    """Drop repeated ids, keeping the first occurrence (and its score)."""
    seen, ids, kept = set(), [], []
    for i, item in enumerate(ranked):
        if item in seen:
            continue
        seen.add(item)
        ids.append(item)
        kept.append(None if scores is None else float(scores[i]))
    return ids, (None if scores is None else kept)


def tie_groups(scores: Sequence[float] | None, n: int) -> list[tuple[int, int]]:
    """[start, end) runs of equal scores (scores must be sorted best first); singletons without scores."""
    if scores is None:
        return [(i, i + 1) for i in range(n)]
    if len(scores) != n:
        raise ValueError(f"{len(scores)} scores for {n} ranked ids")
    groups, start = [], 0
    for i in range(1, n + 1):
        if i == n or scores[i] != scores[start]:
            groups.append((start, i))
            start = i
    return groups


def expected_gains(ranked: Sequence, relevant: Iterable, scores: Sequence[float] | None = None) -> list[float]:
    """Probability that each rank holds a relevant id (1/0 without ties; r/g inside a tie group)."""
    relevant = set(relevant)
    ranked, scores = dedupe(ranked, scores)
    gains = [0.0] * len(ranked)
    for start, end in tie_groups(scores, len(ranked)):
        share = sum(item in relevant for item in ranked[start:end]) / (end - start)
        gains[start:end] = [share] * (end - start)
    return gains


def _check(relevant: Iterable, k: int | None = None) -> set:
    relevant = set(relevant)
    if not relevant:
        raise ValueError("no relevant ids: the metric is undefined for this query")
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return relevant


def precision_at_k(ranked: Sequence, relevant: Iterable, k: int, scores: Sequence[float] | None = None) -> float:
    _check(relevant, k)
    return sum(expected_gains(ranked, relevant, scores)[:k]) / k


def recall_at_k(ranked: Sequence, relevant: Iterable, k: int, scores: Sequence[float] | None = None) -> float:
    relevant = _check(relevant, k)
    return sum(expected_gains(ranked, relevant, scores)[:k]) / len(relevant)


def ndcg_at_k(ranked: Sequence, relevant: Iterable, k: int, scores: Sequence[float] | None = None) -> float:
    relevant = _check(relevant, k)
    gains = expected_gains(ranked, relevant, scores)[:k]
    dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def reciprocal_rank(ranked: Sequence, relevant: Iterable, k: int | None = None,
                    scores: Sequence[float] | None = None) -> float:
    """1/rank of the first relevant id (0 if none within k); expected value when the first hit is in a tie."""
    relevant = _check(relevant, k)
    ranked, scores = dedupe(ranked, scores)
    for start, end in tie_groups(scores, len(ranked)):
        g = end - start
        r = sum(item in relevant for item in ranked[start:end])
        if r == 0:
            continue
        # P(first relevant of the group sits at offset j) = C(g-j-1, r-1) / C(g, r)
        return sum(comb(g - j - 1, r - 1) / comb(g, r) / (start + j + 1)
                   for j in range(g - r + 1) if k is None or start + j < k)
    return 0.0


def retrieval_scores(rankings: Sequence[Sequence], relevants: Sequence[Iterable], ks: Sequence[int] = (1, 3, 5, 10),
                     scores: Sequence[Sequence[float]] | None = None) -> dict:
    """Mean precision@k, recall@k, nDCG@k for each k, and MRR (uncut), over queries."""
    if len(rankings) != len(relevants):
        raise ValueError(f"{len(rankings)} rankings for {len(relevants)} relevance sets")
    score_of = (lambda i: None) if scores is None else (lambda i: scores[i])  # noqa: E731
    out: dict[str, float] = {}
    for k in ks:
        for name, fn in (("precision", precision_at_k), ("recall", recall_at_k), ("ndcg", ndcg_at_k)):
            values = [fn(r, rel, k, score_of(i)) for i, (r, rel) in enumerate(zip(rankings, relevants))]
            out[f"{name}@{k}"] = float(np.mean(values)) if values else float("nan")
    rr = [reciprocal_rank(r, rel, scores=score_of(i)) for i, (r, rel) in enumerate(zip(rankings, relevants))]
    out["mrr"] = float(np.mean(rr)) if rr else float("nan")
    return out


def ann_recall_at_k(approx_ids, exact_ids, k: int) -> float:
    """Mean |approx top-k ∩ exact top-k| / |exact top-k| over queries (FAISS's -1 padding is ignored)."""
    approx, exact = np.asarray(approx_ids)[:, :k], np.asarray(exact_ids)[:, :k]
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(f"{approx.shape[0]} approximate result rows for {exact.shape[0]} exact rows")
    values = []
    for a, e in zip(approx, exact):
        truth = set(e[e >= 0].tolist())
        if truth:
            values.append(len(truth & set(a[a >= 0].tolist())) / len(truth))
    return float(np.mean(values)) if values else float("nan")
