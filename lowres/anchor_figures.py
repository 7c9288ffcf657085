"""Our figure for each published anchor (lowres.anchors), with its 95% interval, from runs that passed the
anchor's comparability gates. Every input is a run summary column (`summary.*`, lowres.summary) or a study's
own analysis table; nothing here re-derives a run's costs from its windows.

Intervals: over seeds (Student t) where a configuration ran with two or more seeds; otherwise, for an
accuracy on n examples, Wilson's binomial interval, and for the difference of two accuracies on the same
n examples, the normal approximation (lowres.stats). A ratio from one seed has no interval (said in the note).
"""
from __future__ import annotations

import dataclasses
import math

from lowres import stats

NO_ENERGY = "n/a (not an energy figure)"
MATCH = ("params.model", "params.dataset", "params.batch_size")


@dataclasses.dataclass
class Ours:
    """Our figure for one anchor: value and 95% interval (NaN when none can be given), and where it came from."""

    value: float | None = None
    low: float = math.nan
    high: float = math.nan
    hardware: str = "-"
    energy_source: str = NO_ENERGY
    seeds: int = 0
    runs: int = 0
    note: str = ""

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))


def numeric(df, column):
    import pandas as pd

    return pd.to_numeric(df[column], errors="coerce") if column in df.columns else pd.Series(math.nan, df.index)


def joined(values) -> str:
    return ", ".join(sorted({str(v) for v in values if isinstance(v, str) and v})) or "unknown"


def seed_count(df) -> int:
    return int(df["params.seed"].nunique()) if "params.seed" in df.columns else 1


def from_runs(df, value: float | None, low=math.nan, high=math.nan, note: str = "",
              source: str = NO_ENERGY) -> Ours | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    hardware = joined(df["summary.hardware"]) if "summary.hardware" in df.columns else "-"
    return Ours(float(value), low, high, hardware, source, seed_count(df), len(df), note)


def over_seeds(values) -> tuple[float, float, float]:
    return stats.mean_ci(list(values))


# ---------------------------------------------------------------------------------------------- Maina et al.
def contrast(df):
    """(label Series, baseline, candidate, what stands in): FP32 on DP (else one device) vs a mixed precision on
    DDP (else the same strategy); bf16 stands in for AMP-FP16 where only bf16 ran (a CPU)."""
    if "params.precision" not in df.columns:
        return None
    precisions = set(df["params.precision"].dropna())
    mixed = next((p for p in ("16-mixed", "bf16-mixed") if p in precisions), None)
    if "32-true" not in precisions or mixed is None:
        return None
    strategies = set(df["params.strategy"].dropna()) if "params.strategy" in df.columns else set()
    base_s = next((s for s in ("dp", "single") if s in strategies), "single")
    cand_s = "ddp" if "ddp" in strategies else base_s
    strategy = df["params.strategy"].map(str) if "params.strategy" in df.columns else "single"
    label = df["params.precision"].map(str) + "/" + strategy
    stand_ins = ([] if mixed == "16-mixed" else ["bf16 for AMP-FP16"]) + \
        ([] if base_s == "dp" else ["one device for DataParallel"]) + ([] if cand_s == "ddp" else ["one device for DDP"])
    return label, f"32-true/{base_s}", f"{mixed}/{cand_s}", stand_ins


def config_key(df, columns):
    import pandas as pd

    columns = [c for c in columns if c in df.columns]
    return df[columns].map(str).agg("|".join, axis=1) if columns else pd.Series("all", index=df.index)


def matched_per_seed(df, label, base: str, cand: str, values, how: str) -> dict:
    """{configuration: [cand/base (ratio) or cand-base (diff) per seed]} for configurations that ran both."""
    frame = df.assign(_label=label.values, _value=values.values, _config=config_key(df, MATCH))
    frame = frame.dropna(subset=["_value"])
    out = {}
    for config, group in frame.groupby("_config"):
        means = group.groupby(["params.seed", "_label"])["_value"].mean().unstack() if "params.seed" in group else \
            group.groupby("_label")["_value"].mean().to_frame().T
        if base not in means or cand not in means:
            continue
        pairs = means[[base, cand]].dropna()
        found = (pairs[cand] / pairs[base]) if how == "ratio" else (pairs[cand] - pairs[base])
        found = [v for v in found.tolist() if math.isfinite(v)]
        if found:
            out[config] = found
    return out


