"""Published reference figures beside ours, each ending in a verdict that was decided, not implied.

`ANCHORS` is the one table of published figures in lowres; `SOURCES` cites them. For each anchor,
`assess(anchor, frames)` takes the study's ok runs (their summaries, `lowres.summary`) through the anchor's
gates, in order, and stops at the first that fails:

1. **needs** what the claim is about: a CUDA device (AMP-FP16, DataParallel, FP16 inference), a measured
   energy source (NVML counter or RAPL; a codecarbon TDP estimate cannot test an energy claim), a generator
   (RAG latency), the same task (the design's RAG figure is SST-2 accuracy; our RAG study answers questions).
   Failing: **not measurable here**, with what is missing (and, where our stand-in figure exists, it in the note).
2. **comparable runs**: real data and a pretrained model (not the smoke profile). Failing: **not comparable**.
3. **family**: a model of the published family, or a declared stand-in for a relative claim (a ratio or a
   difference between configurations of the same model). Failing: **not comparable**, naming both models.
4. our figure and its 95% interval (lowres.anchor_figures). None: **not measured**, with why.
5. **reproduced** when the interval meets the published range (one-sided claims: the bound holds; qualitative
   claims: their own test), else **not reproduced** with the figure that says so.
A ratio ours / published is shown only for reproduced or not reproduced rows.
"""
from __future__ import annotations

import dataclasses
import math

from lowres import anchor_figures as figures
from lowres.anchor_figures import Ours

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
NOT_COMPARABLE, NOT_MEASURABLE, NOT_MEASURED = "not comparable", "not measurable here", "not measured"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, NOT_MEASURABLE, NOT_MEASURED)
COMPUTE_ERRORS = (KeyError, ValueError, TypeError, IndexError, ZeroDivisionError)  # odd results, not a lowres bug
MEASURED_ENERGY = ("nvml-energy-counter", "nvml-power-sampling", "rapl")

SOURCES = {
    "maina2025": "Maina, Wolovick & Benotti (2025), Low-resource domain adaptation while minimizing energy and "
                 "hardware resource consumption, arXiv:2506.08433",
    "wang2023": "Wang, Na, Strubell, Friedler & Luccioni (2023), Energy and Carbon Considerations of Fine-Tuning "
                "BERT, Findings of EMNLP 2023, pp. 9058-9069, doi:10.18653/v1/2023.findings-emnlp.607",
    "design": "lowres adaptation design brief (SST-2, distilbert-base-uncased, AdamW lr 5e-5, batch 16-64, "
              "3 epochs): reported target figures, not a peer-reviewed measurement",
}
STAND_IN_MINILM = {"minilm": "pretrained MiniLM-L6 (22M parameters) for the published BERT-family model, on a "
                             "relative claim between configurations of the same model"}
STAND_IN_PAIR = {"minilm": "MiniLM-L6 for BERT-base (a 6-layer pretrained encoder)",
                 "minilm-half": "MiniLM-half (3 of MiniLM's 6 layers) for DistilBERT (6 of BERT's 12)"}


@dataclasses.dataclass(frozen=True)
class Anchor:
    """One published headline figure. `low`/`high` bound it (`kind`: range, at_least, qualitative)."""

    key: str
    source: str  # a key of SOURCES
    study: str  # our study that measures the corresponding figure
    quantity: str  # what is compared, with its unit
    claim: str  # the published statement in words
    low: float | None
    high: float | None
    their_hardware: str
    method: str  # how ours is computed
    family: tuple = ()  # models the published figure is for
    stand_ins: dict = dataclasses.field(default_factory=dict)  # model -> why it may stand in
    needs: tuple = ()  # cuda | measured_energy | generator | sst2_rag
    kind: str = "range"
    also: tuple = ()  # other studies whose runs measure the same figure
    text: str | None = None  # the published figure in words where it is not a number

    @property
    def published(self) -> float | None:
        """The published figure as one number (the middle of a range, the bound of a one-sided claim)."""
        bounds = [b for b in (self.low, self.high) if b is not None]
        return sum(bounds) / len(bounds) if bounds else None


