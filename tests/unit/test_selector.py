"""lowres.selector: the worked examples, each rule, conflict resolution, rendering, bad input, the CLI."""
import json

import pytest

from lowres import cli, latency, memory, selector
from lowres.selector import SelectorError, recommend

EX1 = dict(task="classification", hardware="gpu", memory_gb=4, latency_ms=200, dataset_size=10_000)
EX2 = dict(task="qa", hardware="cpu", memory_gb=16, latency_ms=400)
EX3 = dict(task="summarization", hardware="gpu", memory_gb=24, latency_ms=100, dataset_size=100_000)


def reasons(rec) -> str:
    return "\n".join(rec.reasons)


# ------------------------------------------------------------------ the design's worked examples
def test_example_1_lora_distilbert_fp16_batch_fits_4gb():
    rec = recommend(**EX1)
    assert (rec.strategy, rec.models, rec.precision) == ("lora", {"model": "distilbert-base-uncased"}, "fp16")
    assert rec.batch_size >= 1 and rec.estimated_memory_gb <= 4 * 0.9
    est = memory.estimate("distilbert-base-uncased", "lora", "fp16", rec.batch_size * 2, 128)
    assert not est.fits(4)  # the auto batch size is the largest power of two that fits
    text = reasons(rec)
    assert "LoRA + FP16 fits 4 GB" in text and "better accuracy than prompting" in text and "10,000" in text
    assert rec.basis.startswith("rules only")


def test_example_2_rag_minilm_flan_t5_small_cpu_int8():
    rec = recommend(**EX2)
    assert rec.strategy == "rag"
    assert rec.models == {"embedder": "sentence-transformers/all-MiniLM-L6-v2", "generator": "google/flan-t5-small"}
    assert rec.precision == "int8" and "dynamic INT8" in rec.quantization and "CPU" in rec.quantization
    text = reasons(rec)
    assert "CPU cannot fine-tune efficiently" in text and "factual answers" in text


def test_example_3_lora_flan_t5_base_fp16_with_data_parallelism_hint():
    rec = recommend(**EX3)
    assert (rec.strategy, rec.models, rec.precision) == ("lora", {"model": "google/flan-t5-base"}, "fp16")
    assert "DDP data parallelism if more than one GPU" in rec.parallelism
    assert "over 50k examples" in reasons(rec) and "latency-critical" in reasons(rec)
    multi = recommend(**EX3, gpus=4)
    assert "DDP data parallelism across 4 GPUs" in multi.parallelism and str(multi.batch_size * 4) in multi.parallelism


def test_examples_table_marks_all_three_as_matching():
    table = selector.examples_table()
    assert list(table["matches"]) == [True, True, True]


# ------------------------------------------------------------------ one test per rule
def facts(**overrides):
    base = dict(task="classification", hardware="gpu", memory_gb=12, gpus=1, latency_ms=200, dataset_size=10_000,
                accuracy_priority=False)
    base.update(overrides)
    return selector.make_facts(**base)


@pytest.mark.parametrize("rule_id,overrides,expected", [
    ("no_training_data", dict(dataset_size=None), {"prompting", "rag"}),
    ("cpu_small_data", dict(hardware="cpu", gpus=None, dataset_size=2_000), {"prompting", "rag"}),
    ("small_gpu", dict(memory_gb=6), {"lora"}),
    ("accuracy_first", dict(memory_gb=40, accuracy_priority=True), {"full_ft"}),
    ("large_dataset", dict(dataset_size=60_000), {"lora"}),
    ("knowledge_heavy", dict(task="chatbot", dataset_size=None), {"rag"}),
    ("low_latency", dict(latency_ms=50, dataset_size=None), {"prompting"}),
    ("enough_labels", dict(), {"lora", "full_ft"}),
])
def test_each_strategy_rule_fires_and_narrows(rule_id, overrides, expected):
    candidates, why, _ = selector.strategy_candidates(facts(**overrides))
    assert any(line.startswith(rule_id + ":") for line in why)
    assert set(candidates) == expected


