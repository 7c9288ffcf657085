"""Published reference figures (data, with their sources) next to our corresponding figures.

`ANCHORS` is the one table of published figures in lowres; `SOURCES` cites them. `ours(anchor, frames)`
computes our corresponding figure from `{study: lowres.results.collect(study)}` when the columns it needs
exist, else returns a figure with `value=None` and the reason ("not measured: ..."). Every figure of ours
carries the hardware it ran on, the source of its energy figures and its number of seeds.

How ours is computed (documented per anchor in `Anchor.method`): configurations are matched on the columns
in `MATCH` (same model, data and batch size), seeds are averaged within a configuration, and "up to" claims
take the best matched configuration, as the paper's "up to" does. Column names are looked up from short
candidate lists (the `*_COLUMNS` tuples); run-level figures (throughput, peak memory, power, quality, strategy,
model, hardware) are the run summaries' columns (`lowres.summary`), never re-derived from windows here.
"""
from __future__ import annotations

import dataclasses
import math

NOT_MEASURED = "not measured"
NO_ENERGY = "n/a (not an energy figure)"

SOURCES = {
    "maina2025": "Maina, Wolovick & Benotti (2025), Low-resource domain adaptation while minimizing energy and "
                 "hardware resource consumption, arXiv:2506.08433",
    "wang2023": "Wang, Na, Strubell, Friedler & Luccioni (2023), Energy and Carbon Considerations of Fine-Tuning "
                "BERT, Findings of EMNLP 2023, pp. 9058-9069, doi:10.18653/v1/2023.findings-emnlp.607",
    "design": "lowres adaptation design brief (SST-2, distilbert-base-uncased, AdamW lr 5e-5, batch 16-64, "
              "3 epochs): reported target figures, not a peer-reviewed measurement",
}


@dataclasses.dataclass(frozen=True)
class Anchor:
    """One published headline figure. `low`/`high` bound the published value (None: open or qualitative)."""

    key: str
    source: str  # a key of SOURCES
    study: str  # our study that measures the corresponding figure
    quantity: str  # what is compared, with its unit
    claim: str  # the published statement in words
    low: float | None
    high: float | None
    their_hardware: str
    method: str  # how ours is computed
    text: str | None = None  # the published figure in words where it is not a number

    @property
    def published(self) -> float | None:
        """The published figure as one number (the middle of a range, the bound of a one-sided claim)."""
        bounds = [b for b in (self.low, self.high) if b is not None]
        return sum(bounds) / len(bounds) if bounds else None


