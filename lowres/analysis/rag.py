"""RAG study: the steps its notebook runs (index comparison, the serving index, the reader), the per-k table,
the metrics it records, its plots, and the quality-vs-latency comparison of prompting, RAG and fine-tuning.

`key_table(df)` / `key_figure(df)` take `lowres.results.collect("rag")` (the report calls them too).
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from lowres import rag
from lowres.analysis import ok_runs, run_table
from lowres.results import number
from lowres.retrieval_metrics import ann_recall_at_k

STAGE_LABELS = {"embed_query": "embed query", "search": "search", "read": "read / generate"}
ENERGY_FIGURES = ("gpu_energy_j", "cpu_energy_j", "dram_energy_j")


# ---------------------------------------------------------------- set-up

def set_threads(threads: int) -> int:
    """torch and FAISS threads for this process. Latency is measured one query at a time: on a shared CPU a
    second thread mostly waits (one MiniLM query: 16 ms with 1 thread, 470 ms with 2 under contention)."""
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    return threads


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA device is visible; valid: auto, cpu")
    return device


def load_reader(generator: str, device: str = "cpu", max_new_tokens: int = 16, max_input_tokens: int = 512):
    """(reader, name, tokenizer): the offline lexical baseline (no model, tokenizer None) or a seq2seq generator."""
    if generator == rag.READER_BASELINE:
        return rag.baseline_extractive_reader, rag.READER_BASELINE, None
    from lowres.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(generator)
    model = load_model(generator, "seq2seq").to(device)
    reader = rag.Seq2SeqGenerator(model, tokenizer, max_new_tokens=max_new_tokens, max_input_tokens=max_input_tokens)
    return reader, f"seq2seq-generate:{generator}", tokenizer


def embed_corpus(chunks: Sequence[dict], embedder) -> tuple[np.ndarray, bool]:
    """Normalized chunk embeddings and whether they came from the on-disk cache (then no encoding happened)."""
    texts = [c["text"] for c in chunks]
    cached = rag.embedding_cache_path(embedder, texts).is_file()
    return rag.embed(texts, embedder), cached


# ---------------------------------------------------------------- indexes

def index_settings(nlist: int, sweep_nprobe: Sequence[int], sweep_ef_search: Sequence[int]) -> list[tuple[str, dict]]:
    """(kind, search params): exact Flat first, then IVF per nprobe (capped at nlist) and HNSW per efSearch."""
    nprobes = sorted({min(p, nlist) for p in sweep_nprobe})
    return ([("flat", {})] + [("ivf", {"nprobe": p}) for p in nprobes]
            + [("hnsw", {"ef_search": e}) for e in sweep_ef_search])


def compare_indexes(vectors: np.ndarray, query_vectors: np.ndarray, chunk_passage_ids: Sequence[str],
                    gold_passage_ids: Sequence[str], k: int, sweep_nprobe: Sequence[int] = (1, 4, 16),
                    sweep_ef_search: Sequence[int] = (16, 64), nlist: int | None = None, M: int = 32,
                    seed: int = 0) -> pd.DataFrame:
    """Every index type over the same vectors: build time, memory, one-query-at-a-time latency p50/p95, recall@k
    against exact search (ANN recall) and the share of questions whose gold passage is in the top-k chunks."""
    n = len(vectors)
    nlist = nlist or rag.default_nlist(n)
    built = {"flat": rag.build_index(vectors, "flat")}
    if sweep_nprobe:
        built["ivf"] = rag.build_index(vectors, "ivf", nlist=nlist, seed=seed)
    if sweep_ef_search:
        built["hnsw"] = rag.build_index(vectors, "hnsw", M=M)
    k = min(k, n)
    exact = built["flat"].search(query_vectors, k)[1]
    rows = []
    for kind, search in index_settings(nlist, sweep_nprobe, sweep_ef_search):
        index = built[kind].set_params(**search)
        stats, ids = rag.search_latency(index, query_vectors, k)
        found = [gold in {chunk_passage_ids[i] for i in row if i >= 0} for gold, row in zip(gold_passage_ids, ids)]
        rows.append({"index": kind, "setting": setting_label(kind, index.params), "name": setting_key(kind, search),
                     "k": k, "build_s": index.build_s, "memory_mib": index.memory_bytes / 2**20,
                     "p50_ms": stats.p50_ms, "p95_ms": stats.p95_ms, "ann_recall": ann_recall_at_k(ids, exact, k),
                     "gold_recall": float(np.mean(found)) if found else float("nan")})
    return pd.DataFrame(rows)


def setting_key(kind: str, search: dict) -> str:
    """A short id for result.json columns: flat, ivf_nprobe4, hnsw_ef64."""
    return kind + "".join(f"_{'ef' if name == 'ef_search' else name}{value}" for name, value in search.items())


def setting_label(kind: str, params: dict) -> str:
    if kind == "ivf":
        return f"ivf nlist={params['nlist']} nprobe={params['nprobe']}"
    if kind == "hnsw":
        return f"hnsw M={params['M']} ef={params['ef_search']}"
    return "flat (exact)"


def serving_index(vectors: np.ndarray, kind: str = "auto", ram_budget_mb: float | None = None,
                  nlist: int | None = None, nprobe: int = 8, M: int = 32, ef_search: int = 64,
                  seed: int = 0) -> tuple[rag.VectorIndex, str]:
    """The index that serves the questions and why: `auto` follows FAISS's guidelines for the RAM budget
    (default a quarter of the RAM available now)."""
    n, d = vectors.shape
    if kind == "auto":
        budget = ram_budget_mb * 2**20 if ram_budget_mb else rag.available_ram_bytes() / 4
        choice = rag.choose_index(n, d, budget, M=M)
        return rag.index_from_choice(vectors, choice, seed=seed), f"auto: {choice.explanation}"
    index = rag.build_index(vectors, kind, nlist=nlist, nprobe=nprobe, M=M, ef_search=ef_search, seed=seed)
    return index, f"{setting_label(kind, index.params)} (requested)"


# ---------------------------------------------------------------- answering at every k

def energy_per_sample(*measurements: dict | None) -> tuple[float | None, str]:
    """Joules per sample over windows that each covered the same samples (GPU + CPU + DRAM figures present),
    and where the figures came from."""
    total, sources, samples = 0.0, set(), None
    for m in measurements:
        parts = [*(m.get("gpu_energy_j") or []), m.get("cpu_energy_j"), m.get("dram_energy_j")] if m else []
        parts = [p for p in parts if p is not None]
        if not parts or not m.get("samples"):
            return None, "unavailable"
        total, samples = total + sum(parts), m["samples"]
        sources |= {str(m["sources"][f]) for f in ENERGY_FIGURES
                    if m.get("sources", {}).get(f) not in (None, "unavailable")}
    if samples is None:
        return None, "unavailable"
    return total / samples, ", ".join(sorted(sources)) or "unavailable"


def context_stats(run: rag.RagRun, questions: Sequence[dict], tokenizer, max_input_tokens: int | None = None,
                  template: str = rag.DEFAULT_QA_TEMPLATE) -> dict:
    """Prompt tokens with the k retrieved passages, tokens they add, and the share of prompts over the limit."""
    count = lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])  # noqa: E731
    full = [count(rag.build_context_prompt(q["question"], [h.text for h in hits], template))
            for q, hits in zip(questions, run.hits)]
    bare = [count(rag.build_context_prompt(q["question"], [], template)) for q in questions]
    over = [f > max_input_tokens for f in full] if max_input_tokens else [False]
    return {"prompt_tokens": float(np.mean(full)), "context_tokens_added": float(np.mean(np.subtract(full, bare))),
            "truncated_share": float(np.mean(over))}


def k_table(runs: dict, questions: Sequence[dict], tokenizer, measurements: dict | None = None,
            max_input_tokens: int | None = None) -> pd.DataFrame:
    """One row per k: EM/F1, retrieval metrics at k, context overhead, latency per stage, energy per question
    (window `embed_queries`, shared by every k, plus window `answer_k<k>`: search and read)."""
    measurements, rows = measurements or {}, []
    for k, run in runs.items():
        scores = rag.evaluate_rag(run, questions, ks=[k])
        latency = run.latency_breakdown()
        joules, source = energy_per_sample(measurements.get("embed_queries"), measurements.get(f"answer_k{k}"))
        rows.append({"k": k, "exact_match": scores["exact_match"], "f1": scores["f1"],
                     "precision": scores[f"precision@{k}"], "recall": scores[f"recall@{k}"],
                     "ndcg": scores[f"ndcg@{k}"], "mrr": scores["mrr"],
                     **context_stats(run, questions, tokenizer, max_input_tokens),
                     **{f"{stage}_ms": latency[stage]["mean_ms"] for stage in rag.STAGES},
                     "latency_p50_ms": latency["total"]["p50_ms"], "latency_p95_ms": latency["total"]["p95_ms"],
                     "latency_ms": latency["total"]["mean_ms"], "energy_j_per_question": joules,
                     "energy_source": source})
    return pd.DataFrame(rows)


def run_metrics(table: pd.DataFrame, indexes: pd.DataFrame, k: int, index: rag.VectorIndex, why: str,
                reader: str, **extra) -> dict:
    """What result.json records: the headline at the served k, every k, every index setting, the serving index."""
    head = table.set_index("k").loc[k]
    headline = {name: float(head[name]) for name in ("exact_match", "f1", "precision", "recall", "ndcg", "mrr",
                                                     "latency_ms", "latency_p50_ms", "latency_p95_ms",
                                                     "context_tokens_added", "prompt_tokens")}
    return {**headline, "k": k, "reader": reader,
            "by_k": {str(row["k"]): {c: row[c] for c in table.columns if c != "k"}
                     for row in table.to_dict("records")},
            "indexes": {row["name"]: {c: row[c] for c in indexes.columns if c != "name"}
                        for row in indexes.to_dict("records")},
            "index": {"kind": index.kind, **index.params, "n_vectors": index.n, "dim": index.d,
                      "build_s": index.build_s, "memory_bytes": index.memory_bytes, "why": why},
            **extra}


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

COMPARED_STUDIES = {"prompting": "prompting", "rag": "RAG", "lora": "fine-tuning (LoRA)"}
QUALITY_METRICS = ("accuracy", "f1", "exact_match")
# per-example latency, most serving-like first: batch-1 p50 (LoRA: the fp32 model), one-question-at-a-time p50
# (RAG), the study's own per-example figure (prompting at its batch_size)
LATENCY_METRICS = {"latency_ms_b1_p50": "batch-1 p50", "latency_p50_ms": "one at a time, p50",
                   "latency_ms": "per example (mean)"}
LATENCY_WINDOWS = ("inference", "predict", "eval", "test")


def strategy_name(study: str, method: str) -> str:
    if study == "lora" and method.startswith("full"):
        return "fine-tuning (full)"
    return COMPARED_STUDIES.get(study, study)


def strategy_point(study: str, row) -> dict | None:
    """One run as (strategy, quality metric, latency per example); None when it has neither."""
    metric = next((m for m in QUALITY_METRICS if number(row, f"metrics.{m}") is not None), None)
    latency, latency_from = next(((number(row, f"metrics.{name}"), how) for name, how in LATENCY_METRICS.items()
                                  if number(row, f"metrics.{name}") is not None), (None, None))
    for window in LATENCY_WINDOWS:
        wall, samples = number(row, f"{window}.wall_s"), number(row, f"{window}.samples")
        if latency is None and wall and samples:
            latency, latency_from = 1e3 * wall / samples, f"{window} window (batched)"
    if metric is None or latency is None:
        return None
    model = next((row[f"params.{p}"] for p in ("generator", "model") if isinstance(row.get(f"params.{p}"), str)), "")
    method = row.get("params.method") if isinstance(row.get("params.method"), str) else ""
    return {"strategy": strategy_name(study, method), "study": study, "run_id": row.get("run_id"),
            "dataset": row.get("params.dataset"), "model": model, "method": method, "metric": metric,
            "quality": number(row, f"metrics.{metric}"), "latency_ms": latency, "latency_from": latency_from}


def strategy_frame(outputs=None, current: dict | None = None) -> pd.DataFrame:
    """Every ok run of prompting, RAG and (when present) LoRA as quality vs latency per example; `current`
    is the RunResult of a run not saved yet (it replaces a stored run with the same id)."""
    from lowres.results import collect, result_row

    points = []
    current_row = result_row(current) if current is not None else None
    for study in COMPARED_STUDIES:
        frame = collect(study, outputs)
        for _, row in (frame[frame["status"] == "ok"] if not frame.empty else frame).iterrows():
            if current_row is None or row["run_id"] != current_row["run_id"]:
                points.append(strategy_point(study, row))
    if current_row is not None:
        points.append(strategy_point(current.study, current_row))
    columns = ["strategy", "study", "run_id", "dataset", "model", "method", "metric", "quality", "latency_ms",
               "latency_from"]
    return pd.DataFrame([p for p in points if p], columns=columns)


def plot_strategy_comparison(frame: pd.DataFrame, ax=None):
    """Quality (each study's own metric on its own task: accuracy for classification, F1 for QA) vs latency."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.figure(figsize=(8, 5)).gca()
    if frame.empty:
        ax.text(0.5, 0.5, "no finished runs yet", ha="center", va="center", transform=ax.transAxes)
        return ax
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
        ax.text(0.5, 0.5, "no finished RAG runs", ha="center", va="center", transform=ax.transAxes)
        return ax
    long = long.assign(run=long["dataset"].astype(str) + " / " + long["reader"].astype(str))
    sns.lineplot(data=long, x="k", y="value", hue="run", style="metric", marker="o", ax=ax)
    ax.set(title="RAG: answer F1 and gold-passage recall vs k", ylim=(0, 1.02), ylabel="")
    return ax
