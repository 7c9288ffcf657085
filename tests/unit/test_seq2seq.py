"""Seq2seq building blocks: ROUGE against rouge-score and hand counts, the baselines, the corpora (QA split by
passage), decoder tokens counted, LoRA's trainable share on T5 against peft's count and the analytic one, the
source template a fine-tuned reader keeps, a run id resolving to its checkpoint, and bad parameters refused."""
import json

import pytest
from rouge_score import rouge_scorer

from lowres import lora, models, seq2seq
from lowres.data import corpora
from lowres.data.modules import Seq2SeqDataModule
from lowres.studies.seq2seq.params import Params
from conftest import has_real_data


def test_rouge_matches_rouge_score_and_hand_counts():
    predictions = ["the cat sat on the mat", "a quick brown fox", "nothing in common"]
    references = ["the cat ran", "the quick brown fox jumps", "entirely different words"]
    ours = seq2seq.rouge_scores(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for kind in ("rouge1", "rouge2", "rougeL"):
        expected = sum(scorer.score(r, p)[kind].fmeasure for p, r in zip(predictions, references)) / 3
        assert ours[kind] == pytest.approx(expected)
    # by hand, pair 1: unigrams "the cat" shared, P = 2/6, R = 2/3 -> F = 4/9; pair 2: 3 of 4 / 3 of 5 -> F = 2/3
    assert ours["rouge1"] == pytest.approx((4 / 9 + 2 / 3 + 0) / 3)
    # several references: the best one counts
    assert seq2seq.rouge_scores(["the cat"], [["a dog", "the cat"]])["rougeL"] == pytest.approx(1.0)


def test_rouge_refuses_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        seq2seq.rouge_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        seq2seq.rouge_scores([], [])


def test_qa_quality_adds_squad_exact_match_and_f1():
    rows = [{"references": ["Paris", "paris france"]}, {"references": ["1999"]}]
    scores = seq2seq.quality(["paris", "in 1998"], rows, "qa")
    assert scores["exact_match"] == pytest.approx(0.5) and scores["f1"] == pytest.approx(0.5)
    assert "exact_match" not in seq2seq.quality(["paris", "in 1998"], rows, "summarization")


def test_lead_baseline_is_the_first_sentence_and_scores_low_on_synthetic_stories():
    corpus = corpora.load_seq2seq_corpus("synthetic-summaries", 10, 200, seed=3)
    name, predictions = seq2seq.baseline_predictions(corpus.val, "summarization")
    assert name == "lead sentence" and predictions[0] == corpus.val[0]["source"].split(". ")[0] + "."
    lead = seq2seq.rouge_scores(predictions, [r["references"] for r in corpus.val])["rougeL"]
    assert 0.1 < lead < 0.4  # the summary's facts are spread over the story: copying the lead is not enough


def test_synthetic_kb_questions_split_by_passage():
    corpus = corpora.load_seq2seq_corpus("synthetic-kb", 300, 60, seed=0)
    assert corpus.task == "qa" and len(corpus.train) == 300 and len(corpus.val) == 60
    assert corpus.source_template == corpora.GENERATIVE_QA_TEMPLATE
    contexts = lambda rows: {r["context"] for r in rows}  # noqa: E731
    assert not contexts(corpus.train) & contexts(corpus.val)
    assert all(r["target"] in r["context"] and r["source"].startswith("question: ") for r in corpus.val)


@pytest.mark.skipif(not has_real_data("squad/dev-v1.1.passages.jsonl"), reason="SQuAD absent from LOWRES_DATA_DIR")
def test_squad_as_generative_qa_holds_out_whole_passages():
    corpus = corpora.load_seq2seq_corpus("squad", None, None, seed=0)
    assert len(corpus.train) + len(corpus.val) == 10570 and 0.7 < len(corpus.train) / 10570 < 0.9
    assert not {r["context"] for r in corpus.train} & {r["context"] for r in corpus.val}
    assert all(r["target"] == r["references"][0] for r in corpus.val[:50])


def test_datamodule_counts_encoder_and_decoder_tokens():
    corpus = corpora.load_seq2seq_corpus("synthetic-summaries", 8, 4, seed=0)
    tokenizer = models.load_tokenizer("tiny-t5")
    datamodule = Seq2SeqDataModule(corpus, tokenizer, batch_size=4, max_length=128)
    datamodule.setup()
    counts = datamodule.epoch_token_counts("val")
    source = sum(len(tokenizer(r["source"])["input_ids"]) for r in corpus.val)
    target = sum(len(tokenizer(text_target=r["target"])["input_ids"]) for r in corpus.val)
    assert counts["real_tokens"] == source + target and counts["samples"] == 4
    batch = next(iter(datamodule.val_dataloader()))
    assert (batch["labels"] == -100).any() or batch["labels"].shape[1] == max(
        len(tokenizer(text_target=r["target"])["input_ids"]) for r in corpus.val)


def test_lora_on_t5_trains_q_and_v_only_and_peft_counts_what_the_shapes_say():
    net = lora.build_model("tiny-t5", "lora", rank=4, alpha=8, dropout=0.0, task="seq2seq")
    counts = lora.parameter_counts(net)
    # tiny-t5: 2 encoder self-attention + 2 decoder self- and 2 cross-attention blocks, q and v each (128 -> 128)
    assert counts["params_counted_by"] == "peft.get_nb_trainable_parameters"
    assert counts["trainable_params"] == counts["trainable_params_torch"] == 6 * 2 * 4 * (128 + 128)
    trained = {name.split(".")[-4] for name, p in net.named_parameters() if p.requires_grad}
    assert trained == {"q", "v"}


def test_export_reloads_to_identical_generations_and_keeps_the_source_template(tmp_path):
    net = lora.build_model("tiny-t5", "lora", rank=4, alpha=8, dropout=0.0, task="seq2seq")
    tokenizer = models.load_tokenizer("tiny-t5")
    exported = seq2seq.export(net, tokenizer, "tiny-t5", "lora", tmp_path, ["a short story.", "another one."],
                              max_new_tokens=5, source_template=corpora.GENERATIVE_QA_TEMPLATE)
    assert exported.reload_agreement == 1.0 and 0 < exported.adapter_bytes < exported.checkpoint_bytes
    checkpoint = tmp_path / "checkpoint"
    assert (checkpoint / "config.json").is_file() and (checkpoint / "tokenizer_config.json").is_file()
    assert seq2seq.trained_source_template(checkpoint) == corpora.GENERATIVE_QA_TEMPLATE
    assert seq2seq.trained_source_template(models.resolve("tiny-t5")) is None


def test_generation_counts_tokens_and_times_requests():
    model, tokenizer = models.load_model("tiny-t5", "seq2seq"), models.load_tokenizer("tiny-t5")
    out = seq2seq.generate(model, tokenizer, ["one story here.", "two."], max_new_tokens=6, batch_size=2)
    assert len(out.texts) == 2 and all(0 <= n <= 6 for n in out.new_tokens)  # random weights may emit padding
    timing = seq2seq.request_latency(model, tokenizer, ["one story here.", "two."], num_beams=2, max_new_tokens=4)
    assert timing["decoding"] == "beam2" and timing["n"] == 2 and timing["p95_ms"] >= timing["p50_ms"] > 0
    assert timing["ms_per_token"] > 0 and 0 <= timing["new_tokens_mean"] <= 4


def test_a_run_id_resolves_to_the_model_its_run_saved(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_OUTPUTS", str(tmp_path))
    checkpoint = tmp_path / "seq2seq" / "seq2seq-0123456789" / "checkpoint"
    checkpoint.mkdir(parents=True)
    with pytest.raises(models.ModelNotAvailable, match="saved no model"):
        models.resolve("seq2seq-0123456789")
    (checkpoint / "config.json").write_text(json.dumps({"is_encoder_decoder": True}))
    assert models.resolve("seq2seq-0123456789") == str(checkpoint)


@pytest.mark.parametrize("values, message", [
    ({"dataset": "sst2"}, "unknown dataset 'sst2'.*valid: synthetic-summaries"),
    ({"num_beams": 1}, "num_beams=1 would time greedy twice"),
    ({"method": "lora", "lora_rank": None}, "lora_rank must be set for method 'lora'"),
    ({"method": "sideways"}, "method"),
])
def test_bad_parameters_are_refused_with_the_valid_values(values, message):
    with pytest.raises(ValueError, match=message):
        Params(**values)


def test_full_fine_tuning_clears_the_lora_settings():
    params = Params(method="full", lora_rank=32)
    assert params.lora_rank is None and params.learning_rate == params.lr
    assert Params(method="lora").lr is None


def test_the_selector_names_the_seq2seq_profile_that_measures_a_generative_plan():
    from lowres import config, selector

    plan = selector.recommend("summarization", hardware="gpu", memory_gb=24, latency_ms=100, dataset_size=100_000)
    assert plan.measure_with == "lowres run seq2seq --profile gpu --set model=google/flan-t5-base --set method=lora"
    runs = config.load_params("seq2seq", "gpu", {"model": "google/flan-t5-base", "method": "lora"}).runs
    assert {(r.model, r.method) for r in runs} == {("google/flan-t5-base", "lora")}
    chatbot = selector.recommend("chatbot", hardware="cpu", memory_gb=16, latency_ms=2000)
    assert chatbot.measure_with.startswith(f"lowres run {selector.MEASURING_STUDY[('chatbot', chatbot.strategy)]} "
                                           "--profile cpu")
    assert "Measure it on your machine" in str(plan)


def test_the_generative_lora_gap_anchor_pairs_seq2seq_runs_by_model_data_and_seed():
    import pandas as pd

    from lowres import anchors

    def run(method, rank, seed, quality):
        return {"run_id": f"seq2seq-{method}{seed}", "status": "ok", "params.model": "google/flan-t5-small",
                "params.dataset": "squad", "params.method": method, "params.lora_rank": rank, "params.seed": seed,
                "summary.quality": quality, "summary.quality_metric": "f1", "summary.model": "google/flan-t5-small",
                "summary.comparable": True, "summary.hardware": "test", "summary.memory_kind": "gpu-allocator",
                "summary.energy_source": "nvml-energy-counter"}

    frame = pd.DataFrame([run("full", None, 0, 0.80), run("lora", 8, 0, 0.79), run("full", None, 1, 0.82),
                          run("lora", 8, 1, 0.805)])
    anchor = next(a for a in anchors.ANCHORS if a.key == "design_lora_gap_generative")
    assessment = anchors.assess(anchor, {"seq2seq": frame})
    assert assessment.ours.value == pytest.approx(-1.25) and assessment.verdict == anchors.REPRODUCED
    assert "flan-t5-small" in assessment.stand_in
    tiny = frame.assign(**{"params.model": "tiny-t5", "summary.model": "tiny-t5"})
    assert anchors.assess(anchor, {"seq2seq": tiny}).verdict == anchors.NOT_COMPARABLE
