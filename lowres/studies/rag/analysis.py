"""RAG study analysis: the plots of one run, the quality-vs-latency comparison of prompting, RAG and
fine-tuning, and the across-runs key table and figure (`df = lowres.results.collect("rag")`; the report calls
key_table/key_figure too).
"""
from __future__ import annotations

import re

import pandas as pd

from lowres import rag
from lowres.analysis import empty_axes, ok_runs, run_table
from lowres.results import number

STAGE_LABELS = {"embed_query": "embed query", "search": "search", "read": "read / generate"}


# ---------------------------------------------------------------- plots of one run

def plot_quality_vs_k(table: pd.DataFrame, ax=None):
    import seaborn as sns

    long = table.melt("k", ["recall", "precision", "mrr", "exact_match", "f1"], var_name="metric", value_name="value")
    ax = sns.lineplot(data=long, x="k", y="value", hue="metric", marker="o", ax=ax)
    ax.set(title="Quality vs k (retrieval at k, answers from k passages)", ylim=(0, 1.02), xticks=table["k"])
    return ax


def plot_latency_breakdown(table: pd.DataFrame, ax=None):
    import seaborn as sns

    long = table.melt("k", [f"{s}_ms" for s in rag.STAGES], var_name="stage", value_name="ms")
    long["stage"] = long["stage"].str[:-3].map(STAGE_LABELS)
    long["k"] = long["k"].astype(str)
    ax = sns.histplot(data=long, x="k", weights="ms", hue="stage", multiple="stack", shrink=0.7, ax=ax)
    ax.set(title="Latency per question by stage (mean)", ylabel="ms", xlabel="k")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
    return ax


def plot_recall_vs_latency(indexes: pd.DataFrame, ax=None):
    import seaborn as sns

    ax = sns.lineplot(data=indexes, x="p50_ms", y="ann_recall", hue="index", style="index", markers=True,
                      dashes=False, sort=False, ax=ax)  # each line follows its sweep (nprobe / efSearch)
    k = int(indexes["k"].iloc[0])
    ax.set(title=f"ANN recall@{k} vs query latency (one query at a time)", xlabel="search p50 (ms)",
           ylabel=f"recall@{k} vs exact", ylim=(min(0.5, indexes["ann_recall"].min() - 0.05), 1.02))
    return ax


def plot_context_overhead(table: pd.DataFrame, ax=None):
    import seaborn as sns

    ax = sns.lineplot(data=table, x="k", y="context_tokens_added", marker="o", ax=ax)
    ax.set(title="Prompt tokens added by the k passages", ylabel="tokens (mean)", xticks=table["k"])
    return ax