MAINA_HW = "2x NVIDIA A30 (BERT-base MLM, VizWiz-VQA questions)"
WANG_HW = "GPU servers, CodeCarbon + a physical power meter (see the paper)"
DESIGN_HW = "not stated (design targets)"
QUANT_METHOD = "lowres.analysis.lora.quantization_table: mean over runs (state-dict bytes for memory)"
ANCHORS = (
    Anchor("maina_speedup", "maina2025", "parallelism", "training throughput, DDP+AMP-FP16 / FP32 DP (x)",
           "DDP + AMP-FP16 up to 3.5x faster than FP32 DP", 3.5, 3.5, MAINA_HW,
           "max over matched batch sizes of samples/s ratio"),
    Anchor("maina_memory", "maina2025", "parallelism", "peak memory change, DDP+AMP-FP16 vs FP32 DP (%)",
           "up to 20% less memory", -20.0, -20.0, MAINA_HW, "min over matched batch sizes of the peak-memory change"),
    Anchor("maina_power", "maina2025", "parallelism", "average power change, DDP+AMP-FP16 vs FP32 DP (%)",
           "nearly 50% less power", -50.0, -50.0, MAINA_HW, "min over matched batch sizes of the mean-power change"),
    Anchor("maina_accuracy", "maina2025", "parallelism", "MLM accuracy difference, DDP+AMP-FP16 - FP32 DP (points)",
           "no loss in MLM accuracy", 0.0, 0.0, MAINA_HW, "mean over matched batch sizes"),
    Anchor("wang_distil_energy", "wang2023", "distil_vs_bert", "fine-tuning energy change, DistilBERT vs BERT (%)",
           "DistilBERT takes about 50% less fine-tuning energy than BERT-base", -50.0, -50.0, WANG_HW,
           "lowres.analysis.distil_vs_bert.twin_table: mean energy ratio over twin settings, minus 1"),
    Anchor("wang_tokens_linear", "wang2023", "distil_vs_bert", "R² of energy vs tokens processed (linear fit)",
           "energy scales linearly with the tokens processed (padding included)", None, None, WANG_HW,
           "lowres.analysis.distil_vs_bert.energy_fits: mean R² per model and hardware", text="linear"),
    Anchor("design_full_ft", "design", "lora", "SST-2 dev accuracy, full fine-tuning (%)",
           "full fine-tuning 93-94%", 93.0, 94.0, DESIGN_HW, "best configuration's seed-mean on real SST-2"),
    Anchor("design_lora", "design", "lora", "SST-2 dev accuracy, LoRA (%)", "LoRA 92-93%", 92.0, 93.0, DESIGN_HW,
           "best configuration's seed-mean on real SST-2"),
    Anchor("design_prompting", "design", "prompting", "SST-2 dev accuracy, prompting (%)", "prompting 88-90%",
           88.0, 90.0, DESIGN_HW, "best configuration's seed-mean on real SST-2"),
    Anchor("design_rag", "design", "rag", "SST-2 task accuracy, RAG (%)", "RAG 91-92%", 91.0, 92.0, DESIGN_HW,
           "best configuration's seed-mean on real SST-2"),
    Anchor("design_fp16_loss", "design", "lora", "accuracy loss, FP16 vs FP32 inference (points)",
           "FP16 inference loses < 0.5 point", 0.0, 0.5, DESIGN_HW, QUANT_METHOD),
    Anchor("design_fp16_memory", "design", "lora", "model memory saved, FP16 vs FP32 (%)", "FP16 saves 30-40% memory",
           30.0, 40.0, DESIGN_HW, QUANT_METHOD),
    Anchor("design_int8_loss", "design", "lora", "accuracy loss, INT8 vs FP32 inference (points)",
           "INT8 inference loses 1-2 points", 1.0, 2.0, DESIGN_HW, QUANT_METHOD),
    Anchor("design_int8_memory", "design", "lora", "model memory saved, INT8 vs FP32 (%)", "INT8 saves > 50% memory",
           50.0, None, DESIGN_HW, QUANT_METHOD),
    Anchor("design_rag_latency", "design", "rag", "RAG end-to-end latency per query (ms)", "RAG 80-120 ms", 80.0,
           120.0, DESIGN_HW, "median over runs"),
)

MATCH = ("params.model", "params.dataset", "params.task", "params.batch_size")
STRATEGY_COLUMNS = ("params.strategy",)
SST2 = ("sst2",)
COMPUTE_ERRORS = (KeyError, ValueError, TypeError, IndexError, ZeroDivisionError)  # odd results, not a lowres bug


@dataclasses.dataclass
class Ours:
    """Our figure for one anchor; `value` None means not measured, and `note` says why."""

    value: float | None = None
    hardware: str = "-"
    energy_source: str = NO_ENERGY
    seeds: int = 0
    runs: int = 0
    note: str = ""


def not_measured(why: str) -> Ours:
    return Ours(note=f"{NOT_MEASURED}: {why}")


# ---------------------------------------------------------------------------------------------- columns
def ok_runs(frames: dict, study: str):
    import pandas as pd

    frame = frames.get(study)
    if frame is None or frame.empty or "status" not in frame:
        return pd.DataFrame()
    return frame[frame["status"] == "ok"].reset_index(drop=True)


def first_column(df, candidates) -> str | None:
    return next((c for c in candidates if c in df.columns and df[c].notna().any()), None)


def numeric(df, column):
    import pandas as pd

    return pd.to_numeric(df[column], errors="coerce") if column in df.columns else pd.Series(float("nan"), df.index)


def summary_figure(df, field: str):
    """A run-summary column (lowres.summary) as floats, or None when no run has it."""
    column = f"summary.{field}"
    return numeric(df, column) if column in df.columns and numeric(df, column).notna().any() else None


def hardware(df) -> str:
    """The hardware the runs used (GPU names, else the CPU model; several when runs differ)."""
    names = {str(v) for v in df["summary.hardware"].dropna()} if "summary.hardware" in df.columns else set()
    return "; ".join(sorted(names)) or "-"


def sources(df, field: str) -> str:
    column = f"summary.{field}"
    values = sorted({str(v) for v in df[column].dropna()}) if column in df.columns else []
    return ", ".join(values) or "unknown"


def seed_count(df) -> int:
    return int(df["params.seed"].nunique()) if "params.seed" in df.columns else 1


def evidence(value, df, note: str, source: str = NO_ENERGY) -> Ours:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return not_measured(note)
    return Ours(float(value), hardware(df), source, seed_count(df), len(df), note)