def maina(df, figure: str, how: str, best: str, scale=lambda v: v) -> Ours | None:
    """`figure` (a summary column) of the mixed-precision DDP configuration against FP32 DP at the same model,
    data and batch; "up to" claims take the best configuration (`best`: max | min | mean)."""
    found = contrast(df)
    if found is None:
        return None
    label, base, cand, stand_ins = found
    values = numeric(df, f"summary.{figure}")
    if figure == "train_samples":
        values = values / numeric(df, "summary.train_wall_s")
    per_config = matched_per_seed(df, label, base, cand, values, how)
    if not per_config:
        return None
    means = {c: sum(v) / len(v) for c, v in per_config.items()}
    chosen = (max if best == "max" else min)(means, key=means.get) if best != "mean" else None
    seeds = [v for vs in per_config.values() for v in vs] if chosen is None else per_config[chosen]
    mean, low, high = over_seeds(seeds)
    note = f"{cand} vs {base}, {len(per_config)} matched configuration(s)"
    note += f"; stand-ins: {', '.join(stand_ins)}" if stand_ins else ""
    source = joined(df["summary.train_power_source"]) if figure == "train_power_w" else NO_ENERGY
    return from_runs(df, scale(mean), scale(low), scale(high), note, source)


def pct(ratio: float) -> float:
    return 100 * (ratio - 1)


# ---------------------------------------------------------------------------------------------- Wang et al.
def wang_energy_ratio(df, analysis) -> Ours | None:
    """The distil_vs_bert study's twin table: DistilBERT/BERT energy ratio (mean over settings, CI over seeds)."""
    table = analysis.twin_table(df).dropna(subset=["energy_ratio"])
    if table.empty:
        return None
    low, high = (table["energy_ratio_ci_low"].mean(), table["energy_ratio_ci_high"].mean()) \
        if "energy_ratio_ci_low" in table else (math.nan, math.nan)
    note = (f"mean over {len(table)} twin setting(s) ({joined(table['dataset'])}); time ratio "
            f"{table['time_ratio'].mean():.2f}")
    return from_runs(df, pct(table["energy_ratio"].mean()), pct(low), pct(high), note, joined(table["energy_source"]))


def fit_r2(df, analysis, x: str) -> tuple[float | None, int, str]:
    """Mean R² of the study's fits of energy on `x` across its runs (then over step windows within runs)."""
    for level in ("run", "window"):
        fits = analysis.energy_fits(df, level=level)
        fits = fits[(fits.x == x) & (fits.y == "energy_j")].dropna(subset=["r2"]) if len(fits) else fits
        if len(fits):
            return float(fits["r2"].mean()), len(fits), joined(fits["energy_source"])
    return None, 0, "unknown"


def wang_linear(df, analysis) -> Ours | None:
    r2, n, source = fit_r2(df, analysis, "padded_tokens")
    return from_runs(df, r2, note=f"mean R² of {n} fit(s) of energy on padded tokens", source=source)


def wang_length_vs_count(df, analysis) -> Ours | None:
    """R²(energy ~ tokens) - R²(energy ~ examples) across runs: > 0 when length predicts energy better."""
    tokens, n_tokens, source = fit_r2(df, analysis, "padded_tokens")
    count, n_count, _ = fit_r2(df, analysis, "samples")
    if tokens is None or count is None:
        return None
    return from_runs(df, tokens - count, note=f"R² on tokens {tokens:.3f} vs on examples {count:.3f}", source=source)


