"""Precision study analysis (Maina et al. 2025): speed, memory, power, energy and MLM accuracy per configuration,
the speed-up over the FP32 baseline with 95% CIs over seeds, and our ratios beside the paper's.

Every function takes `df = lowres.results.collect("precision")` (or "parallelism": same columns) and tolerates
missing columns and failed/oom runs: the cross-study report calls key_table/key_figure on whatever exists.
"""
from __future__ import annotations

import re

import pandas as pd

from lowres.analysis import axes_or_new, column, empty_axes, text
from lowres.stats import mean_ci

MIB = 2**20
# The paper's headline, DDP + AMP-FP16 against FP32 DataParallel on 2x NVIDIA A30 (bert-base-uncased, VizWiz).
PAPER = {"speedup": 3.5, "memory_change_pct": -20.0, "power_change_pct": -50.0, "accuracy_change_pts": 0.0}
PAPER_SETUP = "bert-base-uncased MLM on VizWiz questions, PyTorch Lightning, 2x NVIDIA A30, batch 16-256, 5 epochs"
CONFIG = ["model", "dataset", "hardware", "batch_size", "precision_ran", "strategy", "processes"]
BASELINE_PRECISION = "32-true"


def fit_seconds(df) -> pd.Series:
    """Training time without the per-epoch validation passes Lightning runs inside the fit loop."""
    validation = [c for c in df.columns if re.fullmatch(r"validate_epoch_\d+\.wall_s", str(c))]
    spent = df[validation].apply(pd.to_numeric, errors="coerce").fillna(0.0).sum(axis=1) if validation else 0.0
    return column(df, "train.wall_s") - spent


def runs(df) -> pd.DataFrame:
    """One row per run (every status): the configuration as it really ran, and its speed, memory, power, energy
    and quality. `precision_ran` is what ran (e.g. 16-mixed asked on a CPU ran as bf16-mixed)."""
    train_s, epochs = fit_seconds(df), column(df, "train.epochs")
    asked = text(df, "params.precision")
    table = pd.DataFrame({
        "model": text(df, "params.model"), "dataset": text(df, "params.dataset"), "hardware": text(df, "summary.hardware"),
        "strategy": text(df, "params.strategy"), "processes": column(df, "metrics.parallel.processes"),
        "dp_active": text(df, "metrics.parallel.dp_active"),
        # examples per optimizer step (lowres.summary: total batch over ranks x gradient accumulation)
        "batch_size": column(df, "summary.effective_batch_size").fillna(
            column(df, "metrics.parallel.total_batch_size")).fillna(column(df, "params.batch_size")),
        "accumulation": column(df, "params.accumulate_grad_batches").fillna(1.0),
        "per_rank_batch": column(df, "metrics.parallel.per_rank_batch_size"),
        "precision": asked, "precision_ran": text(df, "metrics.precision.effective").fillna(asked),
        "seed": column(df, "params.seed"), "status": text(df, "status"),
        "epochs": epochs, "train_s": train_s, "epochs_per_min": 60.0 * epochs / train_s,
        "samples_per_s": column(df, "summary.train_samples") / column(df, "summary.train_wall_s"),
        "tokens_per_s": column(df, "summary.train_tokens") / column(df, "summary.train_wall_s"),
        "peak_mem_mib": column(df, "summary.peak_memory_bytes") / MIB, "memory_source": text(df, "summary.memory_kind"),
        "power_w": column(df, "summary.train_power_w"), "power_source": text(df, "summary.train_power_source"),
        "energy_per_epoch_j": column(df, "summary.train_energy_j") / epochs,
        "energy_source": text(df, "summary.energy_source"),
        "val_mlm_accuracy": column(df, "metrics.val_mlm_accuracy"),
        "val_majority_accuracy": column(df, "metrics.val_majority_accuracy"),
        "val_perplexity": column(df, "metrics.val_perplexity"), "mfu": column(df, "train.mfu"),
        "run_id": text(df, "run_id")})
    table["processes"] = table["processes"].fillna(1.0)
    return table


def key_table(df) -> pd.DataFrame:
    """One row per run, grouped by configuration (the study notebook's and the report's table)."""
    return runs(df).sort_values(["model", "dataset", "batch_size", "strategy", "precision_ran", "seed"],
                                na_position="first", kind="stable").reset_index(drop=True)


def baseline_strategy(data: pd.DataFrame) -> str:
    """The paper's baseline is FP32 DataParallel; where DP really ran use it, else the single-device run."""
    active = data["dp_active"].astype(str).str.lower() == "true"
    return "dp" if ((data["strategy"] == "dp") & active).any() else "single"


