"""Prompting study steps: the configurations one run scores (every shot count, method and template), loading
the scorer, encoding once, scoring, the results table and the metrics a run records."""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Sequence

import pandas as pd

from lowres import prompting
from lowres.results import energy_per_sample, number

SHARED_WINDOW = "encode_eval"  # embedding prompting: the scored texts, encoded once for every configuration


@dataclasses.dataclass(frozen=True)
class PromptConfig:
    name: str  # window and result key: zero-shot, prototype-k4, knn-k4, generative-k4-t0
    kind: str  # zero-shot | prototype | knn | generative
    shots: int
    template: int | None = None  # index into prompting.SENTIMENT_TEMPLATES (generative)


def configs(method: str, shots: Sequence[int], n_templates: int = 1) -> list[PromptConfig]:
    """embedding: shots 0 -> zero-shot by label descriptions, k -> prototype and kNN over k examples per class;
    generative: every template x shot count (k demonstrations in the prompt)."""
    if method == "generative":
        return [PromptConfig(f"generative-k{s}-t{t}", "generative", s, t) for s in shots for t in range(n_templates)]
    out = []
    for s in shots:
        out += [PromptConfig("zero-shot", "zero-shot", 0)] if s == 0 else [
            PromptConfig(f"{kind}-k{s}", kind, s) for kind in ("prototype", "knn")]
    return out


def load_scorer(method: str, model: str, device: str = "cpu"):
    """embedding: a SentenceTransformer; generative: (LM, tokenizer), seq2seq or causal as its config says."""
    from lowres import models

    if method == "embedding":
        return models.load_embedder(model, device=device)
    from transformers import AutoConfig, AutoModelForCausalLM

    path = models.resolve(model)
    if AutoConfig.from_pretrained(path).is_encoder_decoder:
        lm = models.load_model(model, "seq2seq")
    else:
        lm = AutoModelForCausalLM.from_pretrained(path)
    return lm.to(device).eval(), models.load_tokenizer(model)


def support_set(train: Sequence[dict], config: PromptConfig, num_labels: int, seed: int) -> list:
    """Labelled examples drawn with the seed, balanced by label: k per class (embedding) or k in all (generative)."""
    if config.shots == 0:
        return []
    total = config.shots if config.kind == "generative" else config.shots * num_labels
    return prompting.draw_balanced(train, total, seed)


def encode_eval(method: str, rows: Sequence[dict], scorer, batch_size: int = 1,
                meter=None) -> prompting.EncodedTexts | None:
    """Embedding prompting: encode the scored texts once, under the Meter window `encode_eval`; every embedding
    configuration compares these same vectors and is charged their time (and energy, in `results_table`).
    Generative prompting: None (each configuration's prompts differ)."""
    if method != "embedding":
        return None
    window = meter.window(SHARED_WINDOW, samples=len(rows)) if meter is not None else contextlib.nullcontext()
    with window as measurement:
        encoded = prompting.encode_texts(rows, scorer, batch_size)
        if measurement is not None:
            measurement.tokens = sum(encoded.tokens)
    return encoded


def run_config(config: PromptConfig, rows: Sequence[dict], train: Sequence[dict], scorer, num_labels: int = 2,
               batch_size: int = 1, max_input_tokens: int = 512, seed: int = 0,
               encoded: prompting.EncodedTexts | None = None) -> prompting.PromptResult:
    """Score one configuration on `rows` (the same support examples for prototype and kNN at a given k);
    `encoded` = `encode_eval(...)` reuses the text vectors of embedding prompting."""
    support = support_set(train, config, num_labels, seed)
    if config.kind == "zero-shot":
        return prompting.zero_shot_embedding(rows, scorer, batch_size=batch_size, encoded=encoded)
    if config.kind in ("prototype", "knn"):
        return prompting.few_shot_embedding(rows, support, scorer, method=config.kind, batch_size=batch_size,
                                            encoded=encoded)
    model, tokenizer = scorer
    return prompting.generative_classify(rows, model, tokenizer, prompting.SENTIMENT_TEMPLATES[config.template],
                                         demonstrations=support, batch_size=batch_size,
                                         max_input_tokens=max_input_tokens)


def window_tokens(config: PromptConfig, result: prompting.PromptResult) -> int | None:
    """Tokens a configuration's own window processed: its prompts (generative); embedding configurations only
    compare vectors (the texts' tokens are counted once, in `encode_eval`)."""
    return round(result.prompt_tokens_per_example * result.n) if config.kind == "generative" else None


def results_table(results: dict, measurements: dict | None = None) -> pd.DataFrame:
    """{PromptConfig: PromptResult} -> one row per configuration: accuracy, macro-F1, latency and prompt tokens
    per example, energy per example (the configuration's window, plus `encode_eval` for embedding prompting)."""
    measurements, rows = measurements or {}, []
    for config, result in results.items():
        embedding = config.kind != "generative" and SHARED_WINDOW in measurements
        shared = [measurements[SHARED_WINDOW]] if embedding else []
        joules, source = energy_per_sample(*shared, measurements.get(config.name))
        rows.append({"config": config.name, "method": config.kind, "shots": config.shots, "template": config.template,
                     "accuracy": result.accuracy, "macro_f1": result.macro_f1,
                     "latency_ms": result.latency_ms_per_example, "prompt_tokens": result.prompt_tokens_per_example,
                     "setup_s": result.setup_s, "energy_j_per_example": joules, "energy_source": source,
                     "n": result.n})
    return pd.DataFrame(rows)


def headline(table: pd.DataFrame) -> tuple[pd.Series, str]:
    """The configuration result.json leads with, fixed in advance (never the best on the eval set): the most
    shots, class prototypes for embedding prompting; for generative, the mean over templates at the most shots."""
    top = table[table["shots"] == table["shots"].max()]
    if (top["method"] == "generative").all():
        numbers = ["accuracy", "macro_f1", "latency_ms", "prompt_tokens", "energy_j_per_example"]
        row = top[numbers].mean(numeric_only=True)
        row["energy_source"] = top["energy_source"].iloc[0]
        return row, f"generative, {int(top['shots'].iloc[0])} shots, mean of {len(top)} templates"
    chosen = top[top["method"] == "prototype"] if (top["method"] == "prototype").any() else top
    return chosen.iloc[0], str(chosen["config"].iloc[0])


def run_metrics(table: pd.DataFrame, **extra) -> dict:
    head, name = headline(table)
    metrics = {"accuracy": float(head["accuracy"]), "macro_f1": float(head["macro_f1"]),
               "latency_ms": float(head["latency_ms"]), "prompt_tokens": float(head["prompt_tokens"]),
               "energy_j_per_example": number(head, "energy_j_per_example"), "energy_source": head["energy_source"],
               "headline": name}
    zero = table[table["shots"] == 0]
    if not zero.empty:
        metrics["zero_shot_accuracy"] = float(zero["accuracy"].mean())
    if (table["method"] == "generative").any():
        metrics["template_spread"] = {str(s): spread(group) for s, group in table.groupby("shots")}
    metrics["by_config"] = {row["config"]: {c: row[c] for c in table.columns if c != "config"}
                            for row in table.to_dict("records")}
    return {**metrics, **extra}


def spread(group: pd.DataFrame) -> dict:
    values = group["accuracy"].to_numpy(dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()), "spread": float(values.max() - values.min()), "n_templates": len(values)}
