"""Parallelism study analysis (Maina et al. 2025): single vs DataParallel vs DDP, and DDP's scaling efficiency.

The runs table, speed-up with 95% CIs over seeds and the comparison with the paper come from
`lowres.studies.precision.analysis` (the same run, another grid); this module adds scaling efficiency:
throughput with N workers / (N x throughput with one), paired by seed.
"""
from __future__ import annotations

import pandas as pd

from lowres.analysis import axes_or_new, empty_axes
from lowres.stats import mean_ci
from lowres.studies.precision import analysis as precision_analysis
from lowres.studies.precision.analysis import (accuracy_figure, comparison_text, key_table, memory_figure,
                                               metric_figure, power_figure, runs, speedup_figure, speedup_table)

__all__ = ["accuracy_figure", "comparison_text", "key_figure", "key_table", "memory_figure", "overview_figure",
           "power_figure", "scaling_figure", "scaling_table", "speedup_figure", "speedup_table", "tables"]
SETTING = ["model", "dataset", "hardware", "batch_size", "precision_ran"]


def scaling_table(df) -> pd.DataFrame:
    """For each multi-worker configuration (DDP ranks, or DP replicas that really ran): samples/s with N workers
    over N x samples/s of the single-device run at the same setting and total batch (1.0 = perfect scaling),
    mean and 95% CI over seeds, beside the plain speed-up (N workers / one)."""
    data = runs(df)
    data = data[(data["status"] == "ok")].dropna(subset=["samples_per_s"])
    single = data[data["strategy"] == "single"]
    multi = data[(data["strategy"] != "single") & (data["processes"] > 1)]
    columns = [*SETTING, "strategy", "workers", "seeds", "speedup", "scaling_efficiency",
               "scaling_efficiency_ci_low", "scaling_efficiency_ci_high"]
    if single.empty or multi.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in multi.groupby([*SETTING, "strategy", "processes"], dropna=False, sort=True):
        setting = dict(zip([*SETTING, "strategy", "workers"], key))
        reference = single.loc[(single[SETTING] == pd.Series({k: setting[k] for k in SETTING})).all(axis=1)]
        if reference.empty:
            continue
        by_seed = reference.groupby("seed")["samples_per_s"].mean()
        speedups = [row.samples_per_s / by_seed.get(row.seed, by_seed.mean()) for row in group.itertuples()]
        efficiency = [s / setting["workers"] for s in speedups]
        row = {**setting, "seeds": group["seed"].nunique(), "speedup": mean_ci(speedups)[0]}
        mean, low, high = mean_ci(efficiency)
        row.update(scaling_efficiency=mean, scaling_efficiency_ci_low=low, scaling_efficiency_ci_high=high)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def key_figure(df, ax=None):
    """Epochs per minute against batch size per (strategy, precision that ran): where DP/DDP pay off."""
    return metric_figure(df, "epochs_per_min", "epochs / minute", ax)


def scaling_figure(df, ax=None):
    """Scaling efficiency per total batch size (1.0 = N workers give N times the throughput)."""
    ax = axes_or_new(ax)
    table = scaling_table(df)
    if table.empty:
        return empty_axes(ax, "needs a single-device run and a multi-worker run at the same setting")
    names = (table["strategy"] + " x" + table["workers"].astype(int).astype(str) + " " + table["precision_ran"]
             + " b" + table["batch_size"].astype(int).astype(str))
    low = (table["scaling_efficiency"] - table["scaling_efficiency_ci_low"]).fillna(0.0)
    high = (table["scaling_efficiency_ci_high"] - table["scaling_efficiency"]).fillna(0.0)
    ax.barh(names, table["scaling_efficiency"], xerr=[low, high], color="tab:green", alpha=0.8)
    ax.axvline(1.0, color="black", ls="--", lw=1, label="perfect scaling")
    ax.set(xlabel="throughput(N) / (N x throughput(1))", title="scaling efficiency, 95% CI over seeds")
    ax.legend(fontsize=8)
    return ax


def tables(df) -> list[tuple[str, pd.DataFrame]]:
    """(caption, table) the study notebook shows: the runs, the speed-up, and DDP's scaling efficiency."""
    return [("Runs", key_table(df)), ("Speed-up over the FP32 baseline (95% CI over seeds)", speedup_table(df)),
            ("Scaling efficiency: throughput(N) / (N x throughput(1)), 95% CI over seeds", scaling_table(df))]


def overview_figure(df):
    """Speed, scaling efficiency, memory, power, accuracy per epoch and the speed-up, one panel each."""
    return precision_analysis.overview_figure(df, (key_figure, scaling_figure, memory_figure, power_figure,
                                                   accuracy_figure, speedup_figure))
