"""Retrieval-augmented QA on a budget: chunk -> embed -> FAISS index -> retrieve -> read/generate -> score.

Inputs are plain lists: passages `{"passage_id", "text"}`, questions `{"question", "answers", "gold_passage_id"}`.
Embeddings are L2-normalized so inner product = cosine; every index uses the inner-product metric.

Index choice (`choose_index`) follows FAISS's "Guidelines to choose an index" wiki: exact results or a small
corpus -> Flat (no build cost, nothing to tune); memory no concern -> HNSW (about d*4 + M*2*4 bytes a vector);
otherwise IVF with Flat lists (nlist between 4*sqrt(n) and 16*sqrt(n), >= 39 training points per list).

Readers: `baseline_extractive_reader` is the offline default. It is a lexical *baseline* (no model, no
training): it picks the retrieved sentence that shares most words with the question and returns the span
next to those words that fits the question's answer type. It is not a generator; `Seq2SeqGenerator`
generates with a seq2seq LM (flan-t5 with hub access) from the context prompt.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lowres.paths import cache_dir
from lowres.qa_metrics import squad_scores
from lowres.retrieval_metrics import retrieval_scores

INDEX_KINDS = ("flat", "ivf", "hnsw")
FLAT_MAX_N = 10_000  # below this a brute-force scan costs < ~4 MFLOP/query at d=384 and needs no build
READER_BASELINE = "baseline-extractive"
DEFAULT_QA_TEMPLATE = "Answer the question using the context.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:"


# ---------------------------------------------------------------- chunking

def chunk_windows(n_tokens: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows [start, end) of `size` tokens stepping by size - overlap; the last one ends at n_tokens."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    if n_tokens <= 0:
        return []
    windows, start = [], 0
    while True:
        end = min(start + size, n_tokens)
        windows.append((start, end))
        if end == n_tokens:
            return windows
        start += size - overlap


def chunk_passages(passages: Sequence[dict], tokenizer, size: int = 128, overlap: int = 32) -> list[dict]:
    """Split passages into token windows; each chunk's text is the exact slice of the original passage."""
    chunks = []
    for p in passages:
        enc = tokenizer(p["text"], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"]
        windows = chunk_windows(len(offsets), size, overlap)
        for i, (start, end) in enumerate(windows):
            text = p["text"] if len(windows) == 1 else p["text"][offsets[start][0]:offsets[end - 1][1]]
            chunks.append({"chunk_id": f"{p['passage_id']}#{i}", "passage_id": p["passage_id"], "text": text,
                           "n_tokens": end - start})
    return chunks


# ---------------------------------------------------------------- embedding (cached on disk)

def corpus_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def embedder_id(embedder) -> str:
    """A stable name for a SentenceTransformer: its weights' path/hub id plus max_seq_length."""
    try:
        name = embedder[0].auto_model.config.name_or_path
    except (AttributeError, IndexError, KeyError, TypeError):
        name = type(embedder).__name__
    return f"{name}|max_seq_length={getattr(embedder, 'max_seq_length', None)}"


def embedding_cache_path(embedder, texts: Sequence[str]) -> Path:
    key = hashlib.sha256(f"{embedder_id(embedder)}|normalized|{corpus_fingerprint(texts)}".encode()).hexdigest()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(Path(embedder_id(embedder).split("|")[0]).parts[-2:]))[-48:]
    return cache_dir() / "embeddings" / f"{slug}-{key[:24]}.npy"


def encode(texts: Sequence[str], embedder, batch_size: int = 64) -> np.ndarray:
    vectors = embedder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def embed(texts: Sequence[str], embedder="minilm", batch_size: int = 64, cache: bool = True) -> np.ndarray:
    """Normalized float32 embeddings (n, d); cached under cache_dir()/embeddings by model + corpus fingerprint."""
    if isinstance(embedder, str):
        from lowres.models import load_embedder

        embedder = load_embedder(embedder)
    path = embedding_cache_path(embedder, texts) if cache else None
    if path is not None and path.is_file():
        return np.load(path)
    vectors = encode(texts, embedder, batch_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)
    return vectors


# ---------------------------------------------------------------- indexes

