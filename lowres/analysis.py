"""Helpers every study's analysis (lowres/studies/<study>/analysis.py) and the report share.

Contract (the cross-study report calls these, so no plotting code is written twice): a study's analysis
module exposes
    key_table(df: pandas.DataFrame) -> pandas.DataFrame        # df = lowres.results.collect(study)
    key_figure(df: pandas.DataFrame, ax=None) -> matplotlib Axes
plus whatever else its notebook needs. Run-level costs (energy, latency, peak memory, strategy, headline
quality) come from the `summary.*` columns (lowres.summary), never from window columns.
"""
from __future__ import annotations

import math


def ok_runs(df):
    """The runs whose status is ok (none when the frame has no status column, e.g. nothing collected)."""
    return df[df["status"] == "ok"] if "status" in df else df.iloc[0:0]


def frame_with_run(df, current):
    """The collected study frame plus `current` (the RunResult of a run not saved yet), replacing an older copy:
    a notebook's sweep tables and figures include the run it is finishing."""
    import pandas as pd

    from lowres import results

    others = df[df["run_id"] != current.run_id] if "run_id" in df else df
    return pd.concat([others, pd.DataFrame([results.result_row(current)])], ignore_index=True)


def run_table(runs, columns: dict):
    """`run_id` and each of `columns` ({result column: table name}) that the results have, renamed."""
    return runs[["run_id"] + [c for c in columns if c in runs]].rename(columns=columns).reset_index(drop=True)


def column(df, name, default=math.nan):
    """A column as floats where it exists, else a constant (results from older or other runs lack some)."""
    import pandas as pd

    if name in df:
        return pd.to_numeric(df[name], errors="coerce")
    return pd.Series(default, index=df.index, dtype=float)


def text(df, name):
    """A column as it is where it exists, else None for every row."""
    import pandas as pd

    return df[name] if name in df else pd.Series(None, index=df.index, dtype=object)


def axes_or_new(ax, figsize=(6, 4)):
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def empty_axes(ax, message: str):
    """An axes that says why there is nothing to draw (instead of an empty plot)."""
    ax = axes_or_new(ax)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()
    return ax


def pareto_mask(qualities, *costs) -> list[bool]:
    """True where no other point is at least as good on quality and on every cost and better on one
    (quality: higher is better; costs: lower is better; a missing cost counts as the worst)."""
    def cost(values, i):
        v = values[i]
        return math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else v

    n = len(qualities)
    front = []
    for i in range(n):
        dominated = False
        for j in range(n):
            if j == i:
                continue
            no_worse = qualities[j] >= qualities[i] and all(cost(c, j) <= cost(c, i) for c in costs)
            better = qualities[j] > qualities[i] or any(cost(c, j) < cost(c, i) for c in costs)
            dominated = dominated or (no_worse and better)
        front.append(not dominated)
    return front


def pareto_front(points, cost: str, quality: str = "accuracy"):
    """pandas: True where the row is on the quality-vs-`cost` Pareto front (rows missing either: never)."""
    import pandas as pd

    front = pd.Series(False, index=points.index)
    valid = points.dropna(subset=[cost, quality])
    mask = pareto_mask(valid[quality].tolist(), valid[cost].tolist())
    front[valid.index] = mask
    return front
