"""distil_vs_bert analysis: energy fits, DistilBERT/BERT ratios with CIs over seeds, padding savings, figures.

Input everywhere: `df = lowres.results.collect("distil_vs_bert")` (one row per run, windows flattened to
`<window>.<field>`). Only runs with status ok count. Energy is the windows' GPU + CPU + DRAM energy over
the figures present, always shown with its source (`codecarbon-estimate` on a CPU without RAPL).
Every function returns an empty table (or an empty plot saying why) when there is nothing to compare yet.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from lowres.analysis import empty_axes
from lowres.energy_fit import STANDARD_FITS, WINDOW_PATTERN, standard_fits
from lowres.stats import mean_ci
from lowres.results import energy_and_source

STUDY = "distil_vs_bert"
PAIR = ["bert_model", "distil_model"]
SETUP = ["dataset", "padding", "max_length", "epochs", "train_size", "batch_size", "precision", "hardware"]
PARAMS = ["variant", *PAIR, "dataset", "padding", "max_length", "epochs", "train_size", "batch_size", "precision",
          "seed"]
FIGURES = ["wall_s", "steps", "samples", "tokens", "padded_tokens", "co2_kg"]
RUN_COLUMNS = ["run_id", "model", *PARAMS, "hardware", "quality", "quality_name", "step_flops", *FIGURES,
               "energy_j", "energy_source"]


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def measurement(row: pd.Series, window: str) -> dict:
    """A window's Measurement dict rebuilt from the flattened `<window>.<field>` columns of one run."""
    prefix, m, gpu = f"{window}.", {"sources": {}}, {}
    for column, value in row.items():
        if not column.startswith(prefix) or missing(value):
            continue
        key = column[len(prefix):]
        if key.startswith("sources."):
            m["sources"][key[len("sources."):]] = value
        elif key.startswith("gpu_energy_j.") and key.split(".")[1].isdigit():
            gpu[int(key.split(".")[1])] = value
        elif "." not in key:
            m[key] = value
    m["gpu_energy_j"] = [gpu[i] for i in sorted(gpu)] or None
    return m


def run_identity(row: pd.Series) -> dict:
    """Run id, the twin's model and hardware (its summary), and its params."""
    params = {k: row.get(f"params.{k}") for k in PARAMS}
    return {"run_id": row["run_id"], "model": row.get("summary.model"), **params,
            "hardware": str(row.get("summary.hardware") or "unknown")}


def window_row(row: pd.Series, window: str) -> dict:
    m = measurement(row, window)
    energy, source = energy_and_source(m)
    return {**{k: m.get(k) for k in FIGURES}, "energy_j": energy, "energy_source": source}


def ok_rows(df: pd.DataFrame):
    if df is None or df.empty or "status" not in df:
        return []
    return [row for _, row in df[df["status"] == "ok"].iterrows()]


def runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ok run: identity, quality (its summary's headline), step FLOPs and the `train` window's cost."""
    rows = [{**run_identity(row), "quality": row.get("summary.quality"), "quality_name": row.get("summary.quality_metric"),
             "step_flops": row.get("metrics.step_flops"), **window_row(row, "train")} for row in ok_rows(df)]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def window_points(df: pd.DataFrame, pattern: re.Pattern = WINDOW_PATTERN) -> pd.DataFrame:
    """One row per StepWindows window of every ok run: the points of the energy-vs-tokens fits."""
    rows = []
    for row in ok_rows(df):
        windows = sorted({c.split(".")[0] for c in row.index if pattern.match(c.split(".")[0])})
        identity = run_identity(row)
        rows += [{**identity, "window": w, **window_row(row, w)} for w in windows
                 if row.get(f"{w}.status") == "ok"]
    return pd.DataFrame(rows, columns=[*RUN_COLUMNS[:RUN_COLUMNS.index("quality")], "window", *FIGURES, "energy_j",
                                       "energy_source"])


# across runs, also energy and time against the number of examples (the paper: length predicts better than count)
RUN_FITS = (*STANDARD_FITS, ("samples", "energy_j"), ("samples", "wall_s"))


def energy_fits(df: pd.DataFrame, level: str = "window") -> pd.DataFrame:
    """Least-squares fits per model and hardware (energy and wall time against padded tokens, energy against
    wall time) over StepWindows windows (`window`) or whole training runs (`run`, plus energy ~ samples)."""
    if level not in ("window", "run"):
        raise ValueError(f"unknown level {level!r}; valid: window, run")
    points = window_points(df) if level == "window" else runs(df)
    table = standard_fits(points, ["model", "hardware"], STANDARD_FITS if level == "window" else RUN_FITS)
    if table.empty:
        return table.assign(energy_source=pd.Series(dtype=str))
    sources = points.groupby(["model", "hardware"])["energy_source"].agg(lambda s: ", ".join(sorted(set(s))))
    table = table.merge(sources.reset_index(), on=["model", "hardware"], how="left")
    table.loc[table.y != "energy_j", "energy_source"] = "measured (wall clock)"
    return table


def length_vs_count(df: pd.DataFrame) -> pd.DataFrame:
    """Wang et al.'s framing across whole runs, per model and hardware: R² of training energy and of wall time
    on the tokens processed (examples x padded length) beside R² on the number of examples alone. It only
    separates the two when runs vary length and count independently (the `cpu` profile's max_length x
    train_size grid); `tokens_minus_examples` > 0: length carries what the count misses."""
    fits = energy_fits(df, level="run")
    columns = ["model", "hardware", "y", "runs", "r2_tokens", "r2_examples", "tokens_minus_examples", "source"]
    fits = fits[fits.x.isin(["padded_tokens", "samples"]) & fits.y.isin(["energy_j", "wall_s"])] \
        if len(fits) else fits
    if fits.empty:
        return pd.DataFrame(columns=columns)
    table = fits.set_index(["model", "hardware", "y", "x"])[["r2", "n"]].unstack("x").reindex(
        columns=pd.MultiIndex.from_product([["r2", "n"], ["padded_tokens", "samples"]]))
    out = pd.DataFrame({"runs": table[("n", "padded_tokens")], "r2_tokens": table[("r2", "padded_tokens")],
                        "r2_examples": table[("r2", "samples")]}).reset_index()
    out["tokens_minus_examples"] = out["r2_tokens"] - out["r2_examples"]
    sources = fits.groupby(["model", "hardware", "y"])["energy_source"].first().rename("source").reset_index()
    return out.merge(sources, on=["model", "hardware", "y"], how="left").reindex(columns=columns)


def paired(df_runs: pd.DataFrame, on: list[str], column: str, a, b) -> pd.DataFrame:
    """Runs with `column == a` joined to their twin with `column == b` on `on` (NaN keys match NaN)."""
    left, right = df_runs[df_runs[column] == a], df_runs[df_runs[column] == b]
    return left.merge(right, on=on, suffixes=(f"_{a}", f"_{b}"))


def summarize(per_seed: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds of each column, one row per group of `keys`."""
    rows = []
    for key, group in per_seed.groupby(keys, dropna=False, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row["seeds"] = group["seed"].nunique()
        for column in columns:
            row[column], row[f"{column}_ci_low"], row[f"{column}_ci_high"] = mean_ci(group[column])
        rows.append(row)
    return pd.DataFrame(rows)


def twin_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per twin pair (same setting and seed): DistilBERT/BERT energy, time and FLOPs ratios, the quality
    difference (distil - bert) and whether the twins processed the same tokens."""
    pairs = paired(runs(df), PAIR + SETUP + ["seed"], "variant", "bert", "distil")
    if pairs.empty:
        return pairs
    pairs["energy_ratio"] = pairs["energy_j_distil"] / pairs["energy_j_bert"]
    pairs["time_ratio"] = pairs["wall_s_distil"] / pairs["wall_s_bert"]
    pairs["flops_ratio"] = pairs["step_flops_distil"] / pairs["step_flops_bert"]
    pairs["quality_diff"] = pairs["quality_distil"] - pairs["quality_bert"]
    pairs["same_tokens"] = pairs["padded_tokens_distil"] == pairs["padded_tokens_bert"]
    return pairs


def task_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Per task and hardware, the twin ratios pooled over every setting and seed (mean, 95% t-interval over the
    pairs: how much the saving varies across lengths, sizes and seeds), beside both twins' quality."""
    pairs = twin_pairs(df)
    keys = [*PAIR, "dataset", "hardware"]
    columns = ["energy_ratio", "time_ratio", "flops_ratio", "quality_bert", "quality_distil", "quality_diff"]
    if pairs.empty:
        return pd.DataFrame(columns=[*keys, "pairs", *columns, "energy_source"])
    rows = []
    for key, group in pairs.groupby(keys, sort=True):
        row = {**dict(zip(keys, key)), "pairs": len(group)}
        for column in columns:
            row[column], row[f"{column}_ci_low"], row[f"{column}_ci_high"] = mean_ci(group[column])
        row["energy_source"] = ", ".join(sorted(set(group["energy_source_bert"])))
        rows.append(row)
    return pd.DataFrame(rows)


def twin_table(df: pd.DataFrame) -> pd.DataFrame:
    """DistilBERT/BERT energy, time and FLOPs ratios per task and setting with 95% CIs over seeds, beside the
    quality difference (distil - bert) and whether the twins processed the same tokens."""
    pairs = twin_pairs(df)
    if pairs.empty:
        return pd.DataFrame(columns=[*PAIR, *SETUP, "seeds", "energy_ratio", "time_ratio", "flops_ratio",
                                     "quality_diff", "same_tokens", "energy_source"])
    table = summarize(pairs, PAIR + SETUP, ["energy_ratio", "time_ratio", "flops_ratio", "quality_bert",
                                            "quality_distil", "quality_diff"])
    extra = pairs.groupby(PAIR + SETUP, dropna=False, sort=True).agg(
        same_tokens=("same_tokens", "all"), quality_name=("quality_name_bert", "first"),
        energy_source=("energy_source_bert", lambda s: ", ".join(sorted(set(s)))))
    return table.merge(extra.reset_index(), on=PAIR + SETUP, how="left")


def padding_savings(df: pd.DataFrame, mode: str = "length-grouped", baseline: str = "max_length") -> pd.DataFrame:
    """Energy and time saved by `mode` over `baseline` padding per model and task (CIs over seeds), with
    each mode's padded/real token ratio and the quality difference (mode - baseline)."""
    data = runs(df)
    data["padded_per_real"] = data["padded_tokens"] / data["tokens"]
    keys = ["model", *[k for k in SETUP if k != "padding"]]
    pairs = paired(data, keys + ["seed"], "padding", baseline, mode)
    if pairs.empty:
        return pd.DataFrame(columns=[*keys, "seeds", "energy_saved", "time_saved", "quality_diff"])
    pairs["energy_saved"] = 1 - pairs[f"energy_j_{mode}"] / pairs[f"energy_j_{baseline}"]
    pairs["time_saved"] = 1 - pairs[f"wall_s_{mode}"] / pairs[f"wall_s_{baseline}"]
    pairs["quality_diff"] = pairs[f"quality_{mode}"] - pairs[f"quality_{baseline}"]
    pairs[f"padded_per_real_{baseline}"] = pairs[f"padded_per_real_{baseline}"].astype(float)
    pairs[f"padded_per_real_{mode}"] = pairs[f"padded_per_real_{mode}"].astype(float)
    return summarize(pairs, keys, ["energy_saved", "time_saved", f"padded_per_real_{baseline}",
                                   f"padded_per_real_{mode}", "quality_diff"])


def key_table(df: pd.DataFrame) -> pd.DataFrame:
    """The headline: DistilBERT/BERT energy ratio per task (95% CI over seeds) next to the quality difference."""
    table = twin_table(df)
    columns = ["bert_model", "distil_model", "dataset", "padding", "max_length", "train_size", "hardware", "seeds",
               "energy_ratio",
               "energy_ratio_ci_low", "energy_ratio_ci_high", "time_ratio", "flops_ratio", "quality_name",
               "quality_diff", "quality_diff_ci_low", "quality_diff_ci_high", "same_tokens", "energy_source"]
    return table.reindex(columns=columns)


def fit_figure(points: pd.DataFrame, fits: pd.DataFrame, x: str, y: str, ax=None, hue: str = "model"):
    """Points of y against x per `hue`, each with its least-squares line and R² in the legend."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    points = points.dropna(subset=[x, y]) if not points.empty else points
    if points.empty:
        return empty_axes(ax, f"no {y} vs {x} points yet")
    sns.scatterplot(data=points, x=x, y=y, hue=hue, style="padding", ax=ax)
    for _, fit in fits[(fits.x == x) & (fits.y == y)].dropna(subset=["slope"]).iterrows():
        grouped = hue in fits  # a fit table without the hue column is one fit over all points
        xs = points.loc[points[hue] == fit[hue], x] if grouped else points[x]
        ax.plot([xs.min(), xs.max()], [fit.intercept + fit.slope * xs.min(), fit.intercept + fit.slope * xs.max()],
                label=f"{fit[hue] if grouped else 'fit'}: {fit.slope:.3g} {fit.slope_unit}, R²={fit.r2:.2f}")
    ax.legend(fontsize=7)
    ax.set(xlabel=x, ylabel=y)
    return ax


def key_figure(df: pd.DataFrame, ax=None):
    """Energy per StepWindows window against padded tokens processed, one least-squares line per model."""
    points = window_points(df)
    ax = fit_figure(points, energy_fits(df), "padded_tokens", "energy_j", ax=ax)
    if not points.empty:
        ax.set_title(f"Energy vs tokens processed ({', '.join(sorted(set(points.energy_source)))})", fontsize=9)
    return ax


def ratio_figure(df: pd.DataFrame, ax=None):
    """DistilBERT/BERT energy and time ratios per task with 95% CIs over seeds (1 = no saving)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    table = twin_table(df)
    if table.empty:
        return empty_axes(ax, "no BERT/DistilBERT twins finished yet")
    labels = (table["dataset"] + " · " + table["padding"]).tolist()
    for offset, column in ((-0.15, "energy_ratio"), (0.15, "time_ratio")):
        low = (table[column] - table[f"{column}_ci_low"]).fillna(0)
        high = (table[f"{column}_ci_high"] - table[column]).fillna(0)
        ax.errorbar([i + offset for i in range(len(table))], table[column], yerr=[low, high], fmt="o", capsize=3,
                    label=column.replace("_", " "))
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set(ylabel="DistilBERT / BERT", title="Ratios per task (95% CI over seeds)")
    ax.legend(fontsize=8)
    return ax


def padding_figure(df: pd.DataFrame, ax=None):
    """Training energy per padding mode and model (mean over seeds)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    data = runs(df).dropna(subset=["energy_j"])
    if data.empty:
        return empty_axes(ax, "no finished runs with energy yet")
    sns.barplot(data=data, x="model", y="energy_j", hue="padding", errorbar=None, ax=ax)
    ax.set(title=f"Training energy by padding ({', '.join(sorted(set(data.energy_source)))})", ylabel="energy_j")
    return ax
