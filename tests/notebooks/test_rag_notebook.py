"""RAG and prompting studies end to end through `lowres run` (each smoke grid once per session, shared through
the `smoke_study` fixture), and their bad input refused before anything runs."""
import pytest

from lowres import results
from lowres.studies.prompting import analysis as prompt_analysis
from lowres.studies.rag import analysis as rag_analysis
from lowres.cli import main
from lowres.results import collect

pytestmark = pytest.mark.notebook


def test_prompting_smoke_run_records_quality_cost_and_energy(smoke_study):
    (prompt,) = smoke_study("prompting").assert_ok().values()
    m = prompt["metrics"]
    assert set(m["by_config"]) == {"zero-shot", "prototype-k4", "knn-k4", "prototype-k16", "knn-k16"}
    assert m["headline"] == "prototype-k16" and m["accuracy"] == m["by_config"]["prototype-k16"]["accuracy"]
    assert m["zero_shot_accuracy"] > 0.7 and m["accuracy"] > 0.7  # MiniLM knows sentiment; chance is 0.5
    assert m["latency_ms"] > 0 and m["prompt_tokens"] > 3 and m["by_config"]["zero-shot"]["n"] == 100
    shared, window = prompt["measurements"]["encode_eval"], prompt["measurements"]["prototype-k16"]
    assert shared["samples"] == window["samples"] == 100 and shared["tokens"] > 100 and window["tokens"] is None
    assert window["sources"]["cpu_energy_j"] and m["energy_j_per_example"] > 0
    # every embedding configuration is charged the one encoding of the scored texts, plus its own scoring
    assert m["energy_source"] == results.energy_per_sample(shared, window)[1] != "unavailable"
    assert m["latency_ms"] >= 1e3 * shared["wall_s"] / 100 * 0.99
    assert len(prompt_analysis.by_config_frame(collect("prompting", smoke_study("prompting").outputs))) == 5


def test_rag_smoke_run_retrieves_answers_and_compares_strategies(smoke_study):
    smoke_study("prompting")  # first, so this run's comparison chart has a prompting point
    smoke = smoke_study("rag")
    (result,) = smoke.assert_ok().values()
    m, by_k = result["metrics"], result["metrics"]["by_k"]
    assert sorted(map(int, by_k)) == [1, 3, 5, 10] and m["k"] == 5 and m["n_questions"] == 100
    assert by_k["5"]["recall"] >= 0.9  # retrieval finds the gold passage in the top 5 for most questions
    assert by_k["1"]["recall"] <= by_k["5"]["recall"] <= by_k["10"]["recall"]
    assert by_k["5"]["precision"] == pytest.approx(by_k["5"]["recall"] / 5)  # one gold passage per question
    assert m["exact_match"] >= 0.6 and m["f1"] >= m["exact_match"] and m["reader"] == "baseline-extractive"
    tokens = [by_k[k]["context_tokens_added"] for k in ("1", "3", "5", "10")]
    assert 0 < tokens[0] < tokens[1] < tokens[2] < tokens[3]
    assert m["latency_ms"] == pytest.approx(by_k["5"]["embed_query_ms"] + by_k["5"]["search_ms"] + by_k["5"]["read_ms"])
    assert m["latency_p95_ms"] >= m["latency_p50_ms"] > 0
    assert m["indexes"]["flat"]["ann_recall"] == 1.0 and m["indexes"]["hnsw_ef64"]["ann_recall"] >= 0.9
    assert {"flat", "ivf_nprobe1", "hnsw_ef16"} <= set(m["indexes"]) and m["index"]["kind"] == "flat"
    assert m["index"]["why"].startswith("auto: Flat") and m["index"]["memory_bytes"] > 0
    assert by_k["5"]["energy_source"] != "unavailable" and by_k["5"]["energy_j_per_question"] > 0
    windows = result["measurements"]
    assert {"embed_corpus", "embed_queries", "compare_indexes", "build_index", "answer_k1",
            "answer_k10"} <= set(windows)
    assert windows["embed_queries"]["samples"] == 100
    run_folder = smoke.outputs / "rag" / result["run_id"]
    assert (run_folder / "rag.png").is_file() and (run_folder / "strategies.png").is_file()
    growth = m["knowledge_base"]  # 40 of 200 passages added to a Flat base: exactly what a rebuild finds
    assert growth["kind"] == "flat" and growth["passages_added"] == 40 and growth["chunks_added"] >= 40
    assert growth["recall@5_grown"] == growth["recall@5_rebuilt"] == 1.0 and growth["embed_s"] > 0
    assert growth["chunks_removed"] == growth["chunks_added"] and growth["reloads_identical"] is True
    assert (run_folder / "knowledge_base" / "index.faiss").is_file() and "kb_growth" in windows

    frame = rag_analysis.strategy_frame(smoke.outputs)  # both studies (and LoRA if its smoke ran) on one chart
    assert {"prompting", "RAG"} <= set(frame["strategy"])
    rag_point = frame.set_index("run_id").loc[result["run_id"]]
    assert rag_point["metric"] == "f1" and rag_point["latency_ms"] == m["latency_p50_ms"]
    table = rag_analysis.key_table(collect("rag", smoke.outputs))
    assert table.loc[0, "recall@k"] == m["recall"] and table.loc[0, "energy_source"] == by_k["5"]["energy_source"]


@pytest.mark.parametrize("args, message", [
    (["run", "rag", "--set", "k=4"], "k=4 must be one of ks; valid: 1, 3, 5, 10"),
    (["run", "rag", "--set", "dataset=sst2"], "dataset 'sst2' is not a knowledge base; valid: squad, synthetic-kb"),
    (["run", "rag", "--set", "dataset=squad"], "n_passages=200 applies to synthetic-kb only"),
    (["run", "rag", "--set", "index=annoy"], "index='annoy'"),
    (["run", "rag", "--set", "chunk_overlap=128"], "chunk_overlap=128"),
    (["run", "rag", "--set", "generator=tiny-bert"], "generator='tiny-bert' is not a seq2seq model"),
    (["run", "rag", "--set", "generator=google/flan-t5-small"], "not in the Hugging Face cache"),
    (["run", "prompting", "--set", "dataset=mrpc"], "dataset 'mrpc' is not a sentiment task"),
    (["run", "prompting", "--set", "method=generative"], "model 'minilm' is a sentence embedder"),
    (["run", "prompting", "--set", "n_templates=2"], "n_templates=2 applies to method=generative only"),
    (["run", "prompting", "--set", "model=tiny-t5"], "model 'tiny-t5' is not a sentence embedder"),
    (["run", "prompting", "--set", "method=generative", "--set", "model=google/flan-t5-base", "--set", "n_templates=3"],
     "not in the Hugging Face cache"),
])
def test_bad_input_is_refused_before_anything_runs(outputs, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(outputs.iterdir())