def test_conflicting_rule_is_overruled_by_higher_priority_and_reported():
    rec = recommend(task="qa", hardware="gpu", memory_gb=4, latency_ms=200, dataset_size=10_000)
    assert rec.strategy == "lora"  # small_gpu outranks knowledge_heavy
    assert any(note.startswith("knowledge_heavy") and "overruled by small_gpu" in note for note in rec.overruled)
    acc = recommend(task="classification", hardware="gpu", memory_gb=40, latency_ms=200, dataset_size=100_000,
                    accuracy_priority=True)
    assert acc.strategy == "full_ft" and acc.models == {"model": "bert-large-uncased"} and acc.precision == "fp32"
    assert any(note.startswith("large_dataset") for note in acc.overruled)


@pytest.mark.parametrize("overrides,size_model", [
    (dict(hardware="cpu", gpus=None, memory_gb=64), "distilbert-base-uncased"),
    (dict(memory_gb=6), "distilbert-base-uncased"),
    (dict(memory_gb=12), "bert-base-uncased"),
    (dict(memory_gb=24), "bert-base-uncased"),
    (dict(memory_gb=40, dataset_size=100_000, accuracy_priority=True), "bert-large-uncased"),
])
def test_size_rules(overrides, size_model):
    args = dict(task="classification", hardware="gpu", memory_gb=12, latency_ms=200, dataset_size=10_000)
    args.update(overrides)
    assert recommend(**args).models["model"] == size_model


@pytest.mark.parametrize("overrides,precision", [
    (dict(hardware="cpu", memory_gb=16, dataset_size=None), "int8"),          # CPU inference: dynamic int8
    (dict(hardware="cpu", memory_gb=16, dataset_size=20_000), "fp32"),        # CPU training
    (dict(memory_gb=6), "fp16"),                                              # <8 GB: FP16 when it fits
    (dict(memory_gb=12), "fp16"),                                             # 8-16 GB
    (dict(memory_gb=24, latency_ms=80), "fp16"),                              # >16 GB, latency-critical
    (dict(memory_gb=24), "fp32"),                                             # >16 GB
])
def test_precision_rules(overrides, precision):
    args = dict(task="classification", hardware="gpu", memory_gb=12, latency_ms=200, dataset_size=10_000)
    args.update(overrides)
    assert recommend(**args).precision == precision


def test_fast_prompting_uses_a_small_model():
    rec = recommend(task="classification", hardware="gpu", memory_gb=24, latency_ms=50)
    assert rec.strategy == "prompting" and rec.models == {"generator": "google/flan-t5-small"}


# ------------------------------------------------------------------ conflict resolution by the estimator
def test_int8_when_fp16_does_not_fit_and_the_reason_says_so():
    fp16 = memory.estimate("distilbert-base-uncased", "lora", "fp16", 1, 128).required_gb
    int8 = memory.estimate("distilbert-base-uncased", "lora", "int8", 1, 128).required_gb
    budget = (fp16 + int8) / 2 / (1 - memory.SAFETY_MARGIN)
    rec = recommend(task="classification", hardware="gpu", memory_gb=budget, latency_ms=200, dataset_size=10_000)
    assert rec.strategy == "lora" and rec.precision == "int8" and rec.quantization.startswith("bitsandbytes")
    assert "FP16 does not fit" in reasons(rec)


def test_highest_allowed_precision_that_fits_wins_over_the_int8_band():
    rec = recommend(**EX1)
    assert "INT8 is not needed" in reasons(rec)


def test_full_ft_drops_out_when_only_lora_fits():
    rec = recommend(task="classification", hardware="gpu", memory_gb=8.5, latency_ms=200, dataset_size=10_000)
    assert rec.strategy == "lora"
    text = " ".join(rec.alternatives)
    assert "full fine-tuning" in text  # listed as an alternative (fits smaller or not at all), with its reason


