"""Calibration: measured results (fabricated result.json files) on matching hardware decide among the strategies."""
import pytest

from lowres.results import RunResult, save_result
from lowres.selector import recommend

FP = "fp-test-0001"
GPU12 = dict(task="classification", hardware="gpu", memory_gb=12, latency_ms=200, dataset_size=10_000)


def fake_run(outputs, study, run_id, params, accuracy, peak_gb, fingerprint=FP, status="ok", eval_s=1.0, latency=None):
    """A result.json shaped as the study writes it (its windows, its metric names, its params)."""
    measurements = {"train": {"wall_s": 100.0, "peak_gpu_mem_bytes": [peak_gb * 1e9], "gpu_energy_j": [5e4],
                              "cpu_energy_j": 1e3},
                    "eval": {"wall_s": eval_s, "samples": 1000, "peak_gpu_mem_bytes": [peak_gb * 0.5e9]}}
    metrics = {"accuracy": accuracy} if accuracy is not None else {}
    if study == "distil_vs_bert":
        params = {"variant": "bert", "bert_model": params.pop("model", None), **params}
        metrics.update(quality=accuracy, quality_name="accuracy")
    if study == "precision":
        metrics = {"val_mlm_accuracy": accuracy} if accuracy is not None else {}
    if study == "lora":
        metrics["latency_ms_b1_p50"] = eval_s  # eval_s over 1000 examples: eval_s ms each
    if latency is not None:
        metrics["latency_ms"] = latency
        measurements["eval"].update(wall_s=latency, samples=1)
    result = RunResult(study=study, run_id=run_id, status=status, params=params, env={"fingerprint": fingerprint},
                       metrics=metrics, measurements=measurements)
    save_result(result, outputs / study / run_id)


@pytest.fixture
def measured(tmp_path):
    out = tmp_path / "outputs"
    fake_run(out, "lora", "lora-aaaaaaaaaa", {"model": "distilbert-base-uncased", "dataset": "sst2", "method": "lora"},
             0.900, 2.0)
    fake_run(out, "distil_vs_bert", "distil_vs_bert-bbbbbbbbbb", {"model": "bert-base-uncased", "dataset": "sst2"},
             0.905, 6.0)
    fake_run(out, "prompting", "prompting-cccccccccc", {"model": "google/flan-t5-base", "dataset": "sst2"}, 0.80, 1.0)
    # ignored: other hardware, a tiny smoke model, a failed run, another task
    fake_run(out, "lora", "lora-dddddddddd", {"model": "bert-base-uncased", "dataset": "sst2", "method": "lora"},
             0.99, 1.0, fingerprint="other-machine")
    fake_run(out, "lora", "lora-eeeeeeeeee", {"model": "tiny-bert", "dataset": "synthetic-sentiment"}, 0.99, 0.1)
    fake_run(out, "precision", "precision-ffffffffff", {"model": "bert-base-uncased", "dataset": "sst2"}, None, 1.0,
             status="failed")
    fake_run(out, "rag", "rag-gggggggggg", {"model": "minilm", "dataset": "squad"}, 0.99, 0.5)
    return out


def test_cheapest_strategy_within_tolerance_of_the_best_wins_and_is_cited(measured):
    rec = recommend(**GPU12, fingerprint=FP, outputs=measured)
    assert rec.strategy == "lora" and rec.basis.startswith("measured")
    decisive = rec.reasons[-1]
    assert "lora-aaaaaaaaaa" in decisive and "accuracy 0.900" in decisive and "2.00 GB" in decisive
    assert "distil_vs_bert-bbbbbbbbbb" in decisive  # the best-quality run it was compared with
    cited = {e.run_id for e in rec.evidence}
    assert cited == {"lora-aaaaaaaaaa", "distil_vs_bert-bbbbbbbbbb", "prompting-cccccccccc"}
    chosen = [e for e in rec.evidence if e.chosen]
    assert len(chosen) == 1 and chosen[0].on_front and chosen[0].latency_ms == pytest.approx(1.0)
    assert chosen[0].energy_j == pytest.approx(5e4 + 1e3)


def test_accuracy_priority_takes_the_best_measured_quality(measured):
    rec = recommend(**GPU12, accuracy_priority=True, fingerprint=FP, outputs=measured)
    assert rec.strategy == "full_ft" and "distil_vs_bert-bbbbbbbbbb" in rec.reasons[-1]


