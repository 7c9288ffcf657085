"""The published anchors: the table itself, and our figures computed from hand-made result frames."""
import math

import pandas as pd
import pytest

from lowres import anchors
from lowres.results import RunResult, result_row

CPU = "Test CPU 9000"


def row(study, params, status="ok", metrics=None, train=None, seed=0, cpu=CPU, **windows):
    """One collected row (the same flattening as lowres.results.collect)."""
    measurements = {"train": train} if train else {}
    measurements.update(windows)
    return result_row(RunResult(study=study, run_id=f"{study}-{len(str(params))}-{seed}-{status}", status=status,
                                params={"seed": seed, **params}, env={"cpu_model": cpu}, metrics=metrics or {},
                                measurements=measurements))


def frame(*rows):
    return pd.DataFrame(list(rows))


def train(wall_s, samples=100, rss=1000, cpu_energy_j=None, source="rapl"):
    return {"wall_s": wall_s, "samples": samples, "peak_cpu_rss_bytes": rss, "cpu_energy_j": cpu_energy_j,
            "sources": {"cpu_energy_j": source}}


def by_key(table):
    return table.set_index("anchor")


def test_every_anchor_is_cited_and_the_published_figures_are_the_sources():
    keys = [a.key for a in anchors.ANCHORS]
    assert len(keys) == len(set(keys))
    for anchor in anchors.ANCHORS:
        assert anchor.source in anchors.SOURCES and anchor.key in anchors.OURS
        assert anchor.their_hardware and anchor.method and anchor.claim
    published = {a.key: anchors.published_text(a) for a in anchors.ANCHORS}
    assert published["maina_speedup"] == "3.5" and published["maina_memory"] == "-20"
    assert published["maina_power"] == "-50" and published["maina_accuracy"] == "0"
    assert published["wang_distil_energy"] == "-50" and published["wang_tokens_linear"] == "linear"
    assert [published[k] for k in ("design_full_ft", "design_lora", "design_prompting", "design_rag")] == [
        "93-94", "92-93", "88-90", "91-92"]
    assert [published[k] for k in ("design_fp16_loss", "design_fp16_memory", "design_int8_loss",
                                   "design_int8_memory", "design_rag_latency")] == ["0-0.5", "30-40", "1-2", "> 50",
                                                                                    "80-120"]
    assert "arXiv:2506.08433" in anchors.SOURCES["maina2025"] and "EMNLP 2023" in anchors.SOURCES["wang2023"]


def test_without_results_every_figure_says_not_measured_and_why():
    table = anchors.anchor_table({})
    assert len(table) == len(anchors.ANCHORS) and table["ours"].isna().all() and table["ratio"].isna().all()
    assert table["note"].str.startswith("not measured: ").all()
    assert {"our hardware", "energy source", "seeds", "their hardware", "published"} <= set(table.columns)
    assert "not measured" in anchors.anchor_summary(table)


def parallelism_rows(seed=0, cpu=CPU):
    base = {"model": "m", "dataset": "d", "batch_size": 16}
    return [
        row("parallelism", {**base, "precision": "32-true", "strategy": "single"}, seed=seed, cpu=cpu,
            metrics={"val_mlm_accuracy": 0.40}, train=train(10.0, rss=1000, cpu_energy_j=100.0)),
        row("parallelism", {**base, "precision": "bf16-mixed", "strategy": "ddp"}, seed=seed, cpu=cpu,
            metrics={"val_mlm_accuracy": 0.41}, train=train(4.0, rss=800, cpu_energy_j=20.0)),
    ]


def test_maina_figures_from_matched_runs_with_hardware_source_and_seeds():
    broken = row("parallelism", {"model": "m", "dataset": "d", "batch_size": 16, "precision": "bf16-mixed",
                                 "strategy": "ddp"}, status="failed", train=train(0.001, rss=1))
    table = by_key(anchors.anchor_table({"parallelism": frame(*parallelism_rows(0), *parallelism_rows(1), broken)}))
    assert table.loc["maina_speedup", "ours"] == pytest.approx(2.5)  # 10 s -> 4 s at the same batch size
    assert table.loc["maina_speedup", "ratio"] == pytest.approx(2.5 / 3.5)
    assert table.loc["maina_memory", "ours"] == pytest.approx(-20.0)
    assert table.loc["maina_power", "ours"] == pytest.approx(-50.0)  # 10 W -> 5 W
    assert table.loc["maina_accuracy", "ours"] == pytest.approx(1.0)  # points
    assert table.loc["maina_accuracy", "ratio"] is None or math.isnan(table.loc["maina_accuracy", "ratio"])
    assert table.loc["maina_power", "energy source"] == "rapl"
    assert table.loc["maina_speedup", "energy source"] == anchors.NO_ENERGY
    assert table.loc["maina_speedup", "our hardware"] == CPU and table.loc["maina_speedup", "seeds"] == 2
    assert "bf16 stands in for AMP-FP16" in table.loc["maina_speedup", "note"]


def test_maina_prefers_the_papers_contrast_when_it_was_run():
    base = {"model": "m", "dataset": "d", "batch_size": 32}
    rows = [row("parallelism", {**base, "precision": p, "strategy": s}, train=train(wall))
            for p, s, wall in (("32-true", "dp", 8.0), ("32-true", "single", 10.0), ("16-mixed", "ddp", 2.0),
                               ("bf16-mixed", "ddp", 4.0))]
    found = anchors.ours(anchors.ANCHORS[0], {"parallelism": frame(*rows)})
    assert found.value == pytest.approx(4.0) and "16-mixed/ddp vs 32-true/dp" in found.note