def test_falls_back_to_what_fits_when_the_rules_choice_does_not():
    rec = recommend(task="classification", hardware="cpu", memory_gb=1.3, latency_ms=300, dataset_size=20_000)
    assert rec.strategy in ("prompting", "rag") and "fell back" in reasons(rec)


def test_nothing_fits_is_a_clear_error():
    with pytest.raises(SelectorError, match="nothing fits 0.2 GB"):
        recommend(task="classification", hardware="gpu", memory_gb=0.2, latency_ms=200, dataset_size=1_000)


# ------------------------------------------------------------------ rendering
def test_to_dict_str_and_html_are_derived_from_the_fields():
    rec = recommend(**EX1)
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["strategy"] == "lora" and data["precision"] == "fp16" and data["batch_size"] == rec.batch_size
    text = str(rec)
    assert "Strategy: LoRA fine-tuning" in text and "Precision: FP16" in text and "Reasons:" in text
    page = rec._repr_html_()
    assert page.startswith("<table class='lowres-plan'>") and "LoRA fine-tuning" in page and "<li>" in page


def test_html_escapes_values():
    rec = recommend(**EX1)
    rec.reasons = ["<script>x</script>"]
    assert "<script>" not in rec._repr_html_()


def test_rules_table_lists_every_rule():
    table = selector.rules_table()
    assert len(table) == len(selector.STRATEGY_RULES) + len(selector.SIZE_RULES) + len(selector.PRECISION_RULES)
    assert {"step", "priority", "rule", "when", "then", "reason"} <= set(table.columns)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("overrides,match", [
    (dict(task="translation"), "unknown task 'translation'.*valid: classification, qa, summarization, chatbot"),
    (dict(task="QA"), "unknown task 'QA' \\(did you mean 'qa'\\?\\); valid:"),
    (dict(memory_gb=float("inf")), "memory_gb must be a finite number of GB, got inf"),
    (dict(hardware="tpu"), "unknown hardware 'tpu'.*valid: cpu, gpu"),
    (dict(memory_gb=0), "memory_gb must be > 0 GB, got 0"),
    (dict(memory_gb=-4), "memory_gb must be > 0 GB, got -4"),
    (dict(memory_gb="lots"), "memory_gb must be a number of GB, got 'lots'"),
    (dict(memory_gb=True), "memory_gb must be a number"),
    (dict(latency_ms=0), "latency_ms must be >= 0.1 ms, got 0"),
    (dict(latency_ms=-1), "latency_ms must be >= 0.1 ms"),
    (dict(latency_ms=1e-9), "latency_ms must be >= 0.1 ms"),
    (dict(latency_ms=1e9), "latency_ms must be at most 3,600,000 ms"),
    (dict(gpus=1_000_000), "gpus must be at most 1,024"),
    (dict(memory_gb=1e6), "memory_gb must be at most 16,384 GB"),
    (dict(hardware="cpu", gpus=2), "gpus=2 with hardware 'cpu'.*valid hardware: cpu, gpu"),
    (dict(gpus=0), "gpus must be >= 1"),
    (dict(dataset_size=-5), "dataset_size must be >= 0 examples, got -5"),
    (dict(dataset_size=2.5), "dataset_size must be a whole number"),
    (dict(accuracy_priority="yes"), "accuracy_priority must be true or false"),
    (dict(train_hours=0), "train_hours must be > 0 hours per training epoch, got 0"),
    (dict(train_hours=-2), "train_hours must be > 0 hours per training epoch, got -2"),
    (dict(train_hours=float("nan")), "train_hours must be a finite number of hours"),
    (dict(train_hours=1e9), "train_hours must be at most 100,000 hours"),
    (dict(train_hours="soon"), "train_hours must be a number of hours per training epoch, got 'soon'"),
])
def test_bad_input_names_the_value_and_the_valid_choices(overrides, match):
    args = dict(EX1)
    args.update(overrides)
    with pytest.raises(SelectorError, match=match):
        recommend(**args)