MAINA_HW = "2x NVIDIA A30 (BERT-base MLM, VizWiz-VQA questions)"
WANG_HW = "GPU servers, CodeCarbon + a physical power meter (see the paper)"
DESIGN_HW = "not stated (design targets)"
BERT = ("bert-base-uncased",)
PAIR = ("bert-base-uncased", "distilbert-base-uncased")
DISTILBERT = ("distilbert-base-uncased",)
FLAN_T5_BASE = ("google/flan-t5-base",)
STAND_IN_FLAN_SMALL = {"google/flan-t5-small": "flan-t5-small (77M parameters) for flan-t5-base (248M), the same "
                                               "family, on a relative claim between methods"}
QUANT = "the lora study's quantization table: mean over runs vs each run's own fp32"
ANCHORS = (
    Anchor("maina_speedup", "maina2025", "parallelism", "training throughput, DDP+AMP-FP16 / FP32 DP (x)",
           "DDP + AMP-FP16 up to 3.5x faster than FP32 DP", 3.5, 3.5, MAINA_HW,
           "best matched batch size: samples/s ratio, CI over seeds", BERT, STAND_IN_MINILM, ("cuda",),
           also=("precision",)),
    Anchor("maina_memory", "maina2025", "parallelism", "peak memory change, DDP+AMP-FP16 vs FP32 DP (%)",
           "up to 20% less memory", -20.0, -20.0, MAINA_HW, "best matched batch size: peak-memory change",
           BERT, STAND_IN_MINILM, ("cuda",), also=("precision",)),
    Anchor("maina_power", "maina2025", "parallelism", "average power change, DDP+AMP-FP16 vs FP32 DP (%)",
           "nearly 50% less power", -50.0, -50.0, MAINA_HW, "best matched batch size: mean-power change",
           BERT, STAND_IN_MINILM, ("cuda", "measured_energy"), also=("precision",)),
    Anchor("maina_accuracy", "maina2025", "parallelism", "MLM accuracy difference, DDP+AMP-FP16 - FP32 DP (points)",
           "no loss in MLM accuracy", -0.5, 0.5, MAINA_HW, "mean over matched batch sizes", BERT, STAND_IN_MINILM,
           ("cuda",), also=("precision",)),
    Anchor("wang_distil_energy", "wang2023", "distil_vs_bert", "fine-tuning energy change, DistilBERT vs BERT (%)",
           "DistilBERT takes about 50% less fine-tuning energy than BERT-base", -50.0, -50.0, WANG_HW,
           "the study's twin table: mean energy ratio over twin settings, minus 1", PAIR, STAND_IN_PAIR,
           ("measured_energy",)),
    Anchor("wang_tokens_linear", "wang2023", "distil_vs_bert", "R² of energy vs tokens processed (linear fit)",
           "energy scales linearly with the tokens processed (padding included)", 0.9, None, WANG_HW,
           "the study's energy fits: mean R² per model and hardware", PAIR, STAND_IN_PAIR, ("measured_energy",),
           kind="at_least", text="linear (R² >= 0.9)"),
    Anchor("wang_length_vs_count", "wang2023", "distil_vs_bert",
           "R²(energy ~ tokens) - R²(energy ~ examples), across runs",
           "sequence length predicts energy better than the number of examples", 0.0, None, WANG_HW,
           "the study's run-level fits on padded tokens and on examples", PAIR, STAND_IN_PAIR, ("measured_energy",),
           kind="at_least", text="tokens predict better (> 0)"),
    Anchor("design_full_ft", "design", "lora", "SST-2 dev accuracy, full fine-tuning (%)",
           "full fine-tuning 93-94%", 93.0, 94.0, DESIGN_HW, "best configuration's seed-mean on real SST-2",
           DISTILBERT, also=("distil_vs_bert", "quickstart")),
    Anchor("design_lora", "design", "lora", "SST-2 dev accuracy, LoRA (%)", "LoRA 92-93%", 92.0, 93.0, DESIGN_HW,
           "best configuration's seed-mean on real SST-2", DISTILBERT),
    Anchor("design_lora_gap", "design", "lora", "LoRA - full fine-tuning accuracy (points)",
           "LoRA within 1-2 points of full fine-tuning", -2.0, 0.0, DESIGN_HW,
           "paired by model, data and seed; the best rank", DISTILBERT, STAND_IN_MINILM),
    Anchor("design_lora_gap_generative", "design", "seq2seq", "LoRA - full fine-tuning, ROUGE-L or F1 (points)",
           "LoRA within 1-2 points of full fine-tuning (its summarization plan: flan-t5-base)", -2.0, 0.0,
           DESIGN_HW, "paired by model, data and seed; the best rank; the run's headline metric", FLAN_T5_BASE,
           STAND_IN_FLAN_SMALL),
    Anchor("design_prompting", "design", "prompting", "SST-2 dev accuracy, prompting (%)", "prompting 88-90%",
           88.0, 90.0, DESIGN_HW, "best configuration's seed-mean on real SST-2", DISTILBERT),
    Anchor("design_rag", "design", "rag", "SST-2 task accuracy, RAG (%)", "RAG 91-92%", 91.0, 92.0, DESIGN_HW,
           "best configuration's seed-mean on real SST-2", DISTILBERT, needs=("sst2_rag",)),
    Anchor("design_fp16_loss", "design", "lora", "accuracy loss, FP16 vs FP32 inference (points)",
           "FP16 inference loses < 0.5 point", 0.0, 0.5, DESIGN_HW, QUANT, DISTILBERT, STAND_IN_MINILM, ("cuda",)),
    Anchor("design_fp16_memory", "design", "lora", "model memory saved, FP16 vs FP32 (%)", "FP16 saves 30-40% memory",
           30.0, 40.0, DESIGN_HW, QUANT, DISTILBERT, STAND_IN_MINILM, ("cuda",)),
    Anchor("design_int8_loss", "design", "lora", "accuracy loss, INT8 vs FP32 inference (points)",
           "INT8 inference loses 1-2 points", 1.0, 2.0, DESIGN_HW, QUANT, DISTILBERT, STAND_IN_MINILM),
    Anchor("design_int8_memory", "design", "lora", "model memory saved, INT8 vs FP32 (%)", "INT8 saves > 50% memory",
           50.0, None, DESIGN_HW, QUANT, DISTILBERT, STAND_IN_MINILM, kind="at_least"),
    Anchor("design_rag_latency", "design", "rag", "RAG end-to-end latency per query (ms)", "RAG 80-120 ms", 80.0,
           120.0, DESIGN_HW, "mean over runs of the per-question latency", ("google/flan-t5-small",
                                                                             "google/flan-t5-base"),
           needs=("generator",)),
)