def default_nlist(n: int) -> int:
    """4*sqrt(n) lists (the low end of FAISS's 4..16*sqrt(n)), capped so each list trains on >= 39 points."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def estimate_index_bytes(kind: str, n: int, d: int, M: int = 32, nlist: int | None = None) -> int:
    """RAM of the index: raw float32 vectors plus HNSW links (M*2 int32 each) or IVF ids + centroids."""
    if kind == "flat":
        return n * d * 4
    if kind == "hnsw":
        return n * (d * 4 + M * 2 * 4)
    if kind == "ivf":
        return n * (d * 4 + 8) + (nlist or default_nlist(n)) * d * 4
    raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(INDEX_KINDS)}")


@dataclasses.dataclass(frozen=True)
class IndexChoice:
    kind: str
    params: dict
    estimated_bytes: int
    fits: bool
    explanation: str


def choose_index(n: int, d: int, ram_budget_bytes: float, exact: bool = False, M: int = 32,
                 flat_max_n: int = FLAT_MAX_N) -> IndexChoice:
    """Pick flat | hnsw | ivf from corpus size and a RAM budget (FAISS guidelines), with the reason."""
    mib = lambda b: f"{b / 2**20:,.1f} MiB"  # noqa: E731
    flat, hnsw = estimate_index_bytes("flat", n, d), estimate_index_bytes("hnsw", n, d, M)
    nlist = default_nlist(n)
    ivf = estimate_index_bytes("ivf", n, d, nlist=nlist)
    if (exact or n <= flat_max_n) and flat <= ram_budget_bytes:
        why = "exact results were requested" if exact else f"n={n:,} <= {flat_max_n:,}: a brute-force scan is cheap"
        return IndexChoice("flat", {}, flat, True,
                           f"Flat (exact inner product): {why}, no training or build, {mib(flat)} of raw vectors.")
    if hnsw <= ram_budget_bytes:
        return IndexChoice("hnsw", {"M": M, "ef_search": 64}, hnsw, True,
                           f"HNSW{M}: {mib(hnsw)} (d*4 + M*2*4 bytes/vector) fits the {mib(ram_budget_bytes)} "
                           "budget; graph search is the fastest accurate option when memory is no concern.")
    if ivf <= ram_budget_bytes:
        return IndexChoice("ivf", {"nlist": nlist, "nprobe": max(1, nlist // 16)}, ivf, True,
                           f"IVF{nlist},Flat: HNSW would need {mib(hnsw)} > budget {mib(ram_budget_bytes)}; inverted "
                           f"lists keep raw vectors ({mib(ivf)}) and scan nprobe of nlist≈4*sqrt(n) lists per query.")
    return IndexChoice("ivf", {"nlist": nlist, "nprobe": max(1, nlist // 16)}, ivf, False,
                       f"Nothing uncompressed fits: even IVF,Flat needs {mib(ivf)} > budget {mib(ram_budget_bytes)}. "
                       "Compress the vectors (IVF-PQ or SQ8, outside this study) or shard the corpus.")


@dataclasses.dataclass
class VectorIndex:
    kind: str
    index: Any
    n: int
    d: int
    params: dict
    build_s: float
    memory_bytes: int  # serialized size of the FAISS index (raw vectors + structure)

    def set_params(self, nprobe: int | None = None, ef_search: int | None = None) -> "VectorIndex":
        if nprobe is not None and self.kind == "ivf":
            self.index.nprobe = self.params["nprobe"] = int(nprobe)
        if ef_search is not None and self.kind == "hnsw":
            self.index.hnsw.efSearch = self.params["ef_search"] = int(ef_search)
        return self

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) each (nq, k); ids are -1 and scores -inf-like where fewer than k hits exist."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        return self.index.search(queries, k)


def build_index(vectors: np.ndarray, kind: str = "flat", nlist: int | None = None, nprobe: int = 8, M: int = 32,
                ef_construction: int = 40, ef_search: int = 64, train_points_per_list: int = 64,
                seed: int = 0) -> VectorIndex:
    """A FAISS inner-product index over normalized vectors; records build time and memory.

    IVF trains k-means on at most train_points_per_list * nlist vectors (FAISS advises 30..256 per list)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    start = time.perf_counter()
    index, params = new_index(vectors, kind, nlist, nprobe, M, ef_construction, ef_search, train_points_per_list,
                              seed)
    index.add(vectors)
    build_s = time.perf_counter() - start
    return VectorIndex(kind, index, len(vectors), vectors.shape[1], params, build_s,
                       int(faiss.serialize_index(index).nbytes))


