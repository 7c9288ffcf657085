"""RAG: retrieve top-k passages (MiniLM embeddings, FAISS flat/ivf/hnsw) and read or generate an answer.

One run embeds the corpus once, compares every index type (build time, memory, query latency, recall against
exact search) and answers every question at every k in `ks`, so a grid stays small. The answer model is
`generator`: the offline `baseline-extractive` reader (lexical, no model: a floor, not a generator) or a
seq2seq model (google/flan-t5-small/base with hub access; tiny-t5 offline has random weights).

A list parameter given on the command line becomes a grid axis; to pass one list value use double brackets:
`lowres run rag --set "ks=[[1, 2, 4, 8]]"`.
"""
import dataclasses
from typing import List, Literal, Optional

from lowres.config import BaseParams, Count, ModelName, params_dataclass
from lowres.devices import check_device

BASELINE_READER = "baseline-extractive"  # lowres.rag.READER_BASELINE (kept import-free here)
KB_DATASETS = ("squad", "synthetic-kb")
MAX_K = 100


def positive_ints(name: str, values: list, allow_empty: bool = False) -> None:
    if not values and not allow_empty:
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {values!r}")
    bad = [v for v in values if v < 1]
    if bad:
        raise ValueError(f"{name} must hold positive integers, got {values!r} (bad: {bad})")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has repeated values: {values!r}")


def check_seq2seq(name: str, what: str) -> None:
    """A generator that resolves here (local dir or HF cache) must be an encoder-decoder model; names that do
    not resolve are reported by the resource check with instructions."""
    import json
    from pathlib import Path

    from lowres.models import OFFLINE_NAMES, ModelNotAvailable, resolve

    if name in OFFLINE_NAMES:
        if name != "tiny-t5":
            raise ValueError(f"{what}={name!r} is not a seq2seq model; valid: {BASELINE_READER}, tiny-t5 (offline, "
                             "untrained), google/flan-t5-small, google/flan-t5-base, or a local seq2seq model dir")
        return
    try:
        config = Path(resolve(name)) / "config.json"
    except ModelNotAvailable:
        return
    if config.is_file() and not json.loads(config.read_text()).get("is_encoder_decoder", False):
        raise ValueError(f"{what}={name!r} is not an encoder-decoder (seq2seq) model; valid: {BASELINE_READER}, "
                         "tiny-t5, google/flan-t5-small, google/flan-t5-base, or a local seq2seq model dir")


@params_dataclass
class Params(BaseParams):
    dataset: str = "synthetic-kb"
    n_passages: Optional[int] = 200  # synthetic-kb: entities (one passage each); squad: null (all 2,067 dev passages)
    n_questions: Optional[Count] = 100  # seeded subset of the questions; null = all
    embedder: ModelName = "minilm"
    chunk_size: int = 128  # tokens of the embedder's tokenizer
    chunk_overlap: int = 32
    index: Literal["auto", "flat", "ivf", "hnsw"] = "auto"  # the index that serves the questions
    ram_budget_mb: Optional[float] = None  # for index=auto; null = a quarter of the RAM available now
    nlist: Optional[Count] = None  # IVF lists; null = 4*sqrt(n) capped at n/39 (FAISS guidelines)
    nprobe: Count = 8  # IVF lists scanned when index=ivf
    hnsw_m: Count = 32
    ef_search: Count = 64  # HNSW search depth when index=hnsw
    sweep_nprobe: List[int] = dataclasses.field(default_factory=lambda: [1, 4, 16])  # index comparison
    sweep_ef_search: List[int] = dataclasses.field(default_factory=lambda: [16, 64])
    ks: List[int] = dataclasses.field(default_factory=lambda: [1, 3, 5, 10])  # every k is answered in the run
    k: int = 5  # the k the headline metrics (exact_match, f1, latency_ms, ...) are reported at
    generator: ModelName = BASELINE_READER
    max_new_tokens: Count = 16
    max_input_tokens: int = 512
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Count = 1  # torch + FAISS threads: latency is measured one query at a time

    def __post_init__(self):
        if self.dataset not in KB_DATASETS:
            raise ValueError(f"dataset {self.dataset!r} is not a knowledge base; valid: {', '.join(KB_DATASETS)}")
        if self.dataset == "squad" and self.n_passages is not None:
            raise ValueError(f"n_passages={self.n_passages} applies to synthetic-kb only; squad uses all its dev "
                             "passages (set n_passages: null and choose n_questions)")
        if self.dataset == "synthetic-kb" and (self.n_passages is None or self.n_passages < 10):
            raise ValueError(f"n_passages must be an integer >= 10 for synthetic-kb, got {self.n_passages!r}")
        if self.chunk_size < 8 or not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(f"need chunk_size >= 8 and 0 <= chunk_overlap < chunk_size, got chunk_size="
                             f"{self.chunk_size}, chunk_overlap={self.chunk_overlap}")
        positive_ints("ks", self.ks)
        if max(self.ks) > MAX_K or self.ks != sorted(self.ks):
            raise ValueError(f"ks must be increasing, each <= {MAX_K}, got {self.ks}")
        if self.k not in self.ks:
            raise ValueError(f"k={self.k} must be one of ks; valid: {', '.join(map(str, self.ks))}")
        positive_ints("sweep_nprobe", self.sweep_nprobe, allow_empty=True)
        positive_ints("sweep_ef_search", self.sweep_ef_search, allow_empty=True)
        if self.max_input_tokens < 16:
            raise ValueError(f"max_input_tokens must be >= 16, got {self.max_input_tokens}")
        if self.ram_budget_mb is not None and self.ram_budget_mb <= 0:
            raise ValueError(f"ram_budget_mb must be > 0 or null (a quarter of available RAM), got {self.ram_budget_mb}")
        if self.generator != BASELINE_READER:
            check_seq2seq(self.generator, "generator")
        check_device(self.device)

    def resources(self):
        models = [self.embedder] + ([] if self.generator == BASELINE_READER else [self.generator])
        return {"models": models, "datasets": [self.dataset]}