def test_maina_falls_back_to_the_precision_study():
    rows = [row("precision", {"model": "m", "batch_size": 16, "precision": p}, train=train(wall))
            for p, wall in (("32-true", 9.0), ("bf16-mixed", 6.0))]
    found = anchors.ours(anchors.ANCHORS[0], {"precision": frame(*rows)})
    assert found.value == pytest.approx(1.5) and found.note.startswith("precision study")


def sst2_runs():
    return frame(
        row("lora", {"model": "minilm", "dataset": "sst2", "method": "full"}, metrics={"accuracy": 0.90}),
        row("lora", {"model": "minilm", "dataset": "sst2", "method": "lora", "lora_rank": 4},
            metrics={"accuracy": 0.86}, seed=0),
        row("lora", {"model": "minilm", "dataset": "sst2", "method": "lora", "lora_rank": 4},
            metrics={"accuracy": 0.88}, seed=1),
        row("lora", {"model": "minilm", "dataset": "sst2", "method": "lora", "lora_rank": 8},
            metrics={"accuracy": 0.85}),
        row("lora", {"model": "tiny-bert", "dataset": "synthetic-sentiment", "method": "lora", "lora_rank": 4},
            metrics={"accuracy": 0.99}))


def test_sst2_accuracy_is_the_best_configurations_seed_mean_on_real_data_only():
    table = by_key(anchors.anchor_table({"lora": sst2_runs()}))
    assert table.loc["design_full_ft", "ours"] == pytest.approx(90.0)
    assert table.loc["design_lora", "ours"] == pytest.approx(87.0)  # rank 4: mean of 86 and 88; synthetic ignored
    assert table.loc["design_lora", "seeds"] == 2 and "minilm" in table.loc["design_lora", "note"]
    assert table.loc["design_lora", "ratio"] == pytest.approx(87.0 / 92.5)
    assert table.loc["design_prompting", "note"].startswith("not measured")
    smoke_only = {"quickstart": frame(row("quickstart", {"dataset": "synthetic-sentiment"}, metrics={"accuracy": 1}))}
    assert "synthetic data" in anchors.ours(anchors.ANCHORS[6], smoke_only).note


def test_quantization_uses_the_lora_studys_own_table():
    pytest.importorskip("lowres.analysis.lora")
    inference = {"fp32": {"accuracy": 0.90, "state_dict_bytes": 100}, "int8": {"accuracy": 0.885, "state_dict_bytes": 40}}
    lora = frame(row("lora", {"model": "minilm", "dataset": "sst2", "method": "full"},
                     metrics={"accuracy": 0.9, "inference": inference}))
    table = by_key(anchors.anchor_table({"lora": lora}))
    assert table.loc["design_int8_loss", "ours"] == pytest.approx(1.5)
    assert table.loc["design_int8_memory", "ours"] == pytest.approx(60.0)
    assert table.loc["design_fp16_loss", "note"].startswith("not measured")


def test_wang_figures_use_the_distil_vs_bert_studys_own_twins_and_fits():
    pytest.importorskip("lowres.analysis.distil_vs_bert")
    rows = []
    for variant, cost in (("bert", 1.0), ("distil", 0.6)):
        for length in (32, 64, 128):
            params = {"bert_model": "b", "distil_model": "d", "variant": variant, "dataset": "sst2",
                      "padding": "max_length", "max_length": length, "batch_size": 8}
            tokens = 1000 * length
            rows.append(row("distil_vs_bert", params, metrics={"quality": 0.8, "accuracy": 0.8},
                            train={**train(tokens * cost / 1000, cpu_energy_j=0.01 * tokens * cost, source="rapl"),
                                   "tokens": tokens // 2, "padded_tokens": tokens}))
    table = by_key(anchors.anchor_table({"distil_vs_bert": frame(*rows)}))
    assert table.loc["wang_distil_energy", "ours"] == pytest.approx(-40.0)
    assert table.loc["wang_distil_energy", "energy source"] == "rapl"
    assert table.loc["wang_tokens_linear", "ours"] == pytest.approx(1.0)
    assert "across runs" in table.loc["wang_tokens_linear", "note"]


def test_rag_latency_is_the_median_end_to_end_latency():
    rag = frame(*[row("rag", {"dataset": "squad", "k": k}, metrics={"latency_p50_ms": ms, "f1": 0.6})
                  for k, ms in ((1, 50.0), (3, 90.0), (5, 130.0))])
    table = by_key(anchors.anchor_table({"rag": rag}))
    assert table.loc["design_rag_latency", "ours"] == pytest.approx(90.0)
    assert table.loc["design_rag", "note"].startswith("not measured")  # RAG answers questions (F1), not SST-2


def test_a_computation_that_fails_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(anchors.OURS, "maina_speedup", lambda frames: 1 / 0)
    table = by_key(anchors.anchor_table({}))
    assert "could not compute (ZeroDivisionError" in table.loc["maina_speedup", "note"]


def test_summary_rounds_to_two_decimals():
    table = anchors.anchor_table({"parallelism": frame(*parallelism_rows())})
    lines = anchors.anchor_summary(table).splitlines()
    speed = next(line for line in lines if line.startswith("maina_speedup")).split()
    assert speed == ["maina_speedup", "3.5", "2.50", "0.71", "1"]
    assert next(line for line in lines if line.startswith("design_rag ")).split()[-2:] == ["-", "0"]
