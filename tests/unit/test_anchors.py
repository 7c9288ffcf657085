"""The published anchors: the table, the comparability gates and verdicts, and our figures with their
intervals, computed from hand-made result rows (the same flattening as lowres.results.collect)."""
import pandas as pd
import pytest

from lowres import anchors
from lowres.results import RunResult, result_row

CPU, GPU = "Test CPU 9000", "NVIDIA H200"


def row(study, params, status="ok", metrics=None, train=None, seed=0, profile="cpu", gpu=False, **windows):
    measurements = {"train": train} if train else {}
    measurements.update(windows)
    env = {"cpu_model": CPU, "gpu_names": GPU if gpu else None}
    return result_row(RunResult(study=study, run_id=f"{study}-{abs(hash(str(params))) % 10**8}-{seed}-{status}",
                                status=status, params={"seed": seed, **params}, env=env, metrics=metrics or {},
                                measurements=measurements, profile=profile))


def frame(*rows):
    return pd.DataFrame(list(rows))


def train(wall_s, samples=100, rss=1000, cpu_energy_j=None, source="rapl", gpu_mem=None):
    window = {"wall_s": wall_s, "samples": samples, "peak_cpu_rss_bytes": rss, "cpu_energy_j": cpu_energy_j,
              "sources": {"cpu_energy_j": source}, "scope": {"cpu_energy_j": "machine"}, "parent": None,
              "top_level": True}
    if gpu_mem is not None:
        window["peak_gpu_mem_bytes"] = [gpu_mem]
    return window


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
    assert published["wang_distil_energy"] == "-50" and published["wang_length_vs_count"] == "tokens predict better (> 0)"
    assert [published[k] for k in ("design_full_ft", "design_lora", "design_prompting", "design_rag")] == [
        "93 to 94", "92 to 93", "88 to 90", "91 to 92"]
    assert published["design_int8_memory"] == "> 50" and published["design_lora_gap"] == "-2 to 0"
    assert "arXiv:2506.08433" in anchors.SOURCES["maina2025"] and "EMNLP 2023" in anchors.SOURCES["wang2023"]


def test_without_results_every_row_says_not_measured_and_why():
    table = anchors.anchor_table({})
    assert len(table) == len(anchors.ANCHORS) and table["ratio"].isna().all()
    assert (table["verdict"] == anchors.NOT_MEASURED).all() and table["why"].str.startswith("no ok run").all()
    assert set(table["verdict"]) <= set(anchors.VERDICTS)


def sst2(method, accuracy, model="distilbert-base-uncased", rank=None, seed=0, n=872, profile="gpu", **extra):
    params = {"model": model, "dataset": "sst2", "method": method, "lora_rank": rank}
    return row("lora", params, seed=seed, profile=profile, metrics={"accuracy": accuracy, **extra},
               eval={"wall_s": 1.0, "samples": n, "parent": None, "top_level": True})


def test_smoke_runs_are_not_comparable_and_never_give_a_ratio():
    smoke = frame(sst2("full", 0.99, model="tiny-bert", profile="smoke"),
                  sst2("lora", 0.98, model="tiny-bert", rank=4, profile="smoke"))
    table = by_key(anchors.anchor_table({"lora": smoke}))
    assert table.loc["design_full_ft", "verdict"] == anchors.NOT_COMPARABLE
    assert "smoke profile" in table.loc["design_full_ft", "why"] and "tiny random-init model" in table.loc[
        "design_full_ft", "why"]
    assert table["ratio"].isna().all() and (table["ours (95% interval)"] == "-").all()


def test_a_real_data_run_of_the_published_family_gets_a_figure_an_interval_a_ratio_and_a_verdict():
    runs = frame(sst2("full", 0.935), sst2("lora", 0.90, rank=8), sst2("lora", 0.92, rank=8, seed=1),
                 sst2("lora", 0.93, rank=8, seed=2))
    table = by_key(anchors.anchor_table({"lora": runs}))
    full = table.loc["design_full_ft"]
    assert full["verdict"] == anchors.REPRODUCED and full["ours"] == pytest.approx(93.5)
    assert full["ratio"] == pytest.approx(93.5 / 93.5) and "[" in full["ours (95% interval)"]  # Wilson on 872
    lora = table.loc["design_lora"]
    assert lora["seeds"] == 3 and lora["ours"] == pytest.approx(91.67, abs=0.01)  # t-interval over 3 seeds
    assert lora["verdict"] == anchors.REPRODUCED  # 91.7 [88.9, 94.5] meets 92-93
    gap = table.loc["design_lora_gap"]
    assert gap["verdict"] == anchors.REPRODUCED and gap["ours"] == pytest.approx(-3.5)  # seed 0 of rank 8 only


def test_a_figure_outside_its_interval_is_not_reproduced_and_says_so():
    table = by_key(anchors.anchor_table({"lora": frame(sst2("full", 0.80, n=5000))}))
    assert table.loc["design_full_ft", "verdict"] == anchors.NOT_REPRODUCED
    assert "lies below the published 93 to 94" in table.loc["design_full_ft", "why"]


def test_another_model_is_not_comparable_for_an_absolute_figure_but_stands_in_for_a_relative_one():
    inference = {"fp32": {"accuracy": 0.90, "state_dict_bytes": 100},
                 "int8": {"accuracy": 0.885, "state_dict_bytes": 40}}
    runs = frame(sst2("full", 0.90, model="minilm", inference=inference))
    table = by_key(anchors.anchor_table({"lora": runs}))
    assert table.loc["design_full_ft", "verdict"] == anchors.NOT_COMPARABLE
    assert "ran minilm; the published figure is for distilbert-base-uncased" in table.loc["design_full_ft", "why"]
    int8 = table.loc["design_int8_loss"]
    assert int8["ours"] == pytest.approx(1.5) and int8["verdict"] == anchors.REPRODUCED
    assert "MiniLM" in int8["stand-in"]
    assert table.loc["design_int8_memory", "ours"] == pytest.approx(60.0)
    assert table.loc["design_fp16_loss", "verdict"] == anchors.NOT_MEASURABLE  # FP16 needs CUDA


