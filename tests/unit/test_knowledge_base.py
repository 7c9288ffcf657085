"""lowres.knowledge_base: a knowledge base grown in place answers as one built at once (Flat exactly, HNSW and
IVF within their recall), removal, saving and reloading, and bad requests refused in one line."""
import numpy as np
import pytest
from conftest import has_real_data

from lowres import rag
from lowres.data.synthetic import synthetic_kb
from lowres.knowledge_base import KnowledgeBase, KnowledgeBaseError, known_vectors


@pytest.fixture(scope="module")
def minilm():
    from lowres.models import load_embedder

    return load_embedder("minilm")


@pytest.fixture(scope="module")
def synthetic(minilm):
    """200 invented passages and their questions' embeddings."""
    passages, questions = synthetic_kb(200, seed=0)
    return passages, rag.encode([q["question"] for q in questions], minilm)


@pytest.fixture(scope="module")
def vectors_for(minilm, synthetic):
    """The chunk vectors of some of the 200 passages, embedded once for the module (each build would embed
    them again: the same vectors, seconds each)."""
    passages, _ = synthetic
    chunks = rag.chunk_passages(passages, minilm.tokenizer)
    vectors = rag.encode([c["text"] for c in chunks], minilm)
    return lambda part: known_vectors(part, chunks, vectors)


@pytest.fixture(scope="module")
def build(minilm, vectors_for):
    return lambda part, kind="flat", **options: KnowledgeBase.build(part, minilm, kind=kind,
                                                                    vectors=vectors_for(part), **options)


def chunk_ids(kb: KnowledgeBase, ids: np.ndarray) -> list[list[str]]:
    return [[kb.chunks[int(i)]["chunk_id"] for i in row if i >= 0] for row in ids]


def test_flat_grown_in_steps_returns_the_same_top_k_as_one_built_at_once(build, synthetic):
    passages, queries = synthetic
    grown = build(passages[:120])
    steps = [grown.add(passages[120:160]), grown.add(passages[160:])]  # embedded here: their cost is measured
    whole = build(passages)
    assert all(step.chunks > 0 and step.embed_s > 0 and step.add_s > 0 for step in steps)
    assert len(grown.chunks) == len(whole.chunks) and grown.passage_ids() == whole.passage_ids()
    assert chunk_ids(grown, grown.search_ids(queries, 10)[1]) == chunk_ids(whole, whole.search_ids(queries, 10)[1])
    assert grown.recall_against_exact(queries, 10) == 1.0


def test_ivf_keeps_its_centroids_and_still_finds_what_was_added(build, vectors_for, synthetic):
    passages, queries = synthetic
    kb = build(passages[:100], "ivf", nlist=2, nprobe=2)  # every list scanned
    centroids = kb.index.quantizer.reconstruct_n(0, 2)
    kb.add(passages[100:], vectors_for(passages[100:]))
    np.testing.assert_array_equal(kb.index.quantizer.reconstruct_n(0, 2), centroids)  # no retraining
    assert kb.recall_against_exact(queries, 10) == 1.0  # exhaustive: the added vectors are in the lists
    probing = build(passages[:100], "ivf", nlist=2, nprobe=1)  # one list of two: recall < 1, more as it grows
    probing.add(passages[100:], vectors_for(passages[100:]))
    drift = probing.recall_against_exact(queries, 10)
    assert 0.0 < drift <= 1.0 and 0.0 < probing.rebuilt().recall_against_exact(queries, 10) <= 1.0


def test_removed_passages_are_never_returned_and_flat_matches_a_base_built_without_them(build, synthetic):
    passages, queries = synthetic
    gone = [p["passage_id"] for p in passages[:50]]
    for kind in ("flat", "ivf", "hnsw"):
        kb = build(passages, kind)
        removed = kb.remove(gone)
        assert removed >= 50 and not set(gone) & kb.passage_ids()
        found = {kb.chunks[int(i)]["passage_id"] for i in kb.search_ids(queries, 20)[1].ravel() if i >= 0}
        assert not found & set(gone), kind  # HNSW: excluded by its tombstones
        assert len(kb.search_ids(queries, 20)[1][0]) == 20 and (kb.search_ids(queries, 20)[1] >= 0).all()
        if kind == "flat":
            without = build(passages[50:])
            ours, theirs = kb.search_ids(queries, 10)[1], without.search_ids(queries, 10)[1]
            assert chunk_ids(kb, ours) == chunk_ids(without, theirs)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_a_saved_knowledge_base_reloads_with_identical_search_results(minilm, build, synthetic, tmp_path, kind):
    passages, queries = synthetic
    kb = build(passages, kind, ef_search=32)
    kb.remove([passages[3]["passage_id"]])
    kb.save(tmp_path / "kb")
    kb.save(tmp_path / "kb")  # saving again replaces the folder whole
    again = KnowledgeBase.load(tmp_path / "kb", minilm)
    for (scores, ids), (scores2, ids2) in [(kb.search_ids(queries, 10), again.search_ids(queries, 10))]:
        np.testing.assert_array_equal(ids, ids2)
        np.testing.assert_array_equal(scores, scores2)
    assert again.params == kb.params and again.tombstones == kb.tombstones and again.next_id == kb.next_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]  # no draft or old folder left behind
    grown = again.add([{"passage_id": "new-1", "text": "Zorblat Quenx was born in Vadurn in 1901."}])
    assert grown.chunks == 1 and "new-1" in again.passage_ids()


