"""RAG study steps: what its notebook runs (threads, the reader, the index comparison, the serving index,
answering at every k) and the metrics a run records."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from lowres import rag
from lowres.results import energy_per_sample
from lowres.retrieval_metrics import ann_recall_at_k



# ---------------------------------------------------------------- set-up

def load_reader(generator: str, device: str = "cpu", max_new_tokens: int = 16, max_input_tokens: int = 512):
    """(reader, name, tokenizer): the offline lexical baseline (no model, tokenizer None) or a seq2seq generator."""
    if generator == rag.READER_BASELINE:
        return rag.baseline_extractive_reader, rag.READER_BASELINE, None
    from lowres.models import load_model, load_tokenizer, resolve
    from lowres.seq2seq import trained_source_template

    path = resolve(generator)  # once: a run id, hub id or directory -> the model's directory
    tokenizer = load_tokenizer(path)
    model = load_model(path, "seq2seq").to(device)
    # a reader fine-tuned by the seq2seq study is asked in the format it learned; any other in the default prompt
    template = trained_source_template(path) or rag.DEFAULT_QA_TEMPLATE
    reader = rag.Seq2SeqGenerator(model, tokenizer, template, max_new_tokens=max_new_tokens,
                                  max_input_tokens=max_input_tokens)
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


# ---------------------------------------------------------------- a knowledge base that grows

GROWTH_SHARE = 0.2  # of the passages held back from the base, then added to it (the "add documents" section)


def knowledge_base_growth(passages: Sequence[dict], chunks: Sequence[dict], vectors: np.ndarray, embedder,
                          index: rag.VectorIndex, query_vectors: np.ndarray, k: int, folder) -> dict:
    """The serving index's kind as a lowres.knowledge_base: built without the last GROWTH_SHARE of the passages
    (their vectors reused), those added (embedded here: the cost of adding), recall@k against exact search
    grown vs rebuilt, the added passages removed again, saved to `folder` and reloaded."""
    from lowres.knowledge_base import KnowledgeBase, known_vectors

    held = max(1, int(len(passages) * GROWTH_SHARE))
    base, added = list(passages[:-held]), list(passages[-held:])
    options = {name: index.params[name] for name in ("nlist", "nprobe", "M", "ef_search") if name in index.params}
    kb = KnowledgeBase.build(base, embedder, index.kind, vectors=known_vectors(base, chunks, vectors), **options)
    growth = kb.add(added)
    rebuilt, recall_k = kb.rebuilt(), min(k, len(kb.chunks))
    figures = {"kind": index.kind, "passages_before": len(base), "passages_added": growth.passages,
               "chunks_added": growth.chunks, "embed_s": growth.embed_s, "add_s": growth.add_s,
               "add_ms_per_passage": 1e3 * growth.seconds / growth.passages,
               f"recall@{recall_k}_grown": kb.recall_against_exact(query_vectors, recall_k),
               f"recall@{recall_k}_rebuilt": rebuilt.recall_against_exact(query_vectors, recall_k)}
    figures["chunks_removed"] = kb.remove([p["passage_id"] for p in added])
    before = kb.search_ids(query_vectors, recall_k)
    kb.save(folder)
    after = KnowledgeBase.load(folder, embedder).search_ids(query_vectors, recall_k)
    figures["reloads_identical"] = bool(np.array_equal(before[1], after[1]) and np.array_equal(before[0], after[0]))
    return figures


GROWTH_LABELS = {"kind": "index kind", "passages_before": "passages in the base", "passages_added": "passages added",
                 "chunks_added": "chunks added", "embed_s": "embedding them (s)",
                 "add_s": "adding them to the index (s)",
                 "add_ms_per_passage": "per added passage (ms)", "chunks_removed": "chunks removed again",
                 "reloads_identical": "saved and reloaded: identical search results"}


def growth_table(figures: dict) -> pd.DataFrame:
    """The growth figures as a researcher reads them: one labelled row each, numbers to 3 significant figures."""
    def label(name: str) -> str:
        kind = "grown in place" if name.endswith("_grown") else "rebuilt from scratch"
        return GROWTH_LABELS.get(name) or f"{name.rsplit('_', 1)[0]} against exact search, {kind}"

    def text(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)
    return pd.DataFrame({"value": [text(v) for v in figures.values()]}, index=[label(n) for n in figures])


# ---------------------------------------------------------------- answering at every k

def context_stats(run: rag.RagRun, questions: Sequence[dict], tokenizer, max_input_tokens: int | None = None) -> dict:
    """Prompt tokens with the k retrieved passages (in the reader's prompt), tokens they add, and the share of
    prompts over the limit."""
    template = run.template
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