def test_clearly_better_quality_wins_without_accuracy_priority(tmp_path):
    out = tmp_path / "outputs"
    fake_run(out, "lora", "lora-aaaaaaaaaa", {"model": "distilbert-base-uncased", "dataset": "sst2"}, 0.85, 2.0)
    fake_run(out, "distil_vs_bert", "distil_vs_bert-bbbbbbbbbb", {"model": "bert-base-uncased", "dataset": "sst2"},
             0.92, 6.0)
    rec = recommend(**GPU12, fingerprint=FP, outputs=out)
    assert rec.strategy == "full_ft"


def test_runs_violating_the_constraints_do_not_count(tmp_path):
    out = tmp_path / "outputs"
    fake_run(out, "lora", "lora-aaaaaaaaaa", {"model": "distilbert-base-uncased", "dataset": "sst2"}, 0.85, 2.0)
    fake_run(out, "distil_vs_bert", "distil_vs_bert-bbbbbbbbbb", {"model": "bert-base-uncased", "dataset": "sst2"},
             0.95, 6.0, latency=500.0)  # slower than the 200 ms budget
    fake_run(out, "precision", "precision-cccccccccc", {"model": "bert-large-uncased", "dataset": "sst2"},
             0.97, 30.0)  # more memory than the 12 GB budget
    rec = recommend(**GPU12, fingerprint=FP, outputs=out)
    assert rec.strategy == "lora" and "lora-aaaaaaaaaa" in rec.reasons[-1]


def test_measurements_never_override_the_rules(measured):
    rec = recommend(task="classification", hardware="gpu", memory_gb=4, latency_ms=200, dataset_size=10_000,
                    accuracy_priority=True, fingerprint=FP, outputs=measured)
    assert rec.strategy == "lora"  # small_gpu allows only LoRA, whatever full fine-tuning scored


def test_without_fingerprint_or_matching_results_it_says_rules_only(measured):
    assert recommend(**GPU12, outputs=measured).basis.startswith("rules only: no hardware fingerprint")
    rec = recommend(**GPU12, fingerprint="unknown-machine", outputs=measured)
    assert rec.basis.startswith("rules only: no measured results") and rec.evidence == []


def test_smoke_runs_count_only_when_asked(measured):
    rec = recommend(**GPU12, fingerprint=FP, outputs=measured, include_smoke=True)
    assert "lora-eeeeeeeeee" in {e.run_id for e in rec.evidence}


def test_quality_is_compared_on_one_dataset_only(tmp_path):
    out = tmp_path / "outputs"
    fake_run(out, "lora", "lora-aaaaaaaaaa", {"model": "distilbert-base-uncased", "dataset": "sst2"}, 0.90, 2.0)
    fake_run(out, "distil_vs_bert", "distil_vs_bert-bbbbbbbbbb",
             {"bert_model": "bert-base-uncased", "distil_model": "distilbert-base-uncased", "variant": "bert",
              "dataset": "sst2"}, 0.905, 6.0)
    # an easier dataset: higher accuracy and cheaper, but not comparable with the sst2 runs
    fake_run(out, "distil_vs_bert", "distil_vs_bert-cccccccccc",
             {"bert_model": "bert-base-uncased", "distil_model": "distilbert-base-uncased", "variant": "distil",
              "dataset": "mrpc"}, 0.99, 1.0)
    rec = recommend(**GPU12, fingerprint=FP, outputs=out)
    assert rec.strategy == "lora" and "2 runs on sst2 (accuracy) compared" in rec.reasons[-1]
    by_id = {e.run_id: e for e in rec.evidence}
    assert by_id["distil_vs_bert-bbbbbbbbbb"].model == "bert-base-uncased"  # named through `variant`
    assert by_id["distil_vs_bert-cccccccccc"].model == "distilbert-base-uncased"
    assert not by_id["distil_vs_bert-cccccccccc"].on_front  # cited, but not compared


def test_synthetic_data_and_tiny_models_are_smoke_runs_whatever_the_param_names(tmp_path):
    out = tmp_path / "outputs"
    fake_run(out, "lora", "lora-aaaaaaaaaa", {"model": "distilbert-base-uncased", "dataset": "sst2"}, 0.85, 2.0)
    fake_run(out, "lora", "lora-bbbbbbbbbb", {"model": "bert-base-uncased", "dataset": "synthetic-sentiment"},
             0.99, 1.0)
    fake_run(out, "distil_vs_bert", "distil_vs_bert-cccccccccc",
             {"bert_model": "tiny-bert", "distil_model": "tiny-distilbert", "variant": "bert", "dataset": "sst2"},
             0.99, 1.0)
    rec = recommend(**GPU12, fingerprint=FP, outputs=out)
    assert {e.run_id for e in rec.evidence} == {"lora-aaaaaaaaaa"}