def as_points(x: float) -> float:
    """Accuracy in percent / points (results store fractions in [0, 1])."""
    return 100 * x


# ---------------------------------------------------------------------------------------------- matching
def config_key(df, columns):
    """One string per row naming its values in `columns` (missing values included, as 'nan')."""
    import pandas as pd

    if not columns:
        return pd.Series("all", index=df.index)
    return df[list(columns)].map(str).agg("|".join, axis=1)


def matched(df, label, base: str, cand: str, values, how: str = "ratio", keys=MATCH):
    """Per matched configuration (`keys` columns, seed-mean): cand / base (ratio) or cand - base (diff)."""
    keys = [c for c in keys if c in df.columns]
    frame = df.assign(_label=label.values, _value=values.values).dropna(subset=["_value"])
    frame = frame[frame["_label"].isin([base, cand])]
    if frame.empty:
        return []
    means = frame.groupby([config_key(frame, keys), frame["_label"]])["_value"].mean().unstack()
    if base not in means or cand not in means:
        return []
    pairs = means[[base, cand]].dropna()
    result = pairs[cand] / pairs[base] if how == "ratio" else pairs[cand] - pairs[base]
    return [v for v in result.tolist() if math.isfinite(v)]


# ---------------------------------------------------------------------------------------------- Maina et al.
def model_name(row) -> str:
    """The model the run used (its summary: each study declares which parameter names it)."""
    model = row.get("summary.model")
    return model if isinstance(model, str) else "?"


def precision_contrast(df):
    """(label Series, base, cand, description): FP32 on DP (else single) vs AMP on DDP (else the same strategy).

    On a CPU, 16-mixed is not available (Lightning runs bf16): bf16-mixed stands in and the note says so."""
    if "params.precision" not in df.columns:
        return None
    precisions = set(df["params.precision"].dropna())
    mixed = next((p for p in ("16-mixed", "bf16-mixed") if p in precisions), None)
    if "32-true" not in precisions or mixed is None:
        return None
    strategy_col = first_column(df, STRATEGY_COLUMNS)
    strategies = set(df[strategy_col].dropna()) if strategy_col else set()
    base_s = next((s for s in ("dp", "single") if s in strategies), None)
    cand_s = "ddp" if "ddp" in strategies else base_s
    strategy = df[strategy_col].map(str) if strategy_col else "all"
    label = df["params.precision"].map(str) + "/" + (strategy if strategy_col else "all")
    base, cand = f"32-true/{base_s or 'all'}", f"{mixed}/{cand_s or 'all'}"
    return label, base, cand, f"{cand} vs {base}" + ("" if mixed == "16-mixed" else " (bf16 stands in for AMP-FP16)")


def maina_figure(frames, figure, how: str, pick) -> Ours:
    """Parallelism study first (both axes), else the precision study (AMP on one device)."""
    for study in ("parallelism", "precision"):
        df = ok_runs(frames, study)
        contrast = precision_contrast(df) if not df.empty else None
        if contrast is None:
            continue
        label, base, cand, described = contrast
        values, source = figure(df)
        if values is None:
            continue
        found = matched(df, label, base, cand, values, how)
        if found:
            note = f"{study} study: {described}, {len(found)} matched configuration(s)"
            return evidence(pick(found), df, note, source)
    return not_measured("needs ok runs of the parallelism or precision study at 32-true and a mixed precision, "
                        "with the figure recorded")


def throughput(df):
    samples, wall = summary_figure(df, "train_samples"), summary_figure(df, "train_wall_s")
    return (samples / wall, NO_ENERGY) if samples is not None and wall is not None else (None, None)


def peak_memory(df):
    memory = summary_figure(df, "peak_memory_bytes")
    return (memory, NO_ENERGY) if memory is not None else (None, None)


def mean_power(df):
    power = summary_figure(df, "train_power_w")
    return (power, sources(df, "train_power_source")) if power is not None else (None, None)


def mlm_accuracy(df):
    quality = summary_figure(df, "quality")
    return (quality.map(as_points), NO_ENERGY) if quality is not None else (None, None)


def pct_change(ratios: list, pick) -> float:
    return 100 * (pick(ratios) - 1)


# ---------------------------------------------------------------------------------------------- Wang et al.
def analysis(study: str):
    """The study's analysis module (lowres/studies/<study>/analysis.py)."""
    from lowres import studies

    return studies.analysis(study)


