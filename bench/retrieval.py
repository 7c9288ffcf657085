"""Query latency and recall@k of FAISS Flat / IVF / HNSW against exact search, one query at a time.

Two corpora: (a) random unit vectors (no cluster structure: the hard case for ANN) and (b) the real SQuAD
v1.1 dev passages, chunked and embedded with the bundled all-MiniLM-L6-v2 (embeddings cached), queried
with SQuAD questions. For each index: build time, serialized size, per-query latency p50/p95, p50 as a
fraction of Flat's, recall@1 and recall@k against exact (Flat) search (on random data only the top-1 of a
'near' query is really near; its neighbours 2..k are no closer than any other point, the worst case for ANN).
On SQuAD also the share of questions whose gold passage is among the top-k chunks. Target: an HNSW setting
with recall@10 >= 0.95 on SQuAD at a fraction of Flat's latency.

    python bench/retrieval.py                     # both parts, ~1-3 min once the SQuAD embeddings are cached
    python bench/retrieval.py --skip-random --squad-questions 500
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LOWRES_DATA_DIR", str(REPO.parent / "shared" / "data"))  # as the Makefile and tests do
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lowres import rag  # noqa: E402
from lowres.retrieval_metrics import ann_recall_at_k  # noqa: E402


def configs(args) -> list[tuple[str, dict, dict]]:
    """(kind, build params, search params) in the order printed."""
    rows = [("flat", {}, {})]
    rows += [("ivf", {}, {"nprobe": p}) for p in args.nprobe]
    rows += [("hnsw", {"M": args.M, "ef_construction": args.ef_construction}, {"ef_search": e}) for e in args.ef_search]
    return rows


def build_all(vectors: np.ndarray, args) -> list[tuple[str, rag.VectorIndex, dict]]:
    """Each index built once (all cores); search settings applied per row."""
    import faiss

    faiss.omp_set_num_threads(args.build_threads)
    built, rows = {}, []
    for kind, build_params, search_params in configs(args):
        key = (kind, tuple(sorted(build_params.items())))
        if key not in built:
            built[key] = rag.build_index(vectors, kind, seed=0, **build_params)
        rows.append((kind, built[key], search_params))
    return rows


def bench_queries(name: str, indexes: list, queries: np.ndarray, args, gold=None, chunk_passages=None) -> list:
    import faiss

    k, rows = args.k, []
    truth = indexes[0][1].search(queries, k)[1]  # the first row is Flat: exact
    faiss.omp_set_num_threads(args.search_threads)
    for kind, index, search_params in indexes:
        index.set_params(**search_params)
        stats, ids = rag.search_latency(index, queries, k)
        row = {"corpus / queries": name, "index": kind,
               "params": ",".join(f"{a}={b}" for a, b in index.params.items()), "build_s": index.build_s,
               "mem_mib": index.memory_bytes / 2**20, "p50_ms": stats.p50_ms, "p95_ms": stats.p95_ms,
               "recall@1": ann_recall_at_k(ids, truth, 1), f"recall@{k}": ann_recall_at_k(ids, truth, k)}
        if gold is not None:
            hits = [g in {chunk_passages[i] for i in r if i >= 0} for g, r in zip(gold, ids)]
            row[f"gold@{k}"] = float(np.mean(hits))
        rows.append(row)
    for row in rows:
        row["p50/flat"] = row["p50_ms"] / rows[0]["p50_ms"]
    return rows


def random_part(args) -> list:
    """Uniform queries (no true near neighbour: the worst case) and near queries (a stored vector + noise)."""
    rng = np.random.default_rng(0)
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    vectors = unit(rng.standard_normal((args.n_random, args.dim)))
    uniform = unit(rng.standard_normal((args.random_queries, args.dim)))
    picked = vectors[rng.choice(args.n_random, args.random_queries, replace=False)]
    near = unit(picked + args.noise * unit(rng.standard_normal((args.random_queries, args.dim))))
    indexes = build_all(vectors, args)
    name = f"random n={args.n_random:,} d={args.dim}"
    return (bench_queries(f"{name} / uniform", indexes, uniform, args)
            + bench_queries(f"{name} / near (noise {args.noise})", indexes, near, args))


def squad_part(args) -> list:
    import torch

    from lowres.data.corpora import load_corpus
    from lowres.models import load_embedder

    torch.set_num_threads(args.build_threads)
    kb = load_corpus("squad", val_size=args.squad_questions, seed=0)
    embedder = load_embedder("minilm")
    chunks = rag.chunk_passages(kb.passages, embedder.tokenizer, args.chunk_size, args.chunk_overlap)
    start = time.perf_counter()
    vectors = rag.embed([c["text"] for c in chunks], embedder)
    queries = rag.embed([q["question"] for q in kb.questions], embedder)
    print(f"# squad: {len(kb.passages):,} passages -> {len(chunks):,} chunks of <= {args.chunk_size} tokens "
          f"(overlap {args.chunk_overlap}); {len(queries):,} questions; embeddings ready in "
          f"{time.perf_counter() - start:.1f}s (cached under {rag.embedding_cache_path(embedder, ['']).parent})")
    return bench_queries(f"squad-dev chunks n={len(chunks):,} / questions", build_all(vectors, args), queries, args,
                        gold=[q["gold_passage_id"] for q in kb.questions],
                        chunk_passages=[c["passage_id"] for c in chunks])


def print_table(rows: list) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def verdict(rows: list, k: int, target: float) -> str:
    hnsw = [r for r in rows if r["index"] == "hnsw" and r[f"recall@{k}"] >= target]
    if not hnsw:
        return f"TARGET NOT MET: no HNSW setting reached recall@{k} >= {target}"
    best = min(hnsw, key=lambda r: r["p50_ms"])
    return (f"target: HNSW {best['params']} recall@{k}={best[f'recall@{k}']:.3f} at p50 {best['p50_ms']:.3f} ms = "
            f"{best['p50/flat']:.2f}x Flat's p50 ({1 / best['p50/flat']:.1f}x faster)"
            + (" -> MET" if best["p50/flat"] < 1 else " -> NOT faster than Flat"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--n-random", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--random-queries", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to 'near' queries")
    parser.add_argument("--squad-questions", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--chunk-overlap", type=int, default=32)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--M", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--search-threads", type=int, default=1, help="one query at a time, like online serving")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--skip-random", action="store_true")
    parser.add_argument("--skip-squad", action="store_true")
    args = parser.parse_args(argv)
    import faiss

    print(f"# {time.strftime('%Y-%m-%d %H:%M')} | {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
          f"| faiss {faiss.__version__} | build threads {args.build_threads}, search threads {args.search_threads} "
          f"| one query per search call, latency per query")
    rows = []
    if not args.skip_random:
        rows += random_part(args)
        print_table(rows)
    if not args.skip_squad:
        squad = squad_part(args)
        print_table(squad)
        print(verdict(squad, args.k, args.target))


if __name__ == "__main__":
    main()