def new_index(vectors: np.ndarray, kind: str = "flat", nlist: int | None = None, nprobe: int = 8, M: int = 32,
              ef_construction: int = 40, ef_search: int = 64, train_points_per_list: int = 64, seed: int = 0):
    """(an empty FAISS inner-product index ready for `add`, its params): IVF's k-means is trained on `vectors`
    (the rows the index is built for); Flat and HNSW need no training."""
    import faiss

    n, d = vectors.shape
    if kind == "flat":
        return faiss.IndexFlatIP(d), {}
    if kind == "ivf":
        nlist = nlist or default_nlist(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        limit = train_points_per_list * nlist
        sample = np.random.default_rng(seed).choice(n, limit, replace=False) if n > limit else slice(None)
        index.train(vectors[sample])
        index.nprobe = min(nprobe, nlist)
        return index, {"nlist": nlist, "nprobe": index.nprobe}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = ef_construction, ef_search
        return index, {"M": M, "ef_construction": ef_construction, "ef_search": ef_search}
    raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(INDEX_KINDS)}")


def index_from_choice(vectors: np.ndarray, choice: IndexChoice, seed: int = 0) -> VectorIndex:
    return build_index(vectors, choice.kind, seed=seed, **choice.params)


# ---------------------------------------------------------------- latency

@dataclasses.dataclass(frozen=True)
class LatencyStats:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    n: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "LatencyStats":
        if not len(seconds):
            return cls(float("nan"), float("nan"), float("nan"), 0)
        ms = np.asarray(seconds, dtype=float) * 1e3
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.mean()), len(ms))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def search_latency(index: VectorIndex, queries: np.ndarray, k: int, warmup: int = 5) -> tuple[LatencyStats, np.ndarray]:
    """Search one query at a time (online serving); returns per-query latency stats and the (nq, k) ids."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    for q in queries[:warmup]:
        index.search(q, k)
    seconds, ids = [], np.empty((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries):
        start = time.perf_counter()
        ids[i] = index.search(q, k)[1][0]
        seconds.append(time.perf_counter() - start)
    return LatencyStats.of(seconds), ids


# ---------------------------------------------------------------- retrieval (chunks -> passages)

@dataclasses.dataclass(frozen=True)
class Hit:
    passage_id: str
    chunk_id: str
    score: float
    text: str


@dataclasses.dataclass
class Retriever:
    embedder: Any
    index: VectorIndex
    chunks: list
    n_passages: int = 0

    def __post_init__(self):
        self.n_passages = len({c["passage_id"] for c in self.chunks})

    def embed_query(self, question: str) -> np.ndarray:
        return encode([question], self.embedder, batch_size=1)

    def search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        """Top-k distinct passages: fetch more chunks when passages were split, keep each passage's best chunk."""
        scores, ids = self.index.search(query_vector, chunks_to_fetch(k, self.index.n, self.n_passages))
        return hits_from_chunks(ids[0], scores[0], self.chunks, k)


def chunks_to_fetch(k: int, n_chunks: int, n_passages: int) -> int:
    """Chunks to ask the index for so that k distinct passages remain when passages were split: twice k times
    the chunks per passage (rounded up), at most every chunk, never fewer than k."""
    per_passage = max(1, math.ceil(n_chunks / max(1, n_passages)))
    return max(k, min(n_chunks, 2 * k * per_passage))


def hits_from_chunks(ids: Sequence[int], scores: Sequence[float], chunks: Sequence[dict], k: int) -> list[Hit]:
    hits, seen = [], set()
    for i, score in zip(ids, scores):
        if i < 0:
            continue
        chunk = chunks[int(i)]
        if chunk["passage_id"] in seen:
            continue
        seen.add(chunk["passage_id"])
        hits.append(Hit(chunk["passage_id"], chunk["chunk_id"], float(score), chunk["text"]))
        if len(hits) == k:
            break
    return hits


