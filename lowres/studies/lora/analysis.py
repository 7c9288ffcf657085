"""LoRA study analysis: runs table, quantization table, rank sweep, Pareto fronts, the design's reference figures.

Every function takes `df = lowres.results.collect("lora")` (one row per run) and tolerates missing columns:
the cross-study report calls key_table/key_figure on whatever results exist.
"""
from __future__ import annotations

import math
import re

from lowres.analysis import column, frame_with_run, ok_runs, pareto_front, text  # noqa: F401 - the notebook reads it here

MIB = 2**20
# The design's reference figures (SST-2, distilbert-base-uncased, AdamW lr 5e-5, batch 16-64, 3 epochs):
# quantity -> (as quoted, band used to say "within"; "~x" is read as x +- 10)
REFERENCE = {
    "full fine-tuning accuracy (%)": ("93-94", (93.0, 94.0)),
    "LoRA accuracy (%)": ("92-93", (92.0, 93.0)),
    "LoRA accuracy - full (points)": ("-2 to 0", (-2.0, 0.0)),
    "LoRA trainable parameters saved vs full (%)": ("~70", (60.0, 80.0)),
    "LoRA peak training memory saved vs full (%)": ("~20", (10.0, 30.0)),
    "fp16 accuracy change (points)": ("> -0.5", (-0.5, math.inf)),
    "fp16 model memory saved (%)": ("30-40", (30.0, 40.0)),
    "int8 accuracy change (points)": ("-2 to -1", (-2.0, -1.0)),
    "int8 model memory saved (%)": ("> 50", (50.0, 100.0)),
}
SETTING = ("params.model", "params.dataset", "params.seed")


def fit_minus_validation_s(df):
    """Training time without the per-epoch validation passes Lightning runs inside the fit loop."""
    validation = [c for c in df.columns if re.fullmatch(r"validate_epoch_\d+\.wall_s", str(c))]
    return column(df, "train.wall_s") - (df[validation].apply(lambda s: s.astype(float)).sum(axis=1)
                                         if validation else 0.0)


def peak_memory(df, window: str = "train"):
    """(bytes, source) per run in a Meter window: CUDA max_memory_allocated on a GPU, else the process's sampled
    peak RSS (on a CPU that is the whole process - data, both models - not the window's own share)."""
    gpu, rss = column(df, f"{window}.peak_gpu_mem_bytes.sum"), column(df, f"{window}.peak_cpu_rss_bytes")
    source = gpu.notna().map({True: "cuda max_memory_allocated", False: "process peak RSS (sampled)"})
    source[gpu.isna() & rss.isna()] = "unavailable"
    return gpu.fillna(rss), source


def key_table(df):
    """One row per run: method, rank, quality, trainable share, memory, time, energy (with source), sizes on disk."""
    import pandas as pd

    table = pd.DataFrame({
        "model": text(df, "params.model"), "dataset": text(df, "params.dataset"), "method": text(df, "params.method"),
        "rank": column(df, "params.lora_rank"), "seed": column(df, "params.seed"), "status": text(df, "status"),
        "accuracy": column(df, "metrics.accuracy"), "f1": column(df, "metrics.f1"),
        "trainable_params": column(df, "metrics.trainable_params"), "trainable_pct": column(df, "metrics.trainable_pct"),
        "peak_train_mem_mib": column(df, "summary.peak_memory_bytes") / MIB,
        "memory_source": text(df, "summary.memory_kind"),
        "train_s": fit_minus_validation_s(df), "epochs": column(df, "train.epochs"),
        "train_energy_j": column(df, "summary.train_energy_j"), "energy_source": text(df, "summary.energy_source"),
        "adapter_mib": column(df, "metrics.adapter_bytes") / MIB,
        "checkpoint_mib": column(df, "metrics.checkpoint_bytes") / MIB,
        "reload_agreement": column(df, "metrics.reload_agreement"), "run_id": text(df, "run_id")})
    table.insert(table.columns.get_loc("epochs") + 1, "s_per_epoch", table["train_s"] / table["epochs"])
    return table.sort_values(["model", "dataset", "method", "rank", "seed"], na_position="first").reset_index(drop=True)