def parallelism_rows(seed=0, gpu=True, source="nvml-energy-counter"):
    base = {"model": "bert-base-uncased", "dataset": "vizwiz", "batch_size": 16}
    return [
        row("parallelism", {**base, "precision": "32-true", "strategy": "dp"}, seed=seed, gpu=gpu,
            metrics={"val_mlm_accuracy": 0.40},
            train=train(10.0, cpu_energy_j=100.0, source=source, gpu_mem=10e9 if gpu else None)),
        row("parallelism", {**base, "precision": "16-mixed", "strategy": "ddp"}, seed=seed, gpu=gpu,
            metrics={"val_mlm_accuracy": 0.401},
            train=train(4.0, cpu_energy_j=20.0, source=source, gpu_mem=8e9 if gpu else None)),
    ]


def test_maina_figures_on_gpus_with_seeds_and_on_a_cpu_not_measurable_with_the_stand_in_named():
    table = by_key(anchors.anchor_table({"parallelism": frame(*parallelism_rows(0), *parallelism_rows(1))}))
    assert table.loc["maina_speedup", "ours"] == pytest.approx(2.5)  # 10 s -> 4 s, both seeds
    assert table.loc["maina_speedup", "verdict"] == anchors.NOT_REPRODUCED  # 2.5, no spread, is not 3.5
    assert table.loc["maina_memory", "ours"] == pytest.approx(-20.0)
    assert table.loc["maina_memory", "verdict"] == anchors.REPRODUCED
    assert table.loc["maina_power", "ours"] == pytest.approx(-50.0)  # 10 W -> 5 W
    assert table.loc["maina_speedup", "our hardware"] == GPU and table.loc["maina_speedup", "seeds"] == 2
    cpu = frame(*[r for r in parallelism_rows(0, gpu=False, source="rapl")])
    cpu["params.precision"] = cpu["params.precision"].replace("16-mixed", "bf16-mixed")
    cpu["params.strategy"] = cpu["params.strategy"].replace({"dp": "single", "ddp": "single"})
    table = by_key(anchors.anchor_table({"parallelism": cpu}))
    assert table.loc["maina_speedup", "verdict"] == anchors.NOT_MEASURABLE
    assert "needs a CUDA GPU" in table.loc["maina_speedup", "why"]
    assert "our stand-in figure: 2.5" in table.loc["maina_speedup", "why"]


def wang_rows(source):
    rows = []
    for variant, cost in (("bert", 1.0), ("distil", 0.6)):
        for length in (32, 64, 128):
            params = {"bert_model": "bert-base-uncased", "distil_model": "distilbert-base-uncased",
                      "variant": variant, "dataset": "sst2", "padding": "max_length", "max_length": length,
                      "batch_size": 8}
            tokens = 1000 * length
            rows.append(row("distil_vs_bert", params, metrics={"quality": 0.8, "quality_name": "accuracy"},
                            train={**train(tokens * cost / 1000, cpu_energy_j=0.01 * tokens * cost, source=source),
                                   "tokens": tokens // 2, "padded_tokens": tokens}))
    return frame(*rows)


def test_energy_claims_need_measured_energy_and_then_are_judged():
    estimated = by_key(anchors.anchor_table({"distil_vs_bert": wang_rows("codecarbon-estimate")}))
    for key in ("wang_distil_energy", "wang_tokens_linear", "wang_length_vs_count"):
        assert estimated.loc[key, "verdict"] == anchors.NOT_MEASURABLE
        assert "TDP estimate" in estimated.loc[key, "why"]
    measured = by_key(anchors.anchor_table({"distil_vs_bert": wang_rows("rapl")}))
    assert measured.loc["wang_distil_energy", "ours"] == pytest.approx(-40.0)
    assert measured.loc["wang_distil_energy", "verdict"] == anchors.NOT_REPRODUCED
    assert measured.loc["wang_distil_energy", "energy source"] == "rapl"
    assert measured.loc["wang_tokens_linear", "ours"] == pytest.approx(1.0)
    assert measured.loc["wang_tokens_linear", "verdict"] == anchors.REPRODUCED


def test_rag_rows_say_what_this_study_cannot_show():
    rag = frame(*[row("rag", {"dataset": "squad", "k": k, "generator": "baseline-extractive"},
                      metrics={"latency_p50_ms": ms, "f1": 0.6}) for k, ms in ((1, 50.0), (3, 90.0))])
    table = by_key(anchors.anchor_table({"rag": rag}))
    assert table.loc["design_rag", "verdict"] == anchors.NOT_MEASURABLE and "SQuAD" in table.loc["design_rag", "why"]
    assert table.loc["design_rag_latency", "verdict"] == anchors.NOT_MEASURABLE
    assert "lexical baseline reader" in table.loc["design_rag_latency", "why"]


def test_a_computation_that_fails_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(anchors.OURS, "design_full_ft", lambda df: 1 / 0)
    table = by_key(anchors.anchor_table({"lora": frame(sst2("full", 0.935))}))
    assert table.loc["design_full_ft", "verdict"] == anchors.NOT_MEASURED


def test_the_summary_lists_anchor_published_figure_and_verdict():
    lines = anchors.anchor_summary(anchors.anchor_table({})).splitlines()
    assert lines[1].split()[0] == "maina_speedup" and lines[1].endswith("not measured")
