"""The RAG and prompting studies' analysis helpers, without a kernel: index comparison, energy per sample,
configuration plans, headline choice, and the prompting / RAG / fine-tuning comparison rows."""
import numpy as np
import pandas as pd
import pytest

from lowres import results
from lowres.studies.prompting import analysis as prompt_analysis
from lowres.studies.prompting import steps as prompt_steps
from lowres.studies.rag import analysis as rag_analysis
from lowres.studies.rag import steps as rag_steps


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_compare_indexes_flat_is_exact_and_nprobe_is_capped_at_nlist():
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(400, 16)))
    queries = unit(vectors[:50] + 0.05 * rng.normal(size=(50, 16)))
    passages = [f"p{i // 2}" for i in range(400)]  # two chunks per passage
    table = rag_steps.compare_indexes(vectors, queries, passages, [f"p{i // 2}" for i in range(50)], k=5,
                                      sweep_nprobe=[1, 4, 64], sweep_ef_search=[32], nlist=8)
    assert list(table["name"]) == ["flat", "ivf_nprobe1", "ivf_nprobe4", "ivf_nprobe8", "hnsw_ef32"]
    flat = table.set_index("name").loc["flat"]
    assert flat["ann_recall"] == 1.0 and flat["gold_recall"] == 1.0 and flat["memory_mib"] > 0
    assert table.set_index("name").loc["ivf_nprobe8", "ann_recall"] == 1.0  # all lists scanned = exact
    assert (table["p95_ms"] >= table["p50_ms"]).all()


def test_serving_index_auto_explains_and_explicit_kind_is_kept():
    vectors = unit(np.random.default_rng(1).normal(size=(300, 8)))
    index, why = rag_steps.serving_index(vectors, "auto", ram_budget_mb=64)
    assert index.kind == "flat" and why.startswith("auto: Flat")
    index, why = rag_steps.serving_index(vectors, "hnsw", M=8, ef_search=20)
    assert index.kind == "hnsw" and why == "hnsw M=8 ef=20 (requested)"


def test_energy_per_sample_sums_present_figures_and_names_sources():
    a = {"samples": 10, "cpu_energy_j": 4.0, "gpu_energy_j": [6.0], "dram_energy_j": None,
         "sources": {"cpu_energy_j": "rapl", "gpu_energy_j": "nvml-energy-counter", "dram_energy_j": "unavailable"}}
    b = {"samples": 10, "cpu_energy_j": 10.0, "sources": {"cpu_energy_j": "rapl"}}
    assert results.energy_per_sample(a) == (1.0, "nvml-energy-counter, rapl")
    assert results.energy_per_sample(a, b) == (2.0, "nvml-energy-counter, rapl")
    assert results.energy_per_sample({"samples": 3, "cpu_energy_j": None, "sources": {}}) == (None, "unavailable")
    assert results.energy_per_sample(None) == (None, "unavailable")


def test_strategy_frame_reads_the_run_summaries(outputs):
    from lowres.results import RunResult, save_result

    lora = RunResult(study="lora", run_id="lora-1", status="ok", params={"dataset": "sst2", "model": "minilm",
                                                                          "method": "full"},
                     metrics={"accuracy": 0.9, "latency_ms_b1_p50": 7.0},
                     measurements={"eval": {"wall_s": 1.0, "samples": 1000}})
    save_result(lora, outputs / "lora" / "lora-1")
    rag = RunResult(study="rag", run_id="rag-2", status="ok", params={"dataset": "squad", "generator": "baseline-extractive"},
                    metrics={"f1": 0.5, "exact_match": 0.4, "latency_ms": 30.0, "latency_p50_ms": 20.0})
    frame = rag_analysis.strategy_frame(current=rag).set_index("run_id")
    assert frame.loc["lora-1", "strategy"] == "fine-tuning (full)" and frame.loc["lora-1", "latency_ms"] == 7.0
    assert frame.loc["lora-1", "latency_kind"] == "per request (batch 1)"
    assert frame.loc["rag-2", "metric"] == "f1" and frame.loc["rag-2", "latency_ms"] == 20.0  # the median first


def test_prompt_configs_and_fixed_headline():
    names = [c.name for c in prompt_steps.configs("embedding", [0, 4])]
    assert names == ["zero-shot", "prototype-k4", "knn-k4"]
    plan = prompt_steps.configs("generative", [0, 2], n_templates=2)
    assert [c.name for c in plan] == ["generative-k0-t0", "generative-k0-t1", "generative-k2-t0", "generative-k2-t1"]
    table = pd.DataFrame({"config": [c.name for c in plan], "method": "generative", "shots": [0, 0, 2, 2],
                          "template": [0, 1, 0, 1], "accuracy": [0.6, 0.8, 0.7, 0.9], "macro_f1": 0.5,
                          "latency_ms": 1.0, "prompt_tokens": [10, 12, 40, 44], "energy_j_per_example": None,
                          "energy_source": "unavailable"})
    metrics = prompt_steps.run_metrics(table)
    assert metrics["accuracy"] == pytest.approx(0.8) and metrics["zero_shot_accuracy"] == pytest.approx(0.7)
    assert metrics["template_spread"]["2"]["spread"] == pytest.approx(0.2)
    assert metrics["headline"] == "generative, 2 shots, mean of 2 templates" and metrics["prompt_tokens"] == 42


