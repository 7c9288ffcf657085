"""A knowledge base grown in place vs rebuilt: cost per added passage and recall@10 after each growth step.

    python bench/kb_growth.py                 # SQuAD v1.1 dev passages from LOWRES_DATA_DIR, else synthetic-kb
    python bench/kb_growth.py --steps 5 --start 0.5 --k 10

Starts from a share of the passages and adds the rest in equal steps (lowres.knowledge_base). Per step and
index kind: seconds to embed and add the new chunks (embedding measured once per step, the same for every
kind), seconds a rebuild from scratch would take (re-embedding every live chunk at the rate measured in this
run, plus building the index; and the index alone when the vectors are kept), and recall@k against exact
search of the grown index and of a rebuilt one. The add/rebuild cost ratio is printed last.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

from lowres import rag
from lowres.data import load_corpus
from lowres.knowledge_base import KnowledgeBase, known_vectors
from lowres.models import load_embedder

KINDS = ("flat", "ivf", "hnsw")


def corpus():
    root = os.environ.get("LOWRES_DATA_DIR")
    if root and os.path.isfile(os.path.join(root, "squad", "dev-v1.1.passages.jsonl")):
        return load_corpus("squad")
    return load_corpus("synthetic-kb", train_size=2000, val_size=300)


def timed(action):
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=float, default=0.5, help="share of the passages the base starts with")
    parser.add_argument("--steps", type=int, default=5, help="growth steps adding the rest")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--questions", type=int, default=500)
    args = parser.parse_args(argv)
    kb_data, embedder = corpus(), load_embedder("minilm")
    passages = list(kb_data.passages)
    np.random.default_rng(0).shuffle(passages)
    queries = rag.encode([q["question"] for q in kb_data.questions[:args.questions]], embedder)
    first = int(len(passages) * args.start)
    parts = np.array_split(np.arange(first, len(passages)), args.steps)
    chunks, embed_all_s = timed(lambda: rag.chunk_passages(passages, embedder.tokenizer))
    vectors, encode_s = timed(lambda: rag.encode([c["text"] for c in chunks], embedder))
    per_chunk_s = (embed_all_s + encode_s) / len(chunks)  # a rebuild re-embeds every chunk at this rate
    print(f"# {kb_data.name}: {len(passages)} passages -> {len(chunks)} chunks, embedded in "
          f"{embed_all_s + encode_s:.1f} s ({per_chunk_s * 1e3:.1f} ms per chunk, MiniLM, {os.cpu_count()} cores); "
          f"start {first} passages, {args.steps} steps; {len(queries)} questions, recall@{args.k} against exact "
          f"search", flush=True)
    bases = {kind: KnowledgeBase.build(passages[:first], embedder, kind,
                                       vectors=known_vectors(passages[:first], chunks, vectors)) for kind in KINDS}
    rows = []
    for step, part in enumerate(parts, 1):
        added = [passages[i] for i in part]
        new_vectors, embed_s = timed(lambda: rag.encode(
            [c["text"] for c in rag.chunk_passages(added, embedder.tokenizer)], embedder))
        for kind, kb in bases.items():
            growth = kb.add(added, new_vectors)
            rebuilt, index_s = timed(kb.rebuilt)
            rebuild_s = per_chunk_s * len(kb.chunks) + index_s
            rows.append({"kind": kind, "step": step, "passages": len(kb.passage_ids()), "chunks": len(kb.chunks),
                         "added": growth.chunks, "embed_s": embed_s, "add_s": growth.add_s,
                         "add_ms_per_passage": 1e3 * (embed_s + growth.add_s) / len(added),
                         "rebuild_s": rebuild_s, "rebuild_index_only_s": index_s,
                         "cost_ratio": (embed_s + growth.add_s) / rebuild_s,
                         "recall_grown": kb.recall_against_exact(queries, args.k),
                         "recall_rebuilt": rebuilt.recall_against_exact(queries, args.k)})
    table = pd.DataFrame(rows)
    table["recall_gap"] = table["recall_grown"] - table["recall_rebuilt"]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    worst = table.loc[table["recall_gap"].abs().idxmax()]
    print(f"largest recall gap grown - rebuilt: {worst['recall_gap']:+.3f} ({worst['kind']}, step {worst['step']})")
    print("add/rebuild cost ratio per step: " + "; ".join(
        f"{kind} " + ", ".join(f"{v:.3f}" for v in table[table["kind"] == kind]["cost_ratio"]) for kind in KINDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