def analysis(study: str):
    from lowres import studies

    return studies.analysis(study)


OURS = {
    "maina_speedup": lambda df: figures.maina(df, "train_samples", "ratio", "max"),
    "maina_memory": lambda df: figures.maina(df, "peak_memory_bytes", "ratio", "min", figures.pct),
    "maina_power": lambda df: figures.maina(df, "train_power_w", "ratio", "min", figures.pct),
    "maina_accuracy": lambda df: figures.maina(df, "quality", "diff", "mean", lambda v: 100 * v),
    "wang_distil_energy": lambda df: figures.wang_energy_ratio(df, analysis("distil_vs_bert")),
    "wang_tokens_linear": lambda df: figures.wang_linear(df, analysis("distil_vs_bert")),
    "wang_length_vs_count": lambda df: figures.wang_length_vs_count(df, analysis("distil_vs_bert")),
    "design_full_ft": lambda df: figures.best_accuracy(df[df["summary.strategy"] == "full_ft"]),
    "design_lora": lambda df: figures.best_accuracy(df[df["summary.strategy"] == "lora"]),
    "design_lora_gap": lambda df: figures.lora_gap(df, analysis("lora")),
    "design_lora_gap_generative": lambda df: figures.lora_gap(df, analysis("seq2seq"), "quality", binomial=False),
    "design_prompting": figures.best_accuracy,
    "design_rag": figures.best_accuracy,
    "design_fp16_loss": lambda df: figures.quantization(df, analysis("lora"), "fp16", "loss"),
    "design_fp16_memory": lambda df: figures.quantization(df, analysis("lora"), "fp16", "memory"),
    "design_int8_loss": lambda df: figures.quantization(df, analysis("lora"), "int8", "loss"),
    "design_int8_memory": lambda df: figures.quantization(df, analysis("lora"), "int8", "memory"),
    "design_rag_latency": figures.rag_latency,
}


