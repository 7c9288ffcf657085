"""95% intervals for the figures lowres sets beside published ones: over seeds (Student t), for an accuracy on
n examples (Wilson), for the difference of two accuracies on the same n examples (normal approximation)."""
from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval over seeds; fewer than 2 values -> the CI is NaN."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.sem(values) * stats.t.ppf((1 + confidence) / 2, len(values) - 1))
    return mean, mean - half, mean + half


def wilson_ci(p: float, n: int | None, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion p measured on n examples (NaN without n)."""
    if n is None or n < 1 or p is None or not 0 <= p <= 1:
        return float("nan"), float("nan")
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def diff_ci(p1: float, p2: float, n: int | None, z: float = Z95, n2: int | None = None) -> tuple[float, float]:
    """Interval of p2 - p1, two accuracies on n examples each, or on n and n2 (normal approximation; NaN
    without n)."""
    n2 = n if n2 is None else n2
    if n is None or n < 1 or n2 is None or n2 < 1:
        return float("nan"), float("nan")
    half = z * math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n2)
    return p2 - p1 - half, p2 - p1 + half
