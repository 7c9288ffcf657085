"""Selector study analysis: the plan each recorded scenario received, and its estimated memory against the budget.

`df = lowres.results.collect("selector")`; missing columns are tolerated (the report calls these on any results).
"""
from __future__ import annotations

INPUTS = ("params.task", "params.hardware", "params.memory_gb", "params.gpus", "params.latency_ms",
          "params.dataset_size", "params.model", "params.probe")
PLAN = ("metrics.strategy", "metrics.models", "metrics.precision", "metrics.batch_size",
        "metrics.estimated_memory_gb", "metrics.basis", "metrics.worked_examples_matching")
PROBE = ("metrics.probe.model_peak_gb", "metrics.probe.memory_ratio", "metrics.probe.step_s",
         "metrics.probe.epoch_s", "metrics.probe.latency_ms")  # measured on this machine (lowres.probe)


def key_table(df):
    """One row per ok scenario: its inputs and the plan (strategy, models, precision, batch, memory, basis);
    for a probe (`lowres recommend --probe`) also what it measured."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    columns = [c for c in ("run_id", *INPUTS, *PLAN, *PROBE) if c in ok]
    table = ok[columns].reset_index(drop=True)
    return table.rename(columns=lambda c: c.replace("metrics.probe.", "measured_").split(".", 1)[-1])


def key_figure(df, ax=None):
    """Estimated training memory of each plan next to the memory budget it had to fit."""
    import matplotlib.pyplot as plt
    import pandas as pd

    table = key_table(df)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if table.empty or "estimated_memory_gb" not in table or "memory_gb" not in table:
        ax.set(title="selector: no plans recorded")
        return ax
    labels = [f"{r.task}/{r.hardware}/{r.memory_gb:g} GB" for r in table.itertuples()]
    data = pd.DataFrame({"scenario": labels * 2,
                         "GB": list(table["memory_gb"]) + list(pd.to_numeric(table["estimated_memory_gb"])),
                         "what": ["budget"] * len(table) + ["plan's estimate"] * len(table)})
    import seaborn as sns

    sns.barplot(data=data, y="scenario", x="GB", hue="what", ax=ax)
    ax.set(title="selector: estimated memory of the plan vs the budget", ylabel="")
    return ax
