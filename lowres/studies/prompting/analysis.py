"""Prompting study analysis: the plots of one run and the across-runs key table and figure
(`df = lowres.results.collect("prompting")`; the report calls key_table/key_figure too).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lowres.analysis import empty_axes, ok_runs, run_table

# ---------------------------------------------------------------- plots

def plot_accuracy_vs_shots(table: pd.DataFrame, ax=None):
    """Accuracy against shots per method; for generative prompting the band is the min-max over templates."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.figure(figsize=(7, 4.5)).gca()
    few = table[table["method"] != "zero-shot"]
    if not few.empty:
        sns.lineplot(data=few, x="shots", y="accuracy", hue="method", marker="o",
                     errorbar=lambda v: (v.min(), v.max()), ax=ax)
    zero = table[table["method"] == "zero-shot"]
    if not zero.empty:
        ax.axhline(zero["accuracy"].iloc[0], ls="--", color="gray", label="zero-shot (label descriptions)")
    ax.axhline(0.5, ls=":", color="black", lw=0.8, label="chance (2 classes)")
    ax.set(title="Accuracy vs shots", ylim=(0.4, 1.0), xlabel="shots (per class for embedding methods)")
    ax.legend(fontsize=8)
    return ax


def plot_accuracy_vs_latency(table: pd.DataFrame, ax=None):
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.figure(figsize=(7, 4.5)).gca()
    sns.scatterplot(data=table, x="latency_ms", y="accuracy", hue="method", size="prompt_tokens", ax=ax)
    ax.set(title="Accuracy vs latency per example", xlabel="latency per example (ms)", ylim=(0.4, 1.0))
    ax.legend(fontsize=8)
    return ax


def run_figure(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_accuracy_vs_shots(table, axes[0])
    plot_accuracy_vs_latency(table, axes[1])
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- across runs (the report calls these)

BY_CONFIG = re.compile(r"^metrics\.by_config\.([\w-]+)\.(accuracy|shots|method)$")


def key_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ok run: data, method, model, the headline configuration and its costs, zero-shot accuracy."""
    if df.empty:
        return pd.DataFrame()
    columns = {"params.dataset": "dataset", "params.method": "method", "params.model": "model",
               "params.seed": "seed", "metrics.headline": "headline", "metrics.accuracy": "accuracy",
               "metrics.macro_f1": "macro_f1", "metrics.zero_shot_accuracy": "zero_shot_accuracy",
               "metrics.latency_ms": "latency_ms", "metrics.prompt_tokens": "prompt_tokens",
               "metrics.energy_j_per_example": "energy_j_per_example", "metrics.energy_source": "energy_source"}
    return run_table(ok_runs(df), columns)


def by_config_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long table run_id, dataset, model, config, method, shots, accuracy from the metrics.by_config.* columns."""
    rows = {}
    for _, row in df[df["status"] == "ok"].iterrows():
        for column in row.index:
            match = BY_CONFIG.match(column)
            if match and not (isinstance(row[column], float) and np.isnan(row[column])):
                key = (row["run_id"], match.group(1))
                rows.setdefault(key, {"run_id": row["run_id"], "dataset": row.get("params.dataset"),
                                      "model": row.get("params.model"), "config": match.group(1)})
                rows[key][match.group(2)] = row[column]
    return pd.DataFrame(list(rows.values()),
                        columns=["run_id", "dataset", "model", "config", "method", "shots", "accuracy"])


def key_figure(df: pd.DataFrame, ax=None):
    """Accuracy vs shots per method, one line style per dataset/model (bands: seeds and templates)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.figure(figsize=(7, 4.5)).gca()
    long = by_config_frame(df) if not df.empty else pd.DataFrame()
    if long.empty:
        return empty_axes(ax, "no finished prompting runs")
    long = long.assign(data=long["dataset"].astype(str) + " / " + long["model"].astype(str),
                       shots=long["shots"].astype(float), accuracy=long["accuracy"].astype(float))
    sns.lineplot(data=long, x="shots", y="accuracy", hue="method", style="data", marker="o", ax=ax)
    ax.axhline(0.5, ls=":", color="black", lw=0.8)
    ax.set(title="Prompting: accuracy vs shots", ylim=(0.4, 1.0))
    return ax