def speedup_table(df) -> pd.DataFrame:
    """Each configuration against the FP32 baseline at the same model, data, hardware and batch: speed-up in
    epochs/minute (mean and 95% t-interval over seeds; paired by seed where the baseline has that seed), and
    the mean changes in peak memory, power and MLM accuracy."""
    data = runs(df)
    data = data[data["status"] == "ok"].dropna(subset=["epochs_per_min"])
    if data.empty:
        return pd.DataFrame(columns=[*CONFIG, "seeds", "speedup", "speedup_ci_low", "speedup_ci_high"])
    strategy = baseline_strategy(data)
    is_base = (data["precision_ran"] == BASELINE_PRECISION) & (data["strategy"] == strategy)
    keys = ["model", "dataset", "hardware", "batch_size"]
    base = data[is_base]
    rows = []
    for config, group in data.groupby(CONFIG, dropna=False, sort=True):
        reference = base.loc[(base[keys] == pd.Series(dict(zip(CONFIG, config)))[keys]).all(axis=1)]
        if reference.empty:
            continue
        by_seed = reference.groupby("seed")["epochs_per_min"].mean()
        ratios = [row.epochs_per_min / by_seed.get(row.seed, by_seed.mean()) for row in group.itertuples()]
        row = dict(zip(CONFIG, config), baseline=f"{BASELINE_PRECISION} {strategy}", seeds=group["seed"].nunique())
        row["speedup"], row["speedup_ci_low"], row["speedup_ci_high"] = mean_ci(ratios)
        for name, value in (("memory_change_pct", "peak_mem_mib"), ("power_change_pct", "power_w")):
            row[name] = 100.0 * (group[value].mean() / reference[value].mean() - 1.0)
        row["accuracy_change_pts"] = 100.0 * (group["val_mlm_accuracy"].mean() - reference["val_mlm_accuracy"].mean())
        row["memory_source"], row["power_source"] = group["memory_source"].iloc[0], group["power_source"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def best_configuration(table: pd.DataFrame):
    """The fastest configuration other than the baseline itself, or None."""
    others = table[(table["precision_ran"] + " " + table["strategy"]) != table["baseline"]].dropna(subset=["speedup"])
    return None if others.empty else others.loc[others["speedup"].idxmax()]


def signed(value: float, unit: str = "%") -> str:
    return "n/a" if value != value else f"{value:+.0f}{unit}"


def comparison_text(df) -> str:
    """Markdown: our best ratios against the paper's 3.5x speed, -20% memory and -50% power, with the hardware
    difference stated rather than hidden."""
    table = speedup_table(df)
    best = best_configuration(table) if not table.empty else None
    if best is None:
        return ("No configuration with a matching FP32 baseline yet: run the grid (e.g. `lowres run precision "
                "--profile smoke`) to compare with the paper's 3.5x speed-up, -20% memory and -50% power.")
    ci = (f" (95% CI {best.speedup_ci_low:.2f}-{best.speedup_ci_high:.2f} over {best.seeds} seeds)"
          if best.speedup_ci_low == best.speedup_ci_low else " (single seed: no confidence interval)")
    gpu = "GPU" in str(best.hardware).upper() or "NVIDIA" in str(best.hardware).upper()
    lines = [
        f"**Here** ({best.hardware}; {best.model} on {best.dataset}): the fastest configuration besides the baseline, "
        f"{best.precision_ran} {best.strategy} at batch {int(best.batch_size)}, ran at **{best.speedup:.2f}x** the "
        f"epochs/minute of {best.baseline}{ci}; peak memory {signed(best.memory_change_pct)} "
        f"({best.memory_source}), power {signed(best.power_change_pct)} ({best.power_source}), MLM accuracy "
        f"{signed(best.accuracy_change_pts, ' points')}.",
        f"**Paper** ({PAPER_SETUP}): DDP + AMP-FP16 up to **{PAPER['speedup']}x** faster than FP32 DP, "
        f"{PAPER['memory_change_pct']:+.0f}% memory, {PAPER['power_change_pct']:+.0f}% power, no accuracy loss.",
    ]
    if not gpu:
        lines.append("These are not like for like: mixed precision pays off through GPU tensor cores and halved "
                     "memory traffic. A CPU without native bf16/fp16 arithmetic converts and computes in software, "
                     "so a slow-down is the expected CPU result; memory here is a whole process's RSS, and power "
                     "is a codecarbon estimate (CPU load x TDP), not a measurement. The GPU profiles reproduce the "
                     "paper's setting.")
    slower = table[(table["speedup"] < 1.0) & (table["precision_ran"] != BASELINE_PRECISION)]
    if not slower.empty:
        names = ", ".join(sorted(set(slower["precision_ran"] + " " + slower["strategy"])))
        lines.append(f"Slower than the baseline: {names} (speed-up {slower['speedup'].min():.2f}-"
                     f"{slower['speedup'].max():.2f}x).")
    return "\n\n".join(lines)


def epoch_curves(df) -> pd.DataFrame:
    """Validation MLM accuracy and loss per epoch, one row per (run, epoch)."""
    rows = []
    identity = runs(df)
    for i, run in df.iterrows():
        for name in df.columns:
            match = re.fullmatch(r"metrics\.epochs\.(\d+)\.val_mlm_accuracy", str(name))
            if match and pd.notna(run[name]):
                epoch = int(match.group(1))
                rows.append({**identity.loc[i, ["run_id", "batch_size", "precision_ran", "strategy", "seed"]].to_dict(),
                             "epoch": epoch, "val_mlm_accuracy": float(run[name]),
                             "val_loss": run.get(f"metrics.epochs.{epoch}.val_loss")})
    return pd.DataFrame(rows, columns=["run_id", "batch_size", "precision_ran", "strategy", "seed", "epoch",
                                       "val_mlm_accuracy", "val_loss"])


def label(data: pd.DataFrame) -> pd.Series:
    return data["precision_ran"].astype(str) + " " + data["strategy"].astype(str)


def metric_figure(df, y: str, ylabel: str, ax=None, source: str | None = None):
    """A per-run figure against batch size (log2), one line per (precision that ran, strategy); error bars: 95% CI
    over seeds."""
    import seaborn as sns
    from matplotlib.ticker import ScalarFormatter

    ax = axes_or_new(ax)
    data = runs(df)
    data = data[(data["status"] == "ok")].dropna(subset=[y])
    if data.empty:
        return empty_axes(ax, f"no finished runs with {y}")
    data = data.assign(configuration=label(data))
    sns.lineplot(data=data, x="batch_size", y=y, hue="configuration", marker="o", errorbar=("ci", 95), ax=ax)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    origin = f" ({', '.join(sorted(set(data[source])))})" if source else ""
    ax.set(xlabel="total batch size", ylabel=ylabel, title=f"{ylabel}{origin}")
    ax.title.set_fontsize(9)
    return ax


def key_figure(df, ax=None):
    """Epochs per minute against batch size per (precision that ran, strategy)."""
    return metric_figure(df, "epochs_per_min", "epochs / minute", ax)


def memory_figure(df, ax=None):
    return metric_figure(df, "peak_mem_mib", "peak memory (MiB)", ax, source="memory_source")


def power_figure(df, ax=None):
    return metric_figure(df, "power_w", "average power (W)", ax, source="power_source")


def energy_figure(df, ax=None):
    return metric_figure(df, "energy_per_epoch_j", "energy per epoch (J)", ax, source="energy_source")


def accuracy_figure(df, ax=None):
    """Validation MLM accuracy per epoch, one line per (batch, precision that ran, strategy), mean over seeds."""
    import seaborn as sns

    ax = axes_or_new(ax)
    curves = epoch_curves(df)
    if curves.empty:
        return empty_axes(ax, "no per-epoch validation scores yet")
    curves = curves.assign(configuration=label(curves) + " b" + curves["batch_size"].astype(int).astype(str))
    sns.lineplot(data=curves, x="epoch", y="val_mlm_accuracy", hue="configuration", marker="o", ax=ax)
    ax.set(xlabel="epoch", ylabel="validation MLM accuracy", title="masked-token accuracy per epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return ax


def speedup_figure(df, ax=None):
    """Speed-up over the FP32 baseline with 95% CIs over seeds, the paper's 3.5x as a reference line."""
    ax = axes_or_new(ax)
    table = speedup_table(df)
    if table.empty:
        return empty_axes(ax, "no configuration with an FP32 baseline yet")
    names = (table["precision_ran"] + " " + table["strategy"] + " b" + table["batch_size"].astype(int).astype(str))
    low = (table["speedup"] - table["speedup_ci_low"]).fillna(0.0)
    high = (table["speedup_ci_high"] - table["speedup"]).fillna(0.0)
    ax.barh(names, table["speedup"], xerr=[low, high], color="tab:blue", alpha=0.8)
    ax.axvline(1.0, color="black", lw=1)
    ax.axvline(PAPER["speedup"], color="tab:red", ls="--", lw=1, label=f"paper: {PAPER['speedup']}x (2x A30)")
    ax.set(xlabel=f"speed-up over {table['baseline'].iloc[0]} (epochs/min)", title="speed-up, 95% CI over seeds")
    ax.legend(fontsize=8)
    return ax


def tables(df) -> list[tuple[str, pd.DataFrame]]:
    """(caption, table) the study notebook shows: the runs and the speed-up over the FP32 baseline."""
    return [("Runs", key_table(df)), ("Speed-up over the FP32 baseline (95% CI over seeds)", speedup_table(df))]


def overview_figure(df, panels=None):
    """One panel per figure function (default: speed, memory, power, energy, accuracy per epoch, speed-up)."""
    import matplotlib.pyplot as plt

    panels = panels or (key_figure, memory_figure, power_figure, energy_figure, accuracy_figure, speedup_figure)
    figure, axes = plt.subplots(2, 3, figsize=(17, 8))
    for draw, ax in zip(panels, axes.flat):
        draw(df, ax=ax)
    figure.tight_layout()
    return figure