def test_hardware_other_than_this_machine_needs_memory(monkeypatch):
    monkeypatch.setattr(selector, "detect", lambda: {"hardware": "cpu", "memory_gb": 16.0, "gpus": 0})
    with pytest.raises(SelectorError, match="memory_gb is required for hardware 'gpu'"):
        recommend(task="qa", hardware="gpu", latency_ms=200)
    assert recommend(task="qa", latency_ms=400).inputs["memory_gb"] == 16.0  # detected


# ------------------------------------------------------------------ CLI
def test_cli_text(capsys):
    rc = cli.main(["recommend", "--task", "qa", "--hardware", "cpu", "--memory-gb", "16", "--latency-ms", "400",
                   "--rules-only"])
    out = capsys.readouterr().out
    assert rc == 0 and "Strategy: RAG" in out and "google/flan-t5-small" in out and "Precision: INT8" in out


def test_cli_json(capsys):
    rc = cli.main(["recommend", "--task", "classification", "--hardware", "gpu", "--memory-gb", "4",
                   "--latency-ms", "200", "--dataset-size", "10000", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["strategy"] == "lora" and data["models"]["model"] == "distilbert-base-uncased"
    assert data["precision"] == "fp16" and isinstance(data["batch_size"], int)


@pytest.mark.parametrize("args,message", [
    (["--task", "poetry", "--hardware", "gpu", "--memory-gb", "4", "--latency-ms", "1"], "unknown task 'poetry'"),
    (["--task", "qa", "--hardware", "fpga", "--memory-gb", "4", "--latency-ms", "1"], "valid: cpu, gpu"),
    (["--task", "qa", "--hardware", "gpu", "--memory-gb", "-2", "--latency-ms", "1"], "memory_gb must be > 0"),
    (["--task", "qa", "--hardware", "gpu", "--memory-gb", "4", "--latency-ms", "0"], "latency_ms must be >= 0.1"),
    (["--task", "qa", "--hardware", "cpu", "--memory-gb", "4", "--latency-ms", "9", "--gpus", "2"], "gpus=2"),
    (["--task", "qa", "--hardware", "cpu", "--memory-gb", "4", "--latency-ms", "9", "--outputs", "/no/such/dir"],
     "outputs '/no/such/dir' is not a folder"),
    (["--task", "qa", "--hardware", "gpu", "--memory-gb", "nan", "--latency-ms", "9"], "must be a finite number"),
])
def test_cli_bad_input_exits_2_with_a_message_and_no_traceback(capsys, args, message):
    rc = cli.main(["recommend", *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and err.startswith("lowres recommend: error:")


@pytest.mark.parametrize("flag,value", [("--memory-gb", "sixteen"), ("--latency-ms", "fast"), ("--gpus", "two"),
                                        ("--dataset-size", "1e3x"), ("--train-hours", "two")])
def test_cli_non_numeric_values_are_refused_by_argparse(capsys, flag, value):
    args = {"--task": "qa", "--hardware": "gpu", "--memory-gb": "4", "--latency-ms": "100"}
    args[flag] = value
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["recommend", *[x for pair in args.items() for x in pair]])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"got {value!r}" in err and "Traceback" not in err


def test_cli_calibrates_on_this_machine_and_keeps_json_clean(capsys, monkeypatch, tmp_path):
    from lowres import env
    from lowres.results import RunResult, save_result

    monkeypatch.setattr(selector, "detect", lambda: {"hardware": "gpu", "memory_gb": 12.0, "gpus": 1})
    monkeypatch.setattr(env, "fingerprint", lambda: {"fingerprint": "fp-this-machine"})
    out = tmp_path / "outputs"
    run = RunResult(study="lora", run_id="lora-aaaaaaaaaa", status="ok",
                    params={"model": "distilbert-base-uncased", "dataset": "sst2", "method": "lora"},
                    env={"fingerprint": "fp-this-machine"}, metrics={"accuracy": 0.91})
    save_result(run, out / "lora" / run.run_id)
    (out / "lora" / "lora-broken").mkdir()
    (out / "lora" / "lora-broken" / "result.json").write_text("{not json")  # warned about, on stderr
    rc = cli.main(["recommend", "--task", "classification", "--memory-gb", "12", "--latency-ms", "200",
                   "--dataset-size", "10000", "--outputs", str(out), "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert rc == 0 and data["basis"].startswith("measured") and "fp-this-machine" in data["basis"]
    assert data["evidence"][0]["run_id"] == "lora-aaaaaaaaaa" and "lora-aaaaaaaaaa" in data["reasons"][-1]
    assert all(e["run_id"] != "lora-broken" for e in data["evidence"])  # listed as invalid, never evidence
    rc = cli.main(["recommend", "--task", "classification", "--memory-gb", "12", "--latency-ms", "200",
                   "--dataset-size", "10000", "--outputs", str(out), "--rules-only"])
    assert rc == 0 and "Basis: rules only" in capsys.readouterr().out


def test_a_latency_budget_the_estimate_cannot_meet_changes_the_plan_and_says_why():
    roomy = selector.recommend("classification", "gpu", 12, 200, 10_000)
    assert roomy.models == {"model": "bert-base-uncased"} and roomy.estimated_latency_ms < 200
    tight = selector.recommend("classification", "gpu", 12, 1.2, 10_000)
    assert tight.models == {"model": "distilbert-base-uncased"} and tight.estimated_latency_ms <= 1.2
    assert any("medium models (model bert-base-uncased): estimated" in r and "x the 1.2 ms budget" in r
               for r in tight.reasons)
    with pytest.raises(selector.SelectorError, match=r"nothing fits 12 GB within 0.5 ms per request .*misses the "
                                                     r"time budget: .* ms per request"):
        selector.recommend("classification", "gpu", 12, 0.5, 10_000)


def test_generation_budgets_are_the_time_to_the_first_token_and_the_whole_answer_is_said():
    rec = selector.recommend("summarization", "gpu", 24, 100, 100_000)
    assert rec.estimated_latency_ms < 100
    assert any("to the first generated token" in r and "the whole 128-token answer" in r for r in rec.reasons)


def test_a_cpu_plan_estimates_its_training_epoch_and_a_training_time_budget_changes_the_plan():
    roomy = selector.recommend("classification", "cpu", 16, 60_000, 100_000)  # a typical laptop CPU (tabled)
    assert roomy.strategy == "lora"
    forward = latency.estimate(roomy.models["model"], "cpu", 128, 0, latency.tabled_profile("cpu")).ms
    assert roomy.estimated_epoch_s == pytest.approx(100_000 * latency.TRAIN_FORWARDS * forward / 1000, rel=1e-3)
    said = [r for r in roomy.reasons if "per training epoch on this CPU" in r]
    assert len(said) == 1 and "100,000 examples x" in said[0]
    assert roomy.estimated_epoch_s < 3600 or "probe it first" in said[0]  # hours of training are flagged
    assert "Estimated training time per epoch" in str(roomy)

    tight = selector.recommend("classification", "cpu", 16, 60_000, 100_000,
                               train_hours=roomy.estimated_epoch_s / 3600 / 2)
    assert tight.strategy not in selector.TRAINING and tight.estimated_epoch_s is None  # nothing trains: no epoch
    assert any("LoRA fine-tuning misses the time budget" in a and "per training epoch, 2.0x the" in a
               for a in tight.alternatives)
    assert tight.inputs["train_hours"] == pytest.approx(roomy.estimated_epoch_s / 7200)
    within = selector.recommend("classification", "cpu", 16, 60_000, 100_000,
                                train_hours=roomy.estimated_epoch_s / 3600 * 2)
    assert within.strategy == "lora" and any("within the" in r and "h budget" in r for r in within.reasons)


def test_no_training_time_where_it_cannot_be_estimated():
    assert selector.recommend(**EX1).estimated_epoch_s is None  # a GPU: batching changes its speed too much
    assert selector.recommend("classification", "cpu", 16, 60_000).estimated_epoch_s is None  # no dataset size
