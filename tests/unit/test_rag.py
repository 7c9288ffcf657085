"""RAG building blocks: chunk boundaries, index choice, FAISS indexes vs exact search, embedding cache,
the baseline reader, and retrieval on a tiny synthetic knowledge base with the bundled MiniLM."""
import numpy as np
import pytest

from lowres import rag
from lowres.retrieval_metrics import ann_recall_at_k

GiB = 2**30


@pytest.mark.parametrize("n, size, overlap, expected", [
    (10, 4, 1, [(0, 4), (3, 7), (6, 10)]),
    (10, 4, 0, [(0, 4), (4, 8), (8, 10)]),
    (8, 4, 0, [(0, 4), (4, 8)]),          # exact fit: no empty tail window
    (4, 4, 2, [(0, 4)]),                  # fits in one window: no window inside another
    (3, 4, 1, [(0, 3)]),
    (5, 4, 3, [(0, 4), (1, 5)]),
    (0, 4, 1, []),
])
def test_chunk_windows_boundaries(n, size, overlap, expected):
    assert rag.chunk_windows(n, size, overlap) == expected


@pytest.mark.parametrize("size, overlap", [(0, 0), (4, 4), (4, -1)])
def test_chunk_windows_rejects_bad_sizes(size, overlap):
    with pytest.raises(ValueError):
        rag.chunk_windows(10, size, overlap)


def test_chunk_windows_cover_every_token_with_the_overlap():
    for n in range(1, 40):
        windows = rag.chunk_windows(n, 7, 3)
        assert windows[0][0] == 0 and windows[-1][1] == n
        assert all(e - s <= 7 for s, e in windows)
        assert all(b[0] == a[0] + 4 for a, b in zip(windows, windows[1:]))


@pytest.fixture(scope="module")
def minilm():
    """One torch thread while this module runs: tiny batches gain nothing from two, and on a shared CPU
    a second thread mostly waits (restored afterwards)."""
    import torch

    from lowres.models import load_embedder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_embedder("minilm")
    torch.set_num_threads(threads)


def test_chunk_passages_slices_original_text(minilm):
    text = " ".join(f"word{i}" for i in range(60)) + "."
    chunks = rag.chunk_passages([{"passage_id": "p1", "text": text}, {"passage_id": "p2", "text": "Short one."}],
                                minilm.tokenizer, size=32, overlap=8)
    long = [c for c in chunks if c["passage_id"] == "p1"]
    assert [c["chunk_id"] for c in long] == [f"p1#{i}" for i in range(len(long))]
    assert len(long) > 1 and all(c["text"] in text and c["n_tokens"] <= 32 for c in long)
    assert long[0]["text"].startswith("word0") and long[-1]["text"].endswith("word59.")
    assert chunks[-1] == {"chunk_id": "p2#0", "passage_id": "p2", "text": "Short one.", "n_tokens": 3}


@pytest.mark.parametrize("n, budget, exact, kind, fits", [
    (5_000, 1 * GiB, False, "flat", True),                # small corpus: brute force
    (1_000_000, 64 * GiB, True, "flat", True),            # exact results requested
    (1_000_000, 4 * GiB, False, "hnsw", True),            # 1e6 * (384*4 + 32*2*4) = 1.79 GB fits
    (1_000_000, 1.6 * GiB, False, "ivf", True),           # HNSW does not, IVF,Flat (1.55 GB) does
    (1_000_000, 1 * GiB, False, "ivf", False),            # nothing uncompressed fits: says so
])
def test_choose_index(n, budget, exact, kind, fits):
    choice = rag.choose_index(n, 384, budget, exact=exact)
    assert (choice.kind, choice.fits) == (kind, fits)
    assert choice.explanation and (choice.estimated_bytes <= budget) == fits
    if kind == "ivf":
        assert choice.params["nlist"] == 4000 and 4 * 1000 <= choice.params["nlist"] <= 16 * 1000


