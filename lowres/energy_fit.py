"""Least-squares fits of energy (or wall time) against tokens processed, and the Meter windows they need.

Wang et al. (2023) found fine-tuning energy linear in the tokens processed (padding included) and in wall
time. `lowres.meters.callback.StepWindows` (a Lightning callback, kept there so this module imports no
Lightning) cuts training into Meter windows of a few optimizer steps each, so one run gives
several (tokens, wall time, energy) points; the windows' lengths cycle through 1, 2 and 3 parts
(`window_sizes`), so their token counts spread even when every batch holds the same padded tokens
(`max_length` padding). `linear_fit` fits y = slope * x + intercept by least squares
(scipy.stats.linregress) and reports R². A fit that cannot be judged (fewer than 3 points or 3 distinct x
values) has NaN figures, a constant y a flat slope and no R²; either way the reason is in `note` (and in
`fit_metrics`, so result.json says why), never a made-up number.
"""
from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np

from lowres.results import energy_and_source

WINDOW_PREFIX = "steps_"
WINDOW_PATTERN = re.compile(rf"^{WINDOW_PREFIX}\d+$")
# (x, y) pairs the study fits: energy and (measured) wall time against tokens, and energy against wall time
STANDARD_FITS = (("padded_tokens", "energy_j"), ("padded_tokens", "wall_s"), ("wall_s", "energy_j"))
UNITS = {"energy_j": "J", "wall_s": "s", "padded_tokens": "token", "tokens": "token", "samples": "sample",
         "steps": "step"}
MIN_POINTS = 3  # two points always give R² = 1: a line needs a third to be judged
MIN_DISTINCT_X = 3  # ... at a third x value (two clusters of points only fix a line through their means)
WINDOW_PATTERN_PARTS = (1, 2, 3)  # relative lengths of consecutive StepWindows windows


@dataclasses.dataclass(frozen=True)
class LinearFit:
    """y = slope * x + intercept over n points; `slope_unit` is e.g. J/token."""

    x: str
    y: str
    n: int
    slope: float
    intercept: float
    r2: float
    slope_stderr: float
    note: str = ""

    @property
    def slope_unit(self) -> str:
        return f"{UNITS.get(self.y, self.y)}/{UNITS.get(self.x, self.x)}"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "slope_unit": self.slope_unit}


def linear_fit(x, y, x_name: str = "x", y_name: str = "y") -> LinearFit:
    """Ordinary least squares with intercept; pairs with a missing value are dropped first.

    Degenerate inputs give NaN figures with the reason in `note`: fewer than MIN_POINTS points, fewer than
    MIN_DISTINCT_X distinct x values, or a constant y (slope 0, R² undefined: nothing to explain).
    """
    from scipy.stats import linregress

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = float("nan")
    distinct = len(np.unique(x))
    if len(x) < MIN_POINTS:
        note = f"needs >= {MIN_POINTS} points with both {x_name} and {y_name}, got {len(x)}"
    elif distinct < MIN_DISTINCT_X:
        note = (f"needs >= {MIN_DISTINCT_X} distinct {x_name} values, got {distinct} over {len(x)} points"
                + ("; no slope" if distinct == 1 else ""))
    elif np.ptp(y) == 0:
        return LinearFit(x_name, y_name, len(x), 0.0, float(y[0]), nan, 0.0,
                         f"every point has the same {y_name}; R² undefined")
    else:
        res = linregress(x, y)
        return LinearFit(x_name, y_name, len(x), float(res.slope), float(res.intercept), float(res.rvalue**2),
                         float(res.stderr))
    return LinearFit(x_name, y_name, len(x), nan, nan, nan, nan, note)


def fit_table(points, x: str, y: str, by: tuple | list = ()):
    """One fit per group of `points` (a DataFrame): group keys, n, slope (+ unit), intercept, R², note."""
    import pandas as pd

    by = list(by)
    if points is None or points.empty or x not in points or y not in points:
        columns = [*by, *(f.name for f in dataclasses.fields(LinearFit)), "slope_unit"]
        return pd.DataFrame(columns=columns)
    groups = points.groupby(by, dropna=False, sort=True) if by else [((), points)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), **linear_fit(group[x], group[y], x, y).to_dict()})
    return pd.DataFrame(rows)


def standard_fits(points, by: tuple | list = (), pairs=STANDARD_FITS):
    """`fit_table` for each (x, y) pair, stacked."""
    import pandas as pd

    return pd.concat([fit_table(points, x, y, by) for x, y in pairs], ignore_index=True)


def fit_metrics(fits) -> dict:
    """Flat metrics for result.json: fit_<y>_vs_<x>_{slope,intercept,r2,n} per row of a fit table, plus
    fit_<y>_vs_<x>_note where the fit could not be judged (so a NaN in result.json always says why)."""
    out = {}
    for _, fit in fits.iterrows():
        for field in ("slope", "intercept", "r2", "n"):
            out[f"fit_{fit.y}_vs_{fit.x}_{field}"] = fit[field]
        if isinstance(fit.get("note"), str) and fit["note"]:
            out[f"fit_{fit.y}_vs_{fit.x}_note"] = fit["note"]
    return out


def fit_notes(fits) -> list[str]:
    """'<y> vs <x>: <why>' for every fit of a table that could not be judged (empty when all are fine)."""
    if fits is None or fits.empty or "note" not in fits:
        return []
    return [f"{f.y} vs {f.x}: {f.note}" for _, f in fits.iterrows() if isinstance(f.note, str) and f.note]


def window_points(measurements: dict, pattern: re.Pattern = WINDOW_PATTERN):
    """The windows whose name matches `pattern` (default: StepWindows') as a DataFrame of fit points."""
    import pandas as pd

    rows = []
    for name, m in measurements.items():
        m = m.to_dict() if hasattr(m, "to_dict") else m
        if not pattern.match(name) or m.get("status") != "ok":
            continue
        energy, source = energy_and_source(m)
        rows.append({"window": name, **{k: m.get(k) for k in ("wall_s", "steps", "samples", "tokens", "padded_tokens",
                                                               "co2_kg")}, "energy_j": energy, "energy_source": source})
    return pd.DataFrame(rows, columns=["window", "wall_s", "steps", "samples", "tokens", "padded_tokens", "co2_kg",
                                       "energy_j", "energy_source"])


def window_sizes(total_steps: int, windows: int, parts: tuple = WINDOW_PATTERN_PARTS) -> list[int]:
    """Steps per StepWindows window: about `windows` windows covering `total_steps`, their lengths in the
    proportions `parts` in turn (1, 2, 3, 1, 2, 3, ...), so the windows' token counts spread even when every
    step processes the same tokens. min(windows, total_steps) windows of >= 1 step, summing to `total_steps`."""
    if total_steps < 1 or windows < 1:
        raise ValueError(f"need total_steps >= 1 and windows >= 1, got {total_steps}, {windows}")
    weights = [parts[i % len(parts)] for i in range(min(windows, total_steps))]
    spare = total_steps - len(weights)  # one step each, the rest shared in proportion to the weights
    bounds = [round(spare * c / sum(weights)) for c in itertools.accumulate(weights)]
    return [1 + b - a for a, b in zip([0, *bounds], bounds)]