def inference_precisions(df) -> list[str]:
    found = {m.group(1) for c in df.columns if (m := re.fullmatch(r"metrics\.inference\.(\w+)\.accuracy", str(c)))}
    from lowres.quantize import PRECISIONS

    return [p for p in PRECISIONS if p in found]


def quantization_table(df):
    """One row per run x inference precision: accuracy change vs the run's fp32, memory saved, latency, speed-up."""
    import pandas as pd

    rows = []
    runs = ok_runs(df)
    for precision in inference_precisions(runs):
        get = lambda key: column(runs, f"metrics.inference.{precision}.{key}")  # noqa: E731
        ref = lambda key: column(runs, f"metrics.inference.fp32.{key}")  # noqa: E731
        peak, peak_source = peak_memory(runs, f"infer_{precision}")
        rows.append(pd.DataFrame({
            "model": text(runs, "params.model"), "dataset": text(runs, "params.dataset"),
            "method": text(runs, "params.method"), "rank": column(runs, "params.lora_rank"), "precision": precision,
            "backend": text(runs, f"metrics.inference.{precision}.backend"),
            "accuracy": get("accuracy"), "accuracy_change_pts": 100 * (get("accuracy") - ref("accuracy")),
            "memory_mib": get("memory_bytes") / MIB, "memory_kind": text(runs, f"metrics.inference.{precision}.memory_kind"),
            "memory_saved_pct": 100 * (1 - get("state_dict_bytes") / ref("state_dict_bytes")),
            "infer_peak_mem_mib": peak / MIB, "infer_peak_mem_source": peak_source,
            "latency_ms_b1_p50": get("latency_ms_b1_p50"), "latency_ms_b1_p95": get("latency_ms_b1_p95"),
            "latency_ms_b32_p50": get("latency_ms_b32_p50"), "latency_ms_b32_p95": get("latency_ms_b32_p95"),
            "speedup_b32_vs_fp32": ref("latency_ms_b32_p50") / get("latency_ms_b32_p50"),
            "run_id": text(runs, "run_id")}))
    if not rows:
        return pd.DataFrame()
    return pd.concat(rows).sort_values(["model", "dataset", "method", "rank", "run_id"], na_position="first",
                                       kind="stable").reset_index(drop=True)


def run_label(method, rank) -> str:
    return f"{method} r={int(rank)}" if method != "full" and rank == rank and rank is not None else str(method)


def key_figure(df, ax=None):
    """Accuracy against trainable parameters (log scale): the rank sweep, with full fine-tuning beside it."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = key_table(ok_runs(df)).dropna(subset=["accuracy", "trainable_params"])
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    sns.scatterplot(data=table, x="trainable_params", y="accuracy", hue="method", style="model", s=80, ax=ax)
    for _, row in table.iterrows():
        ax.annotate(run_label(row["method"], row["rank"]), (row["trainable_params"], row["accuracy"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xscale="log", xlabel="trainable parameters (log)", ylabel="validation accuracy",
           title="Accuracy vs trainable parameters (LoRA rank sweep)")
    return ax


def pareto_figure(df, axes=None):
    """Accuracy against peak training memory and against training energy; each front dashed, its points circled."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = key_table(ok_runs(df))
    table["peak train memory (MiB)"], table["train energy (J)"] = table["peak_train_mem_mib"], table["train_energy_j"]
    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(12, 4))[1]
    sources = {"peak train memory (MiB)": ", ".join(sorted(set(table["memory_source"]))),
               "train energy (J)": ", ".join(sorted(set(table["energy_source"])))}
    for ax, cost in zip(axes, sources):
        sns.scatterplot(data=table, x=cost, y="accuracy", hue="method", style="model", s=80, ax=ax, legend=ax is axes[0])
        front = table[pareto_front(table, cost)].sort_values(cost)
        ax.plot(front[cost], front["accuracy"], "k--", drawstyle="steps-post", lw=1, label="Pareto front")
        ax.scatter(front[cost], front["accuracy"], s=220, facecolors="none", edgecolors="k")
        ax.set(title=f"Accuracy vs {cost.split(' (')[0]}\n(source: {sources[cost] or 'none'})")
    return axes


