"""Seq2seq study analysis: one row per run (quality beside its baseline, training cost, generation cost) and the
quality-vs-training-time figure. Every function takes `df = lowres.results.collect("seq2seq")` and tolerates
missing columns (the report calls key_table/key_figure on whatever results exist)."""
from __future__ import annotations

from lowres.analysis import column, empty_axes, frame_with_run, ok_runs, text  # noqa: F401 - the notebook reads it here

MIB = 2**20


def method_label(method, rank) -> str:
    return f"{method} r={int(rank)}" if method != "full" and rank == rank and rank is not None else str(method)


def key_table(df):
    """Quality (ROUGE-L, and EM/F1 for QA) beside the model-free baseline, trainable share, training time, energy
    (with source) and memory, then generation: ms per request greedy and beam, ms per token, batched throughput."""
    import pandas as pd

    table = pd.DataFrame({
        "model": text(df, "params.model"), "dataset": text(df, "params.dataset"), "task": text(df, "summary.task"),
        "method": text(df, "params.method"), "rank": column(df, "params.lora_rank"),
        "precision": text(df, "params.precision"), "seed": column(df, "params.seed"), "status": text(df, "status"),
        "quality_metric": text(df, "summary.quality_metric"), "quality": column(df, "summary.quality"),
        "rougeL": column(df, "metrics.rougeL"), "baseline_rougeL": column(df, "metrics.baseline.rougeL"),
        "f1": column(df, "metrics.f1"), "baseline_f1": column(df, "metrics.baseline.f1"),
        "exact_match": column(df, "metrics.exact_match"), "baseline": text(df, "metrics.baseline.name"),
        "baseline_quality": column(df, "metrics.baseline.f1").where(text(df, "summary.quality_metric") == "f1",
                                                                    column(df, "metrics.baseline.rougeL")),
        "trainable_pct": column(df, "metrics.trainable_pct"), "train_s": column(df, "summary.train_wall_s"),
        "train_energy_j": column(df, "summary.train_energy_j"), "energy_source": text(df, "summary.energy_source"),
        "peak_mem_mib": column(df, "summary.peak_memory_bytes") / MIB, "memory_kind": text(df, "summary.memory_kind"),
        "greedy_ms_p50": column(df, "metrics.generation.greedy.p50_ms"),
        "beam_ms_p50": column(df, "metrics.generation.beam.p50_ms"),
        "greedy_ms_per_token": column(df, "metrics.generation.greedy.ms_per_token"),
        "batched_examples_per_s": column(df, "metrics.throughput.examples_per_s"),
        "adapter_mib": column(df, "metrics.adapter_bytes") / MIB, "run_id": text(df, "run_id")})
    return table.sort_values(["model", "dataset", "method", "rank", "seed"], na_position="first").reset_index(drop=True)


def paired_with_full(df):
    """Each LoRA run beside the full fine-tuning run of the same model, dataset and seed (headline quality)."""
    table = key_table(ok_runs(df))
    keys = ["model", "dataset", "seed"]
    full = table[table["method"] == "full"][keys + ["quality", "train_s"]]
    return table[table["method"] != "full"].merge(full, on=keys, suffixes=("", "_full"))


def key_figure(df, ax=None):
    """Each run's headline quality (ROUGE-L for summaries, F1 for QA) against training time, labelled by method;
    dashed: the model-free baseline of each dataset on the same metric."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = key_table(ok_runs(df)).dropna(subset=["quality", "train_s"])
    if table.empty:
        return empty_axes(ax, "no finished seq2seq runs")
    table["dataset (metric)"] = table["dataset"] + " (" + table["quality_metric"].astype(str) + ")"
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    sns.scatterplot(data=table, x="train_s", y="quality", hue="method", style="dataset (metric)", s=80, ax=ax)
    for _, row in table.iterrows():
        ax.annotate(method_label(row["method"], row["rank"]), (row["train_s"], row["quality"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    for (label, baseline), group in table.groupby(["dataset (metric)", "baseline"], dropna=True):
        level = group["baseline_quality"].mean()
        ax.axhline(level, ls="--", lw=1, color="0.4")
        ax.annotate(f"{baseline}: {label}", (table["train_s"].min(), level), textcoords="offset points",
                    xytext=(0, -12), fontsize=8, color="0.4")
    ax.set(xlabel="training time (s)", ylabel="validation quality (ROUGE-L or F1)", ylim=(0, 1.05),
           title="Quality vs training time (dashed: no-model baseline)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: the points reach every corner
    return ax


def generation_table(df):
    """Per run and decoding: ms per request (p50/p95), generated tokens, ms per token; batched throughput last."""
    import pandas as pd

    runs, rows = ok_runs(df), []
    for decoding in ("greedy", "beam"):
        get = lambda key: column(runs, f"metrics.generation.{decoding}.{key}")  # noqa: E731
        rows.append(pd.DataFrame({
            "model": text(runs, "params.model"), "method": text(runs, "params.method"),
            "decoding": text(runs, f"metrics.generation.{decoding}.decoding"), "p50_ms": get("p50_ms"),
            "p95_ms": get("p95_ms"), "new_tokens_mean": get("new_tokens_mean"), "ms_per_token": get("ms_per_token"),
            "run_id": text(runs, "run_id")}))
    batched = pd.DataFrame({
        "model": text(runs, "params.model"), "method": text(runs, "params.method"),
        "decoding": "greedy, batch " + column(runs, "metrics.throughput.batch_size").astype("Int64").astype(str),
        "p50_ms": column(runs, "metrics.throughput.ms_per_example"), "p95_ms": float("nan"),
        "new_tokens_mean": float("nan"),
        "ms_per_token": 1000 / column(runs, "metrics.throughput.tokens_per_s"), "run_id": text(runs, "run_id")})
    return pd.concat(rows + [batched], ignore_index=True)