def joined(values) -> str:
    return ", ".join(sorted({str(v) for v in values if isinstance(v, str) and v})) or "unknown"


def wang_distil_energy(frames) -> Ours:
    """The distil_vs_bert study's own twin table (lowres.analysis.distil_vs_bert): mean DistilBERT/BERT ratio."""
    df, module = ok_runs(frames, "distil_vs_bert"), analysis("distil_vs_bert")
    if df.empty or module is None:
        return not_measured("needs ok distil_vs_bert runs and lowres.analysis.distil_vs_bert")
    table = module.twin_table(df).dropna(subset=["energy_ratio"])
    if table.empty:
        return not_measured("no DistilBERT/BERT twins with training energy")
    note = (f"mean over {len(table)} twin setting(s) ({joined(table['dataset'])}; padding "
            f"{joined(table['padding'])}); time ratio {table['time_ratio'].mean():.2f}")
    return Ours(100 * (table["energy_ratio"].mean() - 1), joined(table["hardware"]), joined(table["energy_source"]),
                int(table["seeds"].max()), len(df), note)


def wang_tokens_linear(frames) -> Ours:
    """R² of the study's own fits of energy on padded tokens: across runs where 3+ token counts exist, else within
    runs (over its `steps_<i>` windows)."""
    df, module = ok_runs(frames, "distil_vs_bert"), analysis("distil_vs_bert")
    if df.empty or module is None:
        return not_measured("needs ok distil_vs_bert runs and lowres.analysis.distil_vs_bert")
    for level, where in (("run", "across runs"), ("window", "over step windows within runs")):
        fits = module.energy_fits(df, level=level)
        fits = fits[(fits.x == "padded_tokens") & (fits.y == "energy_j")].dropna(subset=["r2"]) if len(fits) else fits
        if len(fits):
            source = joined(fits["energy_source"])
            note = f"mean R² of {len(fits)} fit(s) per model and hardware, {where}"
            if "codecarbon" in source:
                note += "; energy is a codecarbon estimate (load x TDP), near-proportional to time by construction"
            return Ours(float(fits["r2"].mean()), joined(fits["hardware"]), source, seed_count(df), len(df), note)
    return not_measured("no energy-vs-tokens fit with 3+ distinct token counts")


# ---------------------------------------------------------------------------------------------- the design
def on_sst2(df):
    if "summary.dataset" not in df.columns:
        return df.iloc[0:0]
    return df[df["summary.dataset"].map(str).str.lower().isin(SST2)]


def strategy_is(df, strategy: str | None):
    if strategy is None or "summary.strategy" not in df.columns:
        return df if strategy is None else df.iloc[0:0]
    return df[df["summary.strategy"] == strategy]


def best_accuracy(frames, studies, strategy: str | None = None) -> Ours:
    """The best configuration's seed-mean accuracy on real SST-2 over `studies` (runs of `strategy` only)."""
    import pandas as pd

    parts = [strategy_is(on_sst2(ok_runs(frames, s)), strategy) for s in studies]
    df = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(not p.empty for p in parts) else None
    if df is None or "metrics.accuracy" not in df:
        return not_measured(f"no ok run on real SST-2 with an accuracy in {', '.join(studies)} "
                            "(the smoke profile uses synthetic data)")
    config = [c for c in df.columns if c.startswith("params.") and c != "params.seed"]
    keys = config_key(df, config)
    means = numeric(df, "metrics.accuracy").groupby(keys).mean().dropna()
    if means.empty:
        return not_measured("the SST-2 runs record no accuracy")
    chosen = df[keys == means.idxmax()]
    model = model_name(chosen.iloc[0])
    note = f"{chosen['study'].iloc[0]} study, {model}, best of {len(means)} configuration(s)"
    return evidence(as_points(float(means.max())), chosen, note)


def quantization(frames, precision: str, what: str) -> Ours:
    """The lora study's own quantization table (lowres.analysis.lora): mean over runs vs each run's fp32."""
    df, module = ok_runs(frames, "lora"), analysis("lora")
    if df.empty or module is None:
        return not_measured("needs ok lora runs and lowres.analysis.lora")
    table = module.quantization_table(df)
    table = table[table["precision"] == precision] if len(table) else table
    column = "accuracy_change_pts" if what == "loss" else "memory_saved_pct"
    values = table[column].dropna() if len(table) else table
    if not len(values):
        return not_measured(f"the lora runs record no {precision} inference (fp16 needs CUDA)")
    value = -values.mean() if what == "loss" else values.mean()
    runs = df[df["run_id"].isin(table["run_id"])]
    note = f"{precision} vs fp32 of the same fine-tuned model, {len(values)} run(s), backend {joined(table['backend'])}"
    return evidence(float(value), runs, note)


