"""One run summary (lowres.summary): each window's energy counted once, declared headline metrics, latency and
memory with their kinds, and the same figure for every consumer (selector, report)."""
import pytest

from lowres import report, selector, summary
from lowres.meters import Meter
from lowres.results import RunResult, collect, result_row, save_result

CC = {"cpu_energy_j": "codecarbon-estimate", "dram_energy_j": "rapl"}


def window(cpu, dram=None, parent=None, **extra):
    top = None if parent is None and extra.get("legacy") else parent is None
    extra.pop("legacy", None)
    return {"wall_s": 10.0, "cpu_energy_j": cpu, "dram_energy_j": dram, "sources": CC, "parent": parent,
            "top_level": top, "scope": {"cpu_energy_j": "machine", "dram_energy_j": "machine"}, **extra}


def fine_tuning(study="quickstart", **kw):
    """The issue's example: train 100 J (+20 J DRAM), epochs 50 J + 50 J and validation 10 J inside them."""
    measurements = {"train": window(100.0, 20.0, samples=1000, tokens=5000),
                    "train_epoch_0": window(50.0, parent="train"), "train_epoch_1": window(50.0, parent="train"),
                    "validate_epoch_0": window(10.0, parent="train_epoch_0")}
    base = dict(study=study, run_id=f"{study}-a", status="ok", params={"model": "minilm", "dataset": "sst2", "seed": 0},
                env={"fingerprint": "fp", "cpu_model": "CPU"}, metrics={"accuracy": 0.9}, measurements=measurements)
    return RunResult(**{**base, **kw})


def test_a_runs_energy_counts_each_window_once_dram_included():
    s = summary.summarize(fine_tuning())
    assert s.energy_j == pytest.approx(120.0) and s.train_energy_j == pytest.approx(120.0)
    assert s.energy_source == "codecarbon-estimate, rapl" and s.energy_scope == "machine"


def test_results_written_before_windows_knew_their_parent_are_counted_the_same():
    legacy = fine_tuning()
    for name, m in legacy.measurements.items():
        m["parent"], m["top_level"] = None, None
    assert summary.summarize(legacy).energy_j == pytest.approx(120.0)


def test_the_selector_and_the_report_read_the_same_energy(tmp_path):
    result = fine_tuning()
    save_result(result, tmp_path / "quickstart" / result.run_id)
    row = collect("quickstart", tmp_path).iloc[0]
    facts = selector.make_facts("classification", "cpu", 16.0, None, 200.0, 10_000, False)
    evidence = selector.row_evidence("quickstart", row, facts, include_smoke=True)
    point = report.strategy_points({"quickstart": collect("quickstart", tmp_path)}).iloc[0]
    assert evidence.energy_j == point["energy_j"] == pytest.approx(120.0)  # not 210 J


def test_the_meter_records_each_windows_parent():
    meter = Meter(energy="off", sample_hz=50)
    with meter.window("train"):
        with meter.window("train_epoch_0"):
            with meter.window("validate_epoch_0"):
                pass
    with meter.window("eval"):
        pass
    parents = {name: (m.parent, m.top_level) for name, m in meter.measurements.items()}
    assert parents == {"train": (None, True), "train_epoch_0": ("train", False),
                       "validate_epoch_0": ("train_epoch_0", False), "eval": (None, True)}


def test_each_study_declares_its_headline_strategy_and_latency_kind():
    lora = summary.summarize(RunResult(study="lora", run_id="lora-a", status="ok",
                                       params={"model": "minilm", "dataset": "sst2", "method": "full"},
                                       metrics={"accuracy": 0.9, "latency_ms_b1_p50": 7.0}))
    assert (lora.strategy, lora.latency_ms, lora.latency_kind) == ("full_ft", 7.0, summary.PER_REQUEST)
    twin = summary.summarize(RunResult(study="distil_vs_bert", run_id="d-a", status="ok",
                                       params={"variant": "distil", "bert_model": "b", "distil_model": "d",
                                               "dataset": "squad"},
                                       metrics={"quality": 0.7, "quality_name": "squad_f1", "f1": 0.7},
                                       measurements={"eval": {"wall_s": 2.0, "samples": 1000}}))
    assert (twin.model, twin.task, twin.quality_metric, twin.quality) == ("d", "qa", "squad_f1", 0.7)
    assert twin.latency_ms == pytest.approx(2.0) and twin.latency_kind == summary.BATCHED
    batched = summary.summarize(RunResult(study="prompting", run_id="p-a", status="ok",
                                          params={"batch_size": 16}, metrics={"accuracy": 0.8, "latency_ms": 1.5}))
    assert batched.latency_kind == summary.BATCHED and batched.strategy == "prompting"
    plan = summary.summarize(RunResult(study="selector", run_id="s-a", status="ok", params={},
                                       metrics={"strategy": "lora"}))
    assert plan.strategy is None and not plan.comparable and plan.comparability == "a plan, not a measurement"


def test_memory_kind_prefers_the_gpu_allocator_and_comparability_says_why():
    gpu = fine_tuning(measurements={"train": window(1.0, peak_gpu_mem_bytes=[2e9, 3e9], peak_cpu_rss_bytes=9e9)})
    s = summary.summarize(gpu)
    assert (s.peak_memory_bytes, s.memory_kind) == (3e9, "gpu-allocator") and s.comparable
    smoke = summary.summarize(fine_tuning(profile="smoke", params={"model": "tiny-bert", "dataset": "synthetic-kb"}))
    assert not smoke.comparable
    assert smoke.comparability == "smoke profile; tiny random-init model (tiny-bert); synthetic data (synthetic-kb)"
    failed = summary.summarize(fine_tuning(status="oom"))
    assert failed.comparability == "the run did not succeed (oom)"


def test_collect_adds_the_summary_and_profile_columns():
    row = result_row(fine_tuning(profile="cpu", measure={"country_iso_code": "ARG"}))
    assert row["profile"] == "cpu" and row["summary.energy_j"] == pytest.approx(120.0)
    assert row["measure.country_iso_code"] == "ARG" and "summary.run_id" not in row