def paired_with_full(df):
    """Each LoRA run beside the full fine-tuning run of the same model, dataset and seed."""
    table = key_table(ok_runs(df))
    keys = ["model", "dataset", "seed"]
    full = table[table["method"] == "full"][keys + ["accuracy", "trainable_params", "peak_train_mem_mib"]]
    lora = table[table["method"] != "full"]
    return lora.merge(full, on=keys, suffixes=("", "_full"))


def reference_comparison(df):
    """Our measured figures beside the design's reference figures, with whether they fall in its band."""
    import pandas as pd

    rows = []

    def add(quantity, value, setting):
        quoted, (low, high) = REFERENCE[quantity]
        rows.append({"quantity": quantity, "reference": quoted, "measured": value, "setting": setting,
                     "within_reference": bool(low <= value <= high) if value == value else None})

    table = key_table(ok_runs(df))
    for _, r in table.iterrows():
        setting = f"{r['model']} / {r['dataset']} / {run_label(r['method'], r['rank'])}"
        add("full fine-tuning accuracy (%)" if r["method"] == "full" else "LoRA accuracy (%)", 100 * r["accuracy"],
            setting)
    for _, r in paired_with_full(df).iterrows():
        setting = f"{r['model']} / {r['dataset']} / {run_label(r['method'], r['rank'])} vs full"
        add("LoRA accuracy - full (points)", 100 * (r["accuracy"] - r["accuracy_full"]), setting)
        add("LoRA trainable parameters saved vs full (%)", 100 * (1 - r["trainable_params"] / r["trainable_params_full"]),
            setting)
        add("LoRA peak training memory saved vs full (%)",
            100 * (1 - r["peak_train_mem_mib"] / r["peak_train_mem_mib_full"]), setting)
    quant = quantization_table(df)
    quant = quant[quant["precision"].isin(["fp16", "int8"])] if len(quant) else quant
    for _, r in quant.iterrows():
        setting = f"{r['model']} / {r['dataset']} / {run_label(r['method'], r['rank'])} / {r['backend']}"
        add(f"{r['precision']} accuracy change (points)", r["accuracy_change_pts"], setting)
        add(f"{r['precision']} model memory saved (%)", r["memory_saved_pct"], setting)
    order = {q: i for i, q in enumerate(REFERENCE)}
    out = pd.DataFrame(rows, columns=["quantity", "reference", "measured", "setting", "within_reference"])
    return out.sort_values("quantity", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def reference_figure(comparison, ax=None):
    """Each quantity on its own row: the reference band in grey, our measurements as dots."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(8, 0.5 + 0.45 * max(len(REFERENCE), 1)))[1]
    quantities = [q for q in REFERENCE if q in set(comparison["quantity"])]
    for y, quantity in enumerate(quantities):
        low, high = REFERENCE[quantity][1]
        high = min(high, 100.0)
        ax.hlines(y, low, high, color="0.75", lw=8, zorder=1)
    sns.stripplot(data=comparison, x="measured", y="quantity", order=quantities, color="C3", size=6, jitter=0.15,
                  ax=ax, zorder=2)
    ax.set(xlabel="% or points (see the quantity)", ylabel="", title="Measured (dots) vs the design's reference (grey)")
    return ax


def same_setting(df, params):
    """Runs on the same model and dataset as `params` (the ones a sweep figure should compare)."""
    if df.empty:
        return df
    return df[(df["params.model"] == params.model) & (df["params.dataset"] == params.dataset)]