def rag_accuracy(frames) -> Ours:
    found = best_accuracy(frames, ["rag"])
    if found.value is None:
        found.note = f"{NOT_MEASURED}: no RAG run on SST-2 with an accuracy (our RAG study answers questions: EM/F1)"
    return found


def rag_latency(frames) -> Ours:
    df = ok_runs(frames, "rag")
    latency = summary_figure(df, "latency_ms") if not df.empty else None
    if latency is None:
        return not_measured("no ok rag run with an end-to-end latency")
    values = latency.dropna()
    return evidence(float(values.median()), df, f"median latency per question over {len(values)} run(s)")


def mean(values) -> float:
    return sum(values) / len(values)


OURS = {
    "maina_speedup": lambda f: maina_figure(f, throughput, "ratio", max),
    "maina_memory": lambda f: maina_figure(f, peak_memory, "ratio", lambda r: pct_change(r, min)),
    "maina_power": lambda f: maina_figure(f, mean_power, "ratio", lambda r: pct_change(r, min)),
    "maina_accuracy": lambda f: maina_figure(f, mlm_accuracy, "diff", mean),
    "wang_distil_energy": wang_distil_energy,
    "wang_tokens_linear": wang_tokens_linear,
    "design_full_ft": lambda f: best_accuracy(f, ["lora", "distil_vs_bert", "quickstart"], "full_ft"),
    "design_lora": lambda f: best_accuracy(f, ["lora"], "lora"),
    "design_prompting": lambda f: best_accuracy(f, ["prompting"]),
    "design_rag": rag_accuracy,
    "design_fp16_loss": lambda f: quantization(f, "fp16", "loss"),
    "design_fp16_memory": lambda f: quantization(f, "fp16", "memory"),
    "design_int8_loss": lambda f: quantization(f, "int8", "loss"),
    "design_int8_memory": lambda f: quantization(f, "int8", "memory"),
    "design_rag_latency": rag_latency,
}


def ours(anchor: Anchor, frames: dict) -> Ours:
    """Our figure for `anchor`; a computation that fails on unexpected data is reported, never raised."""
    try:
        return OURS[anchor.key](frames)
    except COMPUTE_ERRORS as err:  # one odd study must not take the anchor table down
        return not_measured(f"could not compute ({type(err).__name__}: {err})")


# ---------------------------------------------------------------------------------------------- the table
def published_text(anchor: Anchor) -> str:
    if anchor.text or (anchor.low is None and anchor.high is None):
        return anchor.text or "qualitative"
    if anchor.high is None:
        return f"> {anchor.low:g}"
    return f"{anchor.low:g}" if anchor.low == anchor.high else f"{anchor.low:g}-{anchor.high:g}"


def ratio(anchor: Anchor, value: float | None) -> float | None:
    published = anchor.published
    return value / published if value is not None and published else None


def anchor_table(frames: dict):
    """Every anchor: published figure, ours, ratio ours/published, both hardwares, energy source, seeds, note."""
    import pandas as pd

    rows = []
    for anchor in ANCHORS:
        found = ours(anchor, frames)
        rows.append({"anchor": anchor.key, "source": anchor.source, "study": anchor.study,
                     "quantity": anchor.quantity, "claim": anchor.claim, "published": published_text(anchor),
                     "ours": found.value, "ratio": ratio(anchor, found.value), "our hardware": found.hardware,
                     "energy source": found.energy_source, "seeds": found.seeds, "runs": found.runs,
                     "their hardware": anchor.their_hardware, "how": anchor.method, "note": found.note})
    return pd.DataFrame(rows)


def anchor_summary(table) -> str:
    """The table's figures rounded to 2 decimals as fixed text (what nbval checks)."""
    def fmt(v, missing):
        return missing if v is None or v != v else f"{v:.2f}"

    lines = [f"{'anchor':<20} {'published':>10} {'ours':>13} {'ratio':>6} seeds"]
    for _, row in table.iterrows():
        lines.append(f"{row['anchor']:<20} {row['published']:>10} {fmt(row['ours'], NOT_MEASURED):>13} {fmt(row['ratio'], '-'):>6} "
                     f"{row['seeds']}")
    return "\n".join(lines)


def sources_table():
    import pandas as pd

    return pd.DataFrame([{"source": k, "citation": v} for k, v in SOURCES.items()])
