"""SQuAD v1.1 answer metrics: the official normalization, exact match, token F1, max over gold answers.

Mirrors the official `evaluate-v1.1.py` (Rajpurkar et al., 2016) line for line in behaviour, except that
scores are fractions in [0, 1] (the official script prints percentages) so they sit beside accuracy.
Shared by the RAG study and any other study that scores short answers.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable, Sequence

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, drop articles (a, an, the), collapse whitespace (official order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-level F1 over normalized tokens (bag of words, counts clipped). Empty overlap -> 0."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def max_over_gold(metric: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    """SQuAD scores a prediction against every gold answer and keeps the best."""
    if isinstance(golds, str) or not golds:
        raise ValueError(f"golds must be a non-empty list of answer strings, got {golds!r}")
    return max(metric(prediction, gold) for gold in golds)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict:
    """Mean EM and F1 (fractions) over questions; `golds[i]` is the list of gold answers of question i."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} questions")
    if not predictions:
        return {"exact_match": float("nan"), "f1": float("nan"), "n": 0}
    em = [max_over_gold(exact_match, p, g) for p, g in zip(predictions, golds)]
    f = [max_over_gold(f1, p, g) for p, g in zip(predictions, golds)]
    return {"exact_match": sum(em) / len(em), "f1": sum(f) / len(f), "n": len(em)}
