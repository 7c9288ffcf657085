"""A RAG knowledge base that grows and shrinks without a rebuild, and lives on disk.

    kb = KnowledgeBase.build(passages, embedder, kind="hnsw")    # chunk -> embed -> index (lowres.rag)
    kb.add(more_passages)          # embeds and indexes only the new chunks; returns what it cost
    kb.remove(["passage-7"])       # every chunk of those passages
    kb.save("kb/"); KnowledgeBase.load("kb/", embedder)          # identical search results after reloading
    rag.run_rag(questions, kb, k)  # it serves questions as a rag.Retriever does

Each chunk has a stable integer id. Flat keeps its vectors in an IndexIDMap2 (add and remove directly); IVF
uses its own ids and keeps the centroids it was trained on when it was built, so what is added later may fit
them less well: `recall_against_exact` measures that drift against exact search over the live vectors. HNSW
adds directly but cannot remove from its graph: removed chunks are excluded from every search by a selector
(tombstones) until `rebuilt()` makes a fresh index. The chunk texts and their vectors are kept beside the
index, so a rebuild or an exact comparison never embeds again.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from lowres import rag
from lowres.retrieval_metrics import ann_recall_at_k

FORMAT = 1  # of the saved folder: index.faiss, chunks.jsonl, vectors.npy, meta.json
FILES = ("index.faiss", "chunks.jsonl", "vectors.npy", "meta.json")


class KnowledgeBaseError(ValueError):
    """A knowledge base that cannot be loaded or changed as asked (one line: what and what is valid)."""


@dataclasses.dataclass(frozen=True)
class Growth:
    """What one `add` cost: seconds embedding the new chunks and seconds adding them to the index."""

    passages: int
    chunks: int
    embed_s: float
    add_s: float

    @property
    def seconds(self) -> float:
        return self.embed_s + self.add_s


class KnowledgeBase:
    def __init__(self, embedder, kind: str = "flat", chunk_size: int = 128, chunk_overlap: int = 32,
                 nlist: int | None = None, nprobe: int = 8, M: int = 32, ef_search: int = 64, seed: int = 0):
        if kind not in rag.INDEX_KINDS:
            raise KnowledgeBaseError(f"unknown index kind {kind!r}; valid: {', '.join(rag.INDEX_KINDS)}")
        self.embedder, self.kind, self.chunk_size, self.chunk_overlap = embedder, kind, chunk_size, chunk_overlap
        self.options = {"nlist": nlist, "nprobe": nprobe, "M": M, "ef_search": ef_search, "seed": seed}
        self.index, self.params = None, {}
        self.chunks: dict[int, dict] = {}  # live chunks by id
        self.chunks_per_passage: Counter = Counter()  # kept with `chunks`: every search reads the passage count
        self.vectors = np.zeros((0, 0), dtype=np.float32)  # live vectors, row i belongs to ids[i]
        self.ids = np.zeros(0, dtype=np.int64)
        self.tombstones: set[int] = set()  # HNSW: removed ids still in the graph
        self.next_id = 0

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def build(cls, passages: Sequence[dict], embedder, kind: str = "flat", vectors: np.ndarray | None = None,
              **options) -> "KnowledgeBase":
        kb = cls(embedder, kind, **options)
        kb.add(passages, vectors)
        return kb

    def add(self, passages: Sequence[dict], vectors: np.ndarray | None = None) -> Growth:
        """Chunk, embed and index `passages` (new passage ids only). `vectors`: their chunks' embeddings when the
        caller has them already (then embed_s is 0)."""
        clash = sorted({p["passage_id"] for p in passages} & self.passage_ids())
        if clash:
            raise KnowledgeBaseError(f"passages already in the knowledge base: {', '.join(clash[:5])}; valid: new "
                                     f"passage ids (remove the old ones first to replace them)")
        chunks = rag.chunk_passages(passages, self.embedder.tokenizer, self.chunk_size, self.chunk_overlap)
        if not chunks:
            return Growth(len(passages), 0, 0.0, 0.0)
        started = time.perf_counter()
        if vectors is None:
            vectors = rag.encode([c["text"] for c in chunks], self.embedder)
        elif len(vectors) != len(chunks):
            raise KnowledgeBaseError(f"{len(vectors)} vectors for {len(chunks)} chunks; valid: one vector per chunk "
                                     f"of rag.chunk_passages(passages, ...)")
        embedded = time.perf_counter()
        ids = np.arange(self.next_id, self.next_id + len(chunks), dtype=np.int64)
        if self.index is None:
            self.index, self.params = self.new_index(vectors)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        added = time.perf_counter()
        self.chunks.update(zip(ids.tolist(), chunks))
        self.chunks_per_passage.update(c["passage_id"] for c in chunks)
        self.vectors = vectors.astype(np.float32) if not len(self.ids) else np.vstack([self.vectors, vectors])
        self.ids = np.concatenate([self.ids, ids])
        self.next_id += len(chunks)
        return Growth(len(passages), len(chunks), embedded - started, added - embedded)

    def new_index(self, vectors: np.ndarray):
        """An empty index with ids for this kind (IVF trained on `vectors`, the first ones added)."""
        import faiss

        o = self.options
        index, params = rag.new_index(np.ascontiguousarray(vectors, dtype=np.float32), self.kind, nlist=o["nlist"],
                                      nprobe=o["nprobe"], M=o["M"], ef_search=o["ef_search"], seed=o["seed"])
        return (index if self.kind == "ivf" else faiss.IndexIDMap2(index)), params

    def remove(self, passage_ids: Sequence[str]) -> int:
        """Remove every chunk of these passages; returns how many chunks. Unknown ids are one error."""
        import faiss

        unknown = sorted(set(passage_ids) - self.passage_ids())
        if unknown:
            raise KnowledgeBaseError(f"passages not in the knowledge base: {', '.join(unknown[:5])}; valid: ids of "
                                     f"passages added before (kb.passage_ids())")
        leaving = set(passage_ids)
        gone = np.array([i for i, c in self.chunks.items() if c["passage_id"] in leaving], dtype=np.int64)
        if self.kind == "hnsw":  # its graph cannot drop nodes: excluded from searches instead
            self.tombstones.update(gone.tolist())
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(gone))
        keep = ~np.isin(self.ids, gone)
        self.vectors, self.ids = self.vectors[keep], self.ids[keep]
        for i in gone.tolist():
            del self.chunks[i]
        for passage in leaving:
            del self.chunks_per_passage[passage]
        return len(gone)

    def rebuilt(self) -> "KnowledgeBase":
        """The same live chunks in a fresh index built from scratch (IVF retrained; HNSW without tombstones),
        reusing the stored vectors: what growing in place is compared with."""
        fresh = KnowledgeBase(self.embedder, self.kind, self.chunk_size, self.chunk_overlap, **self.options)
        fresh.index, fresh.params = fresh.new_index(self.vectors)
        fresh.index.add_with_ids(self.vectors, self.ids)
        fresh.chunks, fresh.vectors, fresh.ids = dict(self.chunks), self.vectors.copy(), self.ids.copy()
        fresh.chunks_per_passage = self.chunks_per_passage.copy()
        fresh.next_id = self.next_id
        return fresh

    # ------------------------------------------------------------------------------------------ searching
    def passage_ids(self) -> set[str]:
        return set(self.chunks_per_passage)

    def embed_query(self, question: str) -> np.ndarray:
        return rag.encode([question], self.embedder, batch_size=1)

    def search_ids(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, chunk ids) of the top-k live chunks per query; ids -1 where fewer exist."""
        queries = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if self.index is None or not len(self.ids):
            return np.full((len(queries), k), -np.inf, dtype=np.float32), np.full((len(queries), k), -1, np.int64)
        return self.index.search(queries, k, params=self.search_parameters())

    def search_parameters(self):
        """IVF's nprobe and HNSW's efSearch for this search, and the tombstones excluded (HNSW)."""
        import faiss

        if self.kind == "ivf":
            return faiss.SearchParametersIVF(nprobe=self.params["nprobe"])
        if self.kind == "hnsw":
            removed = faiss.IDSelectorBatch(np.fromiter(self.tombstones, np.int64))
            excluded = faiss.IDSelectorNot(removed)
            params = faiss.SearchParametersHNSW(sel=excluded, efSearch=self.params["ef_search"])
            params.referenced_objects = [removed, excluded]  # the C++ selectors live as long as the parameters
            return params
        return None

    def search(self, query_vector: np.ndarray, k: int) -> list[rag.Hit]:
        """Top-k distinct passages (a rag.Retriever's contract): more chunks are fetched when passages were split,
        each passage keeps its best chunk."""
        scores, ids = self.search_ids(query_vector, rag.chunks_to_fetch(k, len(self.chunks),
                                                                        len(self.chunks_per_passage)))
        return rag.hits_from_chunks(ids[0], scores[0], self.chunks, k)

    def exact_ids(self, query_vectors: np.ndarray, k: int) -> np.ndarray:
        """Chunk ids of the exact top-k over the live vectors (brute force), the reference for recall."""
        scores = np.atleast_2d(query_vectors) @ self.vectors.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return self.ids[top]

    def recall_against_exact(self, query_vectors: np.ndarray, k: int) -> float:
        """Share of the exact top-k chunks this index returns (1.0 for Flat; IVF drifts as it grows)."""
        return ann_recall_at_k(self.search_ids(query_vectors, k)[1], self.exact_ids(query_vectors, k), k)

    # ------------------------------------------------------------------------------------------ on disk
    def save(self, folder) -> Path:
        """index.faiss, chunks.jsonl, vectors.npy and meta.json in `folder` (written aside, then renamed in)."""
        import faiss

        folder = Path(folder)
        draft = folder.with_name(folder.name + ".saving")
        draft.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(draft / "index.faiss"))
        with (draft / "chunks.jsonl").open("w") as fh:
            for i, chunk in self.chunks.items():
                fh.write(json.dumps({"id": i, **chunk}) + "\n")
        np.save(draft / "vectors.npy", self.vectors)
        meta = {"format": FORMAT, "kind": self.kind, "params": self.params, "options": self.options,
                "chunk_size": self.chunk_size, "chunk_overlap": self.chunk_overlap, "next_id": self.next_id,
                "ids": self.ids.tolist(), "tombstones": sorted(self.tombstones),
                "embedder": rag.embedder_id(self.embedder)}
        (draft / "meta.json").write_text(json.dumps(meta))
        replace_folder(draft, folder)
        return folder

    @classmethod
    def load(cls, folder, embedder) -> "KnowledgeBase":
        import faiss

        folder = Path(folder)
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise KnowledgeBaseError(f"{folder} is not a saved knowledge base (missing {', '.join(missing)}); valid: "
                                     f"a folder written by KnowledgeBase.save")
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta["embedder"] != rag.embedder_id(embedder):
            raise KnowledgeBaseError(f"{folder} was saved with embedder {meta['embedder']!r} (format "
                                     f"{meta.get('format')}); valid: load it with that embedder, format {FORMAT}")
        kb = cls(embedder, meta["kind"], meta["chunk_size"], meta["chunk_overlap"], **meta["options"])
        kb.index, kb.params, kb.next_id = faiss.read_index(str(folder / "index.faiss")), meta["params"], meta["next_id"]
        kb.vectors, kb.ids = np.load(folder / "vectors.npy"), np.array(meta["ids"], dtype=np.int64)
        kb.tombstones = set(meta["tombstones"])
        with (folder / "chunks.jsonl").open() as fh:
            rows = [json.loads(line) for line in fh]
        kb.chunks = {row.pop("id"): row for row in rows}
        kb.chunks_per_passage = Counter(c["passage_id"] for c in kb.chunks.values())
        return kb


def known_vectors(passages: Sequence[dict], chunks: Sequence[dict], vectors: np.ndarray) -> np.ndarray:
    """The rows of `vectors` (one per chunk of `chunks`, embedded before) that `KnowledgeBase.add(passages, ...)`
    expects: the chunks of `passages`, in the order it chunks them."""
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        rows.setdefault(chunk["passage_id"], []).append(row)
    return vectors[[row for passage in passages for row in rows.get(passage["passage_id"], [])]]


def replace_folder(draft: Path, folder: Path) -> None:
    """Put `draft` where `folder` is: the old one is kept aside until the new one is in place."""
    import shutil

    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    draft.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