def test_key_functions_accept_an_empty_collection():
    assert rag_analysis.key_table(pd.DataFrame()).empty and prompt_analysis.key_table(pd.DataFrame()).empty
    assert rag_analysis.key_figure(pd.DataFrame()) is not None and prompt_analysis.key_figure(pd.DataFrame()) is not None


# ---------------------------------------------------------------- the model paths, offline with tiny-t5

SENTIMENT = [{"text": t, "label": y} for t, y in [("a joyful, moving film", 1), ("dull and far too long", 0),
                                                   ("warm and funny", 1), ("a tedious mess", 0),
                                                   ("lovely acting", 1), ("boring plot", 0)]]


def test_generative_prompting_study_path_runs_with_tiny_t5():
    """The flan-t5 path of the prompting study (tiny-t5 is untrained: its accuracy is chance, only wiring is
    checked): load -> every template x shot count -> table -> headline over templates and the spread."""
    from lowres.studies.prompting.params import Params

    Params(method="generative", model="tiny-t5", n_templates=2)  # accepted
    for bad, message in [(dict(model="tiny-t5"), "is not a sentence embedder"),
                         (dict(method="generative", model="tiny-bert"), "is an encoder-only model")]:
        with pytest.raises(ValueError, match=message):
            Params(**bad)
    scorer = prompt_steps.load_scorer("generative", "tiny-t5")
    assert prompt_steps.encode_eval("generative", SENTIMENT, scorer) is None  # prompts differ per configuration
    plan = prompt_steps.configs("generative", [0, 2], n_templates=2)
    scored = {c: prompt_steps.run_config(c, SENTIMENT[:4], SENTIMENT[4:], scorer, batch_size=2, seed=0) for c in plan}
    assert all(set(r.predictions) <= {0, 1} and r.n == 4 for r in scored.values())
    k2 = scored[plan[2]]
    assert k2.shots == 2 and k2.prompt_tokens_per_example > scored[plan[0]].prompt_tokens_per_example
    assert prompt_steps.window_tokens(plan[2], k2) == round(4 * k2.prompt_tokens_per_example)
    table = prompt_steps.results_table(scored)
    metrics = prompt_steps.run_metrics(table)
    assert metrics["headline"] == "generative, 2 shots, mean of 2 templates"
    assert metrics["template_spread"]["0"]["n_templates"] == 2 and metrics["energy_source"] == "unavailable"


def test_rag_seq2seq_generator_path_runs_with_tiny_t5():
    """The flan-t5 path of the RAG study with tiny-t5 (untrained: answers are noise; the wiring, the context
    overhead in the generator's tokens and the truncation share are checked). Vectors are made by hand so no
    embedder loads: each question's vector is its gold passage's plus noise."""
    from lowres import rag
    from lowres.data.synthetic import synthetic_kb
    from lowres.studies.rag.params import Params

    Params(generator="tiny-t5")  # accepted
    passages, all_questions = synthetic_kb(8, seed=0)
    questions = all_questions[:6]
    chunks = [{"chunk_id": f"{p['passage_id']}#0", "passage_id": p["passage_id"], "text": p["text"]} for p in passages]
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(len(chunks), 32)))
    row = {c["passage_id"]: i for i, c in enumerate(chunks)}
    queries = unit(np.stack([vectors[row[q["gold_passage_id"]]] for q in questions]) + 0.1 * rng.normal(size=(6, 32)))
    retriever = rag.Retriever(None, rag.build_index(vectors, "flat"), chunks)
    reader, name, tokenizer = rag_steps.load_reader("tiny-t5", "cpu", max_new_tokens=3, max_input_tokens=100)
    assert isinstance(reader, rag.Seq2SeqGenerator) and name == "seq2seq-generate:tiny-t5"
    embedded = (queries, [0.001] * len(questions))  # the embed stage's vectors and seconds, reused at every k
    answers = {k: rag.run_rag(questions, retriever, k, reader, name, embedded=embedded) for k in (1, 3)}
    assert all(isinstance(p, str) for p in answers[3].predictions) and answers[3].reader == name
    with pytest.raises(ValueError, match="embedded holds 6 vectors and 6 timings for 5 questions"):
        rag.run_rag(questions[:5], retriever, 1, reader, name, embedded=embedded)
    table = rag_steps.k_table(answers, questions, tokenizer, max_input_tokens=100).set_index("k")
    assert table.loc[1, "recall"] == 1.0 and table.loc[1, "embed_query_ms"] == pytest.approx(1.0)
    assert 0 < table.loc[1, "context_tokens_added"] < table.loc[3, "context_tokens_added"]
    # T5 tokens: one passage + the template ~70 fits in 100, three passages ~170 do not
    assert table.loc[1, "truncated_share"] == 0.0 and table.loc[3, "truncated_share"] == 1.0
    index = retriever.index
    metrics = rag_steps.run_metrics(table.reset_index(), pd.DataFrame(columns=["name"]), 3, index, "requested", name)
    assert metrics["reader"] == name and metrics["by_k"]["1"]["recall"] == 1.0