def build_retriever(passages: Sequence[dict], embedder="minilm", kind: str = "flat", chunk_size: int = 128,
                    chunk_overlap: int = 32, ram_budget_bytes: float | None = None, cache: bool = True,
                    **index_params) -> tuple[Retriever, IndexChoice | None]:
    """Chunk, embed (cached) and index passages; kind='auto' picks the index from the RAM budget."""
    if isinstance(embedder, str):
        from lowres.models import load_embedder

        embedder = load_embedder(embedder)
    chunks = chunk_passages(passages, embedder.tokenizer, chunk_size, chunk_overlap)
    vectors = embed([c["text"] for c in chunks], embedder, cache=cache)
    choice = None
    if kind == "auto":
        budget = ram_budget_bytes if ram_budget_bytes is not None else available_ram_bytes() / 4
        choice = choose_index(len(chunks), vectors.shape[1], budget)
        index = index_from_choice(vectors, choice)
    else:
        index = build_index(vectors, kind, **index_params)
    return Retriever(embedder, index, chunks), choice


def available_ram_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


# ---------------------------------------------------------------- prompts and context overhead

def build_context_prompt(question: str, contexts: Sequence[str], template: str = DEFAULT_QA_TEMPLATE,
                         separator: str = "\n\n") -> str:
    return template.format(context=separator.join(contexts), question=question)


def context_overhead_tokens(questions: Sequence[str], contexts: Sequence[Sequence[str]], tokenizer,
                            ks: Sequence[int], template: str = DEFAULT_QA_TEMPLATE) -> dict:
    """Mean prompt tokens added by the top-k retrieved contexts, per k (prompt(k) - prompt(no context))."""
    count = lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])  # noqa: E731
    out = {}
    for k in ks:
        extra = [count(build_context_prompt(q, ctx[:k], template)) - count(build_context_prompt(q, [], template))
                 for q, ctx in zip(questions, contexts)]
        out[k] = float(np.mean(extra)) if extra else float("nan")
    return out


# ---------------------------------------------------------------- readers

STOPWORDS = frozenset("""a an the of in on at to for from by with about as into than then and or but nor so is are was
were be been being am do does did has have had having it its this that these those there here which who whom whose
what when where why how not no yes he she they we you i his her their our your my me him them us also can could
would should will shall may might must one s""".split())
CONNECTORS = frozenset({"of", "the", "de", "and", "for"})
NUMBER_CUES = ("how many", "how much", "what year", "which year", "how long", "how old", "what percentage",
               "how far", "what number", "when")
PROPER_CUES = ("who", "whom", "whose", "where", "which city", "which country", "what city", "what country")
MONTHS = frozenset("january february march april may june july august september october november december".split())
_WORD = re.compile(r"\w+(?:['’.\-]\w+)*")
_SENTENCE = re.compile(r".+?(?:[.!?](?=\s|$)|$)", re.S)