def test_per_request_latency_metrics_of_the_studies_are_read(tmp_path):
    out = tmp_path / "outputs"
    run = RunResult(study="lora", run_id="lora-aaaaaaaaaa", status="ok",
                    params={"model": "distilbert-base-uncased", "dataset": "sst2", "method": "lora-8bit"},
                    env={"fingerprint": FP}, metrics={"accuracy": 0.9, "latency_ms_b1_p50": 7.5})
    save_result(run, out / "lora" / run.run_id)
    (evidence,) = recommend(**GPU12, fingerprint=FP, outputs=out).evidence
    assert evidence.strategy == "lora" and evidence.latency_ms == pytest.approx(7.5)


def quality_run(out, study, run_id, params, accuracy, n, peak_gb):
    """A run whose headline quality was scored on `n` examples (its eval window's samples)."""
    fake_run(out, study, run_id, params, accuracy, peak_gb)
    path = out / study / run_id / "result.json"
    result = RunResult.from_dict(__import__("json").loads(path.read_text()))
    result.measurements["eval"]["samples"] = n
    save_result(result, out / study / run_id)


@pytest.mark.parametrize("accuracies, n, expected", [
    ((0.900, 0.905), 100_000, "full_ft"),  # half a point apart, but on 100k examples each: a real difference
    ((0.900, 0.930), 200, "lora"),  # three points apart on 200 examples: within the noise, the cheaper wins
])
def test_equally_good_is_decided_by_the_interval_of_the_difference(tmp_path, accuracies, n, expected):
    out = tmp_path / "outputs"
    quality_run(out, "lora", "lora-aaaaaaaaaa", {"model": "distilbert-base-uncased", "dataset": "sst2"},
                accuracies[0], n, 2.0)
    quality_run(out, "distil_vs_bert", "distil_vs_bert-bbbbbbbbbb", {"model": "bert-base-uncased", "dataset": "sst2"},
                accuracies[1], n, 6.0)
    rec = recommend(**GPU12, fingerprint=FP, outputs=out)
    assert rec.strategy == expected
    if expected == "lora":
        assert "95% interval" in rec.reasons[-1] and "includes 0" in rec.reasons[-1]


def test_a_cpu_run_counts_with_its_models_own_memory_not_the_process_rss(tmp_path):
    """The issue's case: a real SST-2 quickstart run on CPU (MiniLM) is evidence; its memory is the estimate for
    its configuration (the process's RSS, here 30 GB, would have excluded it from a 24 GB plan)."""
    out = tmp_path / "outputs"
    run = RunResult(study="quickstart", run_id="quickstart-aaaaaaaaaa", status="ok", profile="cpu",
                    params={"model": "minilm", "dataset": "sst2", "batch_size": 32, "max_length": 64,
                            "precision": "32-true"},
                    env={"fingerprint": FP}, metrics={"accuracy": 0.836},
                    measurements={"train": {"wall_s": 600.0, "peak_cpu_rss_bytes": 30e9},
                                  "eval": {"wall_s": 8.72, "samples": 872, "peak_cpu_rss_bytes": 30e9}})
    save_result(run, out / "quickstart" / run.run_id)
    rec = recommend(task="classification", hardware="cpu", memory_gb=24, latency_ms=60_000, dataset_size=4_000,
                    fingerprint=FP, outputs=out)  # a budget this CPU meets even when the test suite loads it
    # cpu_small_data allows prompting/RAG only: the run is counted, and the plan says why it did not decide
    assert rec.basis.startswith("rules only: the results measured for this task on this hardware cannot decide")
    assert "1 runs measured here were not used: 1 measured a strategy the plan cannot use" in rec.basis
    rec = recommend(task="classification", hardware="cpu", memory_gb=24, latency_ms=60_000, dataset_size=20_000,
                    fingerprint=FP, outputs=out)
    (evidence,) = rec.evidence
    assert rec.basis.startswith("measured: 1 runs") and evidence.quality_n == 872
    assert evidence.peak_memory_gb < 1 and evidence.memory_basis.startswith("estimated for its config: FP32, batch 32")
    assert "quickstart-aaaaaaaaaa" in rec.reasons[-1] and "the measured run used minilm" in rec.reasons[-1]
    assert "estimated for that model, not taken from the run" in rec.reasons[-1]