def test_default_nlist_respects_training_points():
    assert rag.default_nlist(1_000_000) == 4000
    assert rag.default_nlist(2_000) == 2_000 // 39
    assert rag.default_nlist(10) == 1


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_is_exact_and_ann_indexes_recall(vectors):
    queries, k = vectors[:50] + 0.05, 10
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    flat = rag.build_index(vectors, "flat")
    stats, ids = rag.search_latency(flat, queries, k)
    assert ann_recall_at_k(ids, truth, k) == 1.0 and stats.n == 50 and stats.p95_ms >= stats.p50_ms
    assert flat.memory_bytes >= vectors.nbytes
    hnsw = rag.build_index(vectors, "hnsw", M=16, ef_search=64)
    assert ann_recall_at_k(hnsw.search(queries, k)[1], truth, k) > 0.9
    assert hnsw.memory_bytes > flat.memory_bytes and hnsw.params["ef_search"] == 64
    ivf = rag.build_index(vectors, "ivf", nprobe=2)
    assert ivf.params["nlist"] == rag.default_nlist(3000)
    ivf.set_params(nprobe=ivf.params["nlist"])  # probing every list is exhaustive
    assert ann_recall_at_k(ivf.search(queries, k)[1], truth, k) == 1.0
    with pytest.raises(ValueError):
        rag.build_index(vectors, "lsh")


def test_embed_is_normalized_and_cached(minilm, tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_CACHE", str(tmp_path))
    texts = ["A cat sat on the mat.", "Stock prices fell sharply."]
    first = rag.embed(texts, minilm)
    path = rag.embedding_cache_path(minilm, texts)
    assert path.is_file() and path.parent == tmp_path / "embeddings"
    assert first.shape == (2, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(rag.embed(texts, minilm), first)
    assert rag.embedding_cache_path(minilm, texts[:1]) != path


@pytest.mark.parametrize("question, answer", [
    ("What pet does Ana Roe keep?", "a tortoise"),
    ("In which year was Ana Roe born?", "1872"),
    ("Where does Ana Roe live?", "Port Averly"),
    ("What is the job of Ana Roe?", "astronomer"),
])
def test_baseline_extractive_reader(question, answer):
    context = ("Ana Roe is an astronomer who lives in Port Averly. Ana Roe was born in 1872 and keeps a tortoise at "
               "home. The favourite dish of Ana Roe is lemon cake.")
    other = "Bo Lin is a pilot who lives in Selmora. Bo Lin was born in 1901 and keeps a parrot at home."
    from lowres.qa_metrics import exact_match

    assert exact_match(rag.baseline_extractive_reader(question, [context, other]), answer)


def test_prompt_and_context_overhead(minilm):
    prompt = rag.build_context_prompt("Why?", ["first", "second"])
    assert "first\n\nsecond" in prompt and prompt.endswith("Question: Why?\nAnswer:")
    overhead = rag.context_overhead_tokens(["Why?"], [["one two three", "four five"]], minilm.tokenizer, [0, 1, 2])
    assert overhead[0] == 0 and 0 < overhead[1] < overhead[2]


def test_end_to_end_on_synthetic_kb(minilm):
    from lowres.data.synthetic import synthetic_kb

    passages, questions = synthetic_kb(30, seed=3)
    retriever, choice = rag.build_retriever(passages, minilm, kind="auto", cache=False)
    assert choice.kind == "flat" and retriever.index.n == 30
    run = rag.run_rag(questions[:20], retriever, k=5)
    assert all(len(h) == 5 for h in run.hits) and run.reader == rag.READER_BASELINE
    scores = rag.evaluate_rag(run, questions[:20], ks=(1, 5, 10))
    assert scores["recall@5"] >= 0.9 and scores["exact_match"] >= 0.6 and "recall@10" not in scores
    breakdown = run.latency_breakdown()
    assert set(breakdown) == {"embed_query", "search", "read", "total"}
    assert breakdown["total"]["mean_ms"] == pytest.approx(sum(breakdown[s]["mean_ms"] for s in rag.STAGES))


def test_seq2seq_generator_runs_offline():
    from lowres.models import load_model, load_tokenizer

    generator = rag.Seq2SeqGenerator(load_model("tiny-t5", "seq2seq"), load_tokenizer("tiny-t5"), max_new_tokens=4)
    assert isinstance(generator("Where?", ["Here."]), str)  # untrained weights: only the code path is checked