def run_figure(table: pd.DataFrame, indexes: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    plot_quality_vs_k(table, axes[0, 0])
    plot_latency_breakdown(table, axes[0, 1])
    plot_recall_vs_latency(indexes, axes[1, 0])
    plot_context_overhead(table, axes[1, 1])
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- prompting vs RAG vs fine-tuning

COMPARED_STUDIES = ("prompting", "rag", "lora")
STRATEGY_NAMES = {"prompting": "prompting", "rag": "RAG", "lora": "fine-tuning (LoRA)", "full_ft": "fine-tuning (full)"}
SUMMARY = {"summary.strategy": "strategy", "study": "study", "run_id": "run_id", "summary.dataset": "dataset",
           "summary.model": "model", "summary.quality_metric": "metric", "summary.quality": "quality",
           "summary.latency_ms": "latency_ms", "summary.latency_kind": "latency_kind"}


def strategy_frame(outputs=None, current=None) -> pd.DataFrame:
    """Every ok run of prompting, RAG and (when present) LoRA as strategy, quality and latency per example, read
    from the run summaries; `current` is the RunResult of a run not saved yet (it replaces a stored copy)."""
    from lowres.results import collect, result_row

    frames = [collect(study, outputs) for study in COMPARED_STUDIES]
    if current is not None:
        frames = [f[f["run_id"] != current.run_id] if "run_id" in f else f for f in frames]
        frames.append(pd.DataFrame([result_row(current)]))
    rows = pd.concat([ok_runs(f) for f in frames if not f.empty], ignore_index=True) if any(
        not f.empty for f in frames) else pd.DataFrame()
    table = pd.DataFrame({name: rows[c] if c in rows else None for c, name in SUMMARY.items()})
    table = table.dropna(subset=["quality", "latency_ms"])
    table["strategy"] = table["strategy"].map(STRATEGY_NAMES).fillna(table["strategy"])
    return table.reset_index(drop=True)


def plot_strategy_comparison(frame: pd.DataFrame, ax=None):
    """Quality (each study's own metric on its own task: accuracy for classification, F1 for QA) vs latency."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.figure(figsize=(8, 5)).gca()
    if frame.empty:
        return empty_axes(ax, "no finished runs yet")
    frame = frame.assign(task=frame["metric"] + " on " + frame["dataset"].astype(str))
    ax = sns.scatterplot(data=frame, x="latency_ms", y="quality", hue="strategy", style="task", s=90, ax=ax)
    wide = frame["latency_ms"].max() > 10 * frame["latency_ms"].min()  # a log axis only when latencies span decades
    ax.set(xscale="log" if wide else "linear", ylim=(0, 1.02), ylabel="quality",
           xlabel=f"latency per example (ms{', log' if wide else ''})",
           title="Prompting vs RAG vs fine-tuning: quality against latency (each on its own task)")
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------- across runs (the report calls these)

BY_K = re.compile(r"^metrics\.by_k\.(\d+)\.(\w+)$")


def key_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ok run: data, reader, index, served k and its quality, latency and energy."""
    if df.empty:
        return pd.DataFrame()
    ok = ok_runs(df)
    columns = {"params.dataset": "dataset", "params.n_questions": "questions", "metrics.reader": "reader",
               "metrics.index.kind": "index", "metrics.k": "k", "metrics.recall": "recall@k",
               "metrics.mrr": "mrr", "metrics.exact_match": "exact_match", "metrics.f1": "f1",
               "metrics.context_tokens_added": "context_tokens", "metrics.latency_p50_ms": "latency_p50_ms",
               "metrics.latency_p95_ms": "latency_p95_ms"}
    table = run_table(ok, columns)
    energy = [energy_at_k(row) for _, row in ok.iterrows()]
    table["energy_j_per_question"] = [e[0] for e in energy]
    table["energy_source"] = [e[1] for e in energy]
    return table


def energy_at_k(row) -> tuple[float | None, str | None]:
    k = row.get("metrics.k")
    if k is None or pd.isna(k):
        return None, None
    return (number(row, f"metrics.by_k.{int(k)}.energy_j_per_question"),
            row.get(f"metrics.by_k.{int(k)}.energy_source"))


def by_k_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long table run_id, k, metric, value from the metrics.by_k.* columns."""
    rows = []
    for _, row in df[df["status"] == "ok"].iterrows():
        for column in row.index:
            match = BY_K.match(column)
            if match and isinstance(row[column], (int, float)) and not pd.isna(row[column]):
                rows.append({"run_id": row["run_id"], "dataset": row.get("params.dataset"),
                             "reader": row.get("metrics.reader"), "k": int(match.group(1)),
                             "metric": match.group(2), "value": float(row[column])})
    return pd.DataFrame(rows, columns=["run_id", "dataset", "reader", "k", "metric", "value"])


def key_figure(df: pd.DataFrame, ax=None):
    """Answer F1 and gold-passage recall against k, one line per run (dataset / reader)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.figure(figsize=(7, 4.5)).gca()
    long = by_k_frame(df) if not df.empty else pd.DataFrame()
    long = long[long["metric"].isin(["f1", "recall"])] if not long.empty else long
    if long.empty:
        return empty_axes(ax, "no finished RAG runs")
    long = long.assign(run=long["dataset"].astype(str) + " / " + long["reader"].astype(str))
    sns.lineplot(data=long, x="k", y="value", hue="run", style="metric", marker="o", ax=ax)
    ax.set(title="RAG: answer F1 and gold-passage recall vs k", ylim=(0, 1.02), ylabel="")
    return ax