def test_it_serves_questions_as_a_retriever_does(minilm):
    passages, questions = synthetic_kb(60, seed=1)
    kb = KnowledgeBase.build(passages, minilm, kind="flat")
    vectors = rag.embed([c["text"] for c in kb.chunks.values()], minilm, cache=False)
    retriever = rag.Retriever(minilm, rag.build_index(vectors, "flat"), list(kb.chunks.values()))
    ours, theirs = (rag.run_rag(questions[:20], r, 3) for r in (kb, retriever))
    assert ours.predictions == theirs.predictions and ours.retrieved_ids() == theirs.retrieved_ids()


def test_bad_requests_are_one_line(minilm, build, synthetic, tmp_path, monkeypatch):
    passages, _ = synthetic
    kb = build(passages[:20])
    with pytest.raises(KnowledgeBaseError, match=r"already in the knowledge base: .*valid: new passage ids"):
        kb.add(passages[:1])
    with pytest.raises(KnowledgeBaseError, match=r"not in the knowledge base: nope; valid"):
        kb.remove(["nope"])
    with pytest.raises(KnowledgeBaseError, match=r"unknown index kind 'lsh'; valid: flat, ivf, hnsw"):
        KnowledgeBase(minilm, kind="lsh")
    with pytest.raises(KnowledgeBaseError, match=r"is not a saved knowledge base \(missing index.faiss"):
        KnowledgeBase.load(tmp_path, minilm)
    kb.save(tmp_path / "kb")
    monkeypatch.setattr(rag, "embedder_id", lambda embedder: "another-model|max_seq_length=128")
    with pytest.raises(KnowledgeBaseError, match=r"saved with embedder .*valid: load it with that embedder"):
        KnowledgeBase.load(tmp_path / "kb", minilm)


SQUAD_PASSAGES = 400  # a seeded share of SQuAD v1.1 dev's 2,067 passages: its embeddings take ~30 s on 2 cores


@pytest.mark.skipif(not has_real_data("squad/dev-v1.1.passages.jsonl"), reason="SQuAD absent from LOWRES_DATA_DIR")
def test_hnsw_grown_on_squad_keeps_recall_within_0_02_of_a_rebuilt_index(minilm):
    from lowres.data import load_corpus

    squad = load_corpus("squad")
    rng = np.random.default_rng(0)
    passages = [squad.passages[i] for i in sorted(rng.choice(len(squad.passages), SQUAD_PASSAGES, replace=False))]
    kept = {p["passage_id"] for p in passages}
    questions = [q for q in squad.questions if q["gold_passage_id"] in kept][:300]
    queries = rag.embed([q["question"] for q in questions], minilm)
    chunks = rag.chunk_passages(passages, minilm.tokenizer)
    vectors = rag.embed([c["text"] for c in chunks], minilm)  # cached: the growth reuses them
    first = SQUAD_PASSAGES // 2
    cut = sum(c["passage_id"] in {p["passage_id"] for p in passages[:first]} for c in chunks)
    kb = KnowledgeBase.build([], minilm, kind="hnsw", M=16, ef_search=32)
    kb.add(passages[:first], vectors[:cut])
    for start in range(first, SQUAD_PASSAGES, 50):  # four growth steps of 50 passages
        part = passages[start:start + 50]
        n = len(rag.chunk_passages(part, minilm.tokenizer))
        kb.add(part, vectors[cut:cut + n])
        cut += n
    assert cut == len(vectors) and len(kb.chunks) == len(chunks)
    grown, rebuilt = kb.recall_against_exact(queries, 10), kb.rebuilt().recall_against_exact(queries, 10)
    assert abs(grown - rebuilt) <= 0.02 and grown > 0.9, (grown, rebuilt)