@dataclasses.dataclass
class Assessment:
    """An anchor's row: our figure (or none), the verdict and why, the stand-ins it used."""

    verdict: str
    why: str
    ours: Ours | None = None
    stand_in: str = ""


# ---------------------------------------------------------------------------------------------- gates
def ok_runs(frames: dict, *studies: str):
    """The ok runs of `studies` (their summaries), one frame."""
    import pandas as pd

    parts = [frames.get(study) for study in studies]
    parts = [f[f["status"] == "ok"] for f in parts if f is not None and not f.empty and "summary.comparable" in f]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def unmet_need(need: str, df) -> str | None:
    """Why the runs cannot test a claim that needs `need`, or None."""
    kinds = set(df["summary.memory_kind"].dropna()) if "summary.memory_kind" in df else set()
    if need == "cuda" and not any(str(k).startswith("gpu") for k in kinds):
        return "needs a CUDA GPU (AMP-FP16, DataParallel and FP16 inference do not exist on a CPU); these runs ran on a CPU"
    if need == "measured_energy":
        sources = {s.strip() for v in df["summary.energy_source"].dropna() for s in str(v).split(",")}
        if not sources & set(MEASURED_ENERGY):
            return (f"needs measured energy (NVML or RAPL); here energy is {', '.join(sorted(sources)) or 'not measured'}"
                    " (a whole-machine TDP estimate that follows time by construction)")
    if need == "generator" and not set(df["summary.model"].dropna()) - {"baseline-extractive"}:
        return "needs a generator; these runs answered with the lexical baseline reader (no model)"
    if need == "sst2_rag":
        return "our RAG study answers SQuAD questions (F1); the design's RAG figure is an SST-2 accuracy"
    return None


def family_gate(anchor: Anchor, df) -> tuple[str | None, str]:
    """(why not comparable, stand-in description) from the models the runs used."""
    models = set(df["summary.model"].dropna())
    allowed = set(anchor.family) | set(anchor.stand_ins)
    if not anchor.family or models <= set(anchor.family):
        return None, ""
    if not models <= allowed:
        return (f"ran {', '.join(sorted(models))}; the published figure is for {', '.join(anchor.family)}"
                + (f" (stand-ins: {', '.join(anchor.stand_ins)})" if anchor.stand_ins else "")), ""
    return None, "; ".join(anchor.stand_ins[m] for m in sorted(models & set(anchor.stand_ins)))


def most_common(values) -> str:
    import collections

    counts = collections.Counter(str(v) for v in values)
    return "; ".join(f"{reason} ({n} run{'s' if n > 1 else ''})" for reason, n in counts.most_common(2))


def assess(anchor: Anchor, frames: dict) -> Assessment:
    """The anchor's row (see the module docstring for the order of the gates)."""
    df = ok_runs(frames, anchor.study, *anchor.also)
    if df.empty:
        return Assessment(NOT_MEASURED, f"no ok run of the {' or '.join((anchor.study, *anchor.also))} study")
    real = df[df["summary.comparable"] == True]  # noqa: E712 - a column of booleans
    for need in anchor.needs:
        missing = unmet_need(need, real if not real.empty else df)
        if missing:
            stand_in = compute(anchor, real) if not real.empty and need != "sst2_rag" else None
            extra = f"; our stand-in figure: {number_text(stand_in)}" if stand_in else ""
            return Assessment(NOT_MEASURABLE, missing + extra)
    if real.empty:
        return Assessment(NOT_COMPARABLE, most_common(df["summary.comparability"]))
    blocked, stand_in = family_gate(anchor, real)
    if blocked:
        return Assessment(NOT_COMPARABLE, blocked)
    ours = compute(anchor, real)
    if ours is None:
        return Assessment(NOT_MEASURED, f"the comparable {anchor.study} runs do not give this figure", None, stand_in)
    verdict, why = judge(anchor, ours)
    return Assessment(verdict, why, ours, stand_in)