def stem(word: str) -> str:
    """A crude suffix stripper, enough to match lives/live/lived, keeps/keep."""
    word = word.lower()
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in ("ing", "ed", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def answer_type(question: str) -> str | None:
    q = question.lower()
    if any(cue in q for cue in NUMBER_CUES):
        return "number"
    if any(re.search(rf"\b{cue}\b", q) for cue in PROPER_CUES):
        return "proper"
    return None


def sentences(text: str) -> list[str]:
    return [m.group().strip() for m in _SENTENCE.finditer(text) if m.group().strip()]


def question_terms(question: str) -> dict[str, float]:
    """Content-word stems of the question -> weight (capitalized words, usually names, count more)."""
    terms = {}
    for m in _WORD.finditer(question):
        word = m.group()
        if word.lower() not in STOPWORDS:
            terms[stem(word)] = max(terms.get(stem(word), 0.0), 1.5 if word[0].isupper() and m.start() else 1.0)
    return terms


def candidate_spans(tokens: list, is_question: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs of non-question content tokens; connectors (of, the, ...) may join capitalized words."""
    spans, start = [], None
    for i, m in enumerate(tokens):
        word = m.group()
        content = not is_question[i] and word.lower() not in STOPWORDS
        joins = (start is not None and word.lower() in CONNECTORS and i + 1 < len(tokens)
                 and tokens[i - 1].group()[0].isupper() and tokens[i + 1].group()[0].isupper())
        if content or joins:
            start = i if start is None else start
            continue
        if start is not None:
            spans.append((start, i))
        start = None
    if start is not None:
        spans.append((start, len(tokens)))
    return spans


def gap(span: tuple[int, int], position: int) -> float:
    """Words between a span and an anchor word; spans before the anchor count half a word farther
    (in declaratives the answer tends to follow the verb: 'keeps a tortoise')."""
    return span[0] - position if span[0] > position else position - (span[1] - 1) + 0.5


def span_score(words: list[str], span: tuple[int, int], anchors: dict[int, float], kind: str | None) -> float:
    """Proximity to the question's anchor words (weighted by rarity) + a bonus for the expected answer type."""
    text_words = words[span[0]:span[1]]
    score = max((w / (1 + gap(span, p)) for p, w in anchors.items()), default=0.0)
    if kind == "number" and any(any(c.isdigit() for c in w) or w.lower() in MONTHS for w in text_words):
        score += 2.0
    if kind == "proper" and all(w[0].isupper() or w.lower() in CONNECTORS for w in text_words):
        score += 2.0
    return score - 0.05 * max(0, len(text_words) - 3)


def best_sentence(question: str, contexts: Sequence[str]) -> tuple[str, list[str]]:
    """The sentence sharing most (weighted) question terms, and the sentences of the context it came from."""
    terms = question_terms(question)
    best, best_score, siblings = "", -1.0, []
    for rank, context in enumerate(contexts):
        split = sentences(context)
        for sentence in split:
            found = {stem(m.group()) for m in _WORD.finditer(sentence)}
            score = sum(w for t, w in terms.items() if t in found) - 0.01 * rank
            if score > best_score:
                best, best_score, siblings = sentence, score, split
    return best, siblings


def baseline_extractive_reader(question: str, contexts: Sequence[str], max_answer_words: int = 6) -> str:
    """BASELINE reader (lexical, no model): the best-overlap sentence, then the span of the expected answer
    type nearest the question words that are rare in that passage (a name repeated in every sentence
    locates the passage, a rarer verb such as 'keeps' locates the answer). A floor to compare generators
    against, not a QA model."""
    sentence, siblings = best_sentence(question, contexts)
    terms = question_terms(question)
    tokens = list(_WORD.finditer(sentence))
    stems = [stem(m.group()) for m in tokens]
    spans = [s for s in candidate_spans(tokens, [t in terms for t in stems]) if s[1] - s[0] <= max_answer_words]
    if not spans:
        return sentence
    sibling_stems = [{stem(m.group()) for m in _WORD.finditer(s)} for s in siblings]
    frequency = {t: sum(t in found for found in sibling_stems) for t in set(stems) & terms.keys()}
    anchors = {i: 1.0 / max(1, frequency[t]) for i, t in enumerate(stems) if t in terms}
    words, kind = [m.group() for m in tokens], answer_type(question)
    start, end = max(spans, key=lambda s: span_score(words, s, anchors, kind))
    return sentence[tokens[start].start():tokens[end - 1].end()]


class Seq2SeqGenerator:
    """Generate an answer with a seq2seq LM (flan-t5-small/base online; tiny-t5 offline, untrained; a model
    fine-tuned by the seq2seq study, prompted in the format it was trained on)."""

    def __init__(self, model, tokenizer, template: str = DEFAULT_QA_TEMPLATE, max_new_tokens: int = 16,
                 max_input_tokens: int = 512):
        self.model, self.tokenizer, self.template = model.eval(), tokenizer, template
        self.max_new_tokens, self.max_input_tokens = max_new_tokens, max_input_tokens
        self.name = f"seq2seq-generate:{getattr(model.config, 'name_or_path', 'model')}"

    def __call__(self, question: str, contexts: Sequence[str]) -> str:
        import torch

        prompt = build_context_prompt(question, contexts, self.template)
        enc = self.tokenizer(prompt, return_tensors="pt", truncation=True, max_length=self.max_input_tokens)
        enc.pop("token_type_ids", None)
        with torch.inference_mode():
            out = self.model.generate(**enc.to(self.model.device), max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.tokenizer.decode(out[0], skip_special_tokens=True).strip()


# ---------------------------------------------------------------- end to end

STAGES = ("embed_query", "search", "read")


@dataclasses.dataclass
class RagRun:
    k: int
    reader: str
    predictions: list
    hits: list  # per question: list[Hit]
    timings_s: dict  # stage -> per-question seconds
    template: str = DEFAULT_QA_TEMPLATE  # the prompt the reader was given (its context overhead is counted in it)

    def latency_breakdown(self) -> dict:
        """Stage -> {p50_ms, p95_ms, mean_ms, n}; 'total' is the per-question sum of the stages."""
        out = {stage: LatencyStats.of(self.timings_s[stage]).to_dict() for stage in STAGES}
        out["total"] = LatencyStats.of(np.sum([self.timings_s[s] for s in STAGES], axis=0)).to_dict()
        return out

    def retrieved_ids(self) -> list[list[str]]:
        return [[h.passage_id for h in hits] for hits in self.hits]


def embed_queries(questions: Sequence[dict], embedder) -> tuple[np.ndarray, list[float]]:
    """Each question embedded on its own, as `Retriever.embed_query` does when serving: (nq, d) normalized
    vectors and the seconds each took."""
    vectors, seconds = [], []
    for q in questions:
        start = time.perf_counter()
        vectors.append(encode([q["question"]], embedder, batch_size=1)[0])
        seconds.append(time.perf_counter() - start)
    return np.stack(vectors), seconds


def run_rag(questions: Sequence[dict], retriever: Retriever, k: int,
            reader: Callable[[str, Sequence[str]], str] = baseline_extractive_reader,
            reader_name: str | None = None, embedded: tuple[np.ndarray, Sequence[float]] | None = None) -> RagRun:
    """Answer each question on its own (serving-style), timing query embedding, search and reading.

    `embedded` = `embed_queries(questions, retriever.embedder)`: reuse those vectors and their timings (the embed stage
    does not depend on k), so a sweep over k embeds each question once."""
    if embedded is not None and not len(embedded[0]) == len(embedded[1]) == len(questions):
        raise ValueError(f"embedded holds {len(embedded[0])} vectors and {len(embedded[1])} timings for "
                         f"{len(questions)} questions; pass embed_queries(questions, embedder)")
    timings = {stage: [] for stage in STAGES}
    predictions, all_hits = [], []
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        vector = retriever.embed_query(q["question"]) if embedded is None else embedded[0][i:i + 1]
        t1 = time.perf_counter()
        hits = retriever.search(vector, k)
        t2 = time.perf_counter()
        predictions.append(reader(q["question"], [h.text for h in hits]))
        t3 = time.perf_counter()
        embed_s = t1 - t0 if embedded is None else float(embedded[1][i])
        for stage, seconds in zip(STAGES, (embed_s, t2 - t1, t3 - t2)):
            timings[stage].append(seconds)
        all_hits.append(hits)
    name = reader_name or getattr(reader, "name", None) or (
        READER_BASELINE if reader is baseline_extractive_reader else getattr(reader, "__name__", "reader"))
    return RagRun(k, name, predictions, all_hits, timings, getattr(reader, "template", DEFAULT_QA_TEMPLATE))


def evaluate_rag(run: RagRun, questions: Sequence[dict], ks: Sequence[int] = (1, 3, 5, 10)) -> dict:
    """EM/F1 of the answers plus retrieval metrics of the gold passage for each k <= run.k."""
    qa = squad_scores(run.predictions, [q["answers"] for q in questions])
    ranked = run.retrieved_ids()
    scores = [[h.score for h in hits] for hits in run.hits]
    retrieval = retrieval_scores(ranked, [{q["gold_passage_id"]} for q in questions],
                                 [k for k in ks if k <= run.k], scores)
    return {"exact_match": qa["exact_match"], "f1": qa["f1"], **retrieval, "n_questions": len(questions)}