# ---------------------------------------------------------------------------------------------- the design
def best_accuracy(df) -> Ours | None:
    """The best configuration's seed-mean accuracy (points) with its interval: over seeds, else Wilson on n."""
    if "summary.quality" not in df.columns or df.empty:
        return None
    config = config_key(df, [c for c in df.columns if c.startswith("params.") and c != "params.seed"])
    accuracy = numeric(df, "summary.quality")
    means = accuracy.groupby(config).mean().dropna()
    if means.empty:
        return None
    chosen = df[config == means.idxmax()]
    values = numeric(chosen, "summary.quality").dropna().tolist()
    if len(values) >= 2:
        mean, low, high = over_seeds(values)
    else:
        mean = values[0]
        low, high = stats.wilson_ci(mean, int(numeric(chosen, "summary.quality_n").iloc[0] or 0) or None)
    note = f"{chosen['summary.model'].iloc[0]} on {chosen['summary.dataset'].iloc[0]}, best of {len(means)} configuration(s)"
    return from_runs(chosen, 100 * mean, 100 * low, 100 * high, note)


def lora_gap(df, analysis, quality: str = "accuracy", binomial: bool = True) -> Ours | None:
    """LoRA minus full fine-tuning `quality` (points), same model, data and seed; the smallest gap over ranks.
    One seed: the binomial interval of the difference for a proportion (accuracy), none otherwise (ROUGE, F1)."""
    pairs = analysis.paired_with_full(df)
    if pairs.empty:
        return None
    pairs = pairs.assign(gap=100 * (pairs[quality] - pairs[f"{quality}_full"]))
    by_rank = pairs.groupby("rank")["gap"].mean()
    best = pairs[pairs["rank"] == by_rank.idxmax()]
    if len(best) >= 2:
        mean, low, high = over_seeds(best["gap"])
    elif not binomial:
        mean, low, high = best["gap"].iloc[0], math.nan, math.nan
    else:
        row = best.iloc[0]
        n = numeric(df[df["run_id"] == row["run_id"]], "summary.quality_n").iloc[0]
        mean = row["gap"]
        low, high = (100 * v for v in stats.diff_ci(row["accuracy_full"], row["accuracy"], int(n) if n == n else None))
    return from_runs(df, mean, low, high, f"best rank r={int(best['rank'].iloc[0])} of {len(by_rank)}, "
                                          f"{len(best)} seed(s)")


def quantization(df, analysis, precision: str, what: str) -> Ours | None:
    """The lora study's quantization table: accuracy loss (points) or memory saved (%) vs each run's fp32."""
    table = analysis.quantization_table(df)
    table = table[table["precision"] == precision] if len(table) else table
    column = "accuracy_change_pts" if what == "loss" else "memory_saved_pct"
    values = table[column].dropna() if len(table) else table
    if not len(values):
        return None
    sign = -1 if what == "loss" else 1
    mean, low, high = over_seeds(sign * values)
    if len(values) < 2 and what == "loss":  # one run: the binomial interval of the difference on its n examples
        row = table.iloc[0]
        run = df[df["run_id"] == row["run_id"]]
        n = numeric(run, "summary.quality_n").iloc[0]
        reference = numeric(run, "metrics.inference.fp32.accuracy").iloc[0]
        change = stats.diff_ci(reference, row["accuracy"], int(n) if n == n else None)
        low, high = -100 * change[1], -100 * change[0]
    runs = df[df["run_id"].isin(table["run_id"])]
    return from_runs(runs, mean, low, high, f"{precision} vs fp32 of the same fine-tuned model, {len(values)} run(s), "
                                            f"backend {joined(table['backend'])}")


def rag_latency(df) -> Ours | None:
    values = numeric(df, "summary.latency_ms").dropna()
    if values.empty:
        return None
    mean, low, high = over_seeds(values) if len(values) >= 2 else (float(values.median()), math.nan, math.nan)
    return from_runs(df, mean, low, high, f"per question, one at a time, {len(values)} run(s)")