def compute(anchor: Anchor, df) -> Ours | None:
    try:
        return OURS[anchor.key](df)
    except COMPUTE_ERRORS:  # one odd study must not take the anchor table down; the row says not measured
        return None


# ---------------------------------------------------------------------------------------------- verdicts
def interval(ours: Ours) -> tuple[float, float]:
    return (ours.low, ours.high) if ours.has_interval else (ours.value, ours.value)


def judge(anchor: Anchor, ours: Ours) -> tuple[str, str]:
    """Reproduced when our 95% interval meets the published range (or the one-sided bound holds)."""
    low, high = interval(ours)
    eps = 1e-9 * max(1.0, abs(anchor.low or 0.0), abs(anchor.high or 0.0))  # float noise is not a difference
    low, high = low - eps, high + eps
    shown = number_text(ours)
    if anchor.kind == "at_least":
        ok = high >= anchor.low
        return (REPRODUCED if ok else NOT_REPRODUCED,
                f"ours {shown} {'reaches' if ok else 'stays below'} {anchor.low:g}")
    meets = high >= anchor.low and low <= anchor.high
    if meets:
        return REPRODUCED, f"ours {shown} meets the published {published_text(anchor)}"
    side = "below" if high < anchor.low else "above"
    return NOT_REPRODUCED, f"ours {shown} lies {side} the published {published_text(anchor)}"


def sig(value: float) -> str:
    return f"{value:.3g}" if value is not None and math.isfinite(value) else "-"


def number_text(ours: Ours | None) -> str:
    if ours is None or ours.value is None:
        return "-"
    if ours.has_interval:
        return f"{sig(ours.value)} [{sig(ours.low)}, {sig(ours.high)}]"
    return f"{sig(ours.value)} (no interval: one run)"


def published_text(anchor: Anchor) -> str:
    if anchor.text or (anchor.low is None and anchor.high is None):
        return anchor.text or "qualitative"
    if anchor.high is None:
        return f"> {anchor.low:g}"
    return f"{anchor.low:g}" if anchor.low == anchor.high else f"{anchor.low:g} to {anchor.high:g}"


def ratio(anchor: Anchor, assessment: Assessment) -> float | None:
    """ours / published, only where the two can stand side by side and the published figure is a number."""
    if assessment.verdict not in (REPRODUCED, NOT_REPRODUCED) or anchor.kind != "range":
        return None
    published = anchor.published
    return assessment.ours.value / published if published else None


# ---------------------------------------------------------------------------------------------- the table
def anchor_table(frames: dict):
    """Every anchor: the claim, published figure, ours with its 95% interval, verdict and why, stand-ins,
    both hardwares, our energy source, seeds and runs, how ours is computed."""
    import pandas as pd

    rows = []
    for anchor in ANCHORS:
        found = assess(anchor, frames)
        ours = found.ours
        rows.append({"anchor": anchor.key, "source": anchor.source, "claim": anchor.claim,
                     "quantity": anchor.quantity, "published": published_text(anchor),
                     "ours (95% interval)": number_text(ours) if ours else "-",
                     "verdict": found.verdict, "why": found.why, "stand-in": found.stand_in or "-",
                     "ours": ours.value if ours else None, "ratio": ratio(anchor, found),
                     "our hardware": ours.hardware if ours else "-", "energy source": ours.energy_source if ours else "-",
                     "seeds": ours.seeds if ours else 0, "runs": ours.runs if ours else 0,
                     "their hardware": anchor.their_hardware, "how": anchor.method,
                     "note": ours.note if ours else ""})
    return pd.DataFrame(rows)


def anchor_summary(table) -> str:
    """Anchor, published figure, verdict (what nbval checks: no timings, no machine-dependent numbers)."""
    lines = [f"{'anchor':<22} {'published':>18}  verdict"]
    for _, row in table.iterrows():
        lines.append(f"{row['anchor']:<22} {row['published']:>18}  {row['verdict']}")
    return "\n".join(lines)


def sources_table():
    import pandas as pd

    return pd.DataFrame([{"source": k, "citation": v} for k, v in SOURCES.items()])
