"""LoRA study end to end through `lowres run lora --profile smoke` (tiny-bert on synthetic sentiment: full vs LoRA
r=4 and r=16, fp32 vs int8 inference), the grid run once per session through the `smoke_study` fixture."""
import pytest

from lowres.studies.lora import analysis as lora_analysis
from lowres.results import collect

pytestmark = pytest.mark.notebook


def tiny_bert_lora_trainable(rank: int) -> int:
    """tiny-bert: 4 layers x (query + value) x r x (128 in + 128 out), plus the 2-way head (128 x 2 + 2)."""
    return 4 * 2 * rank * (128 + 128) + 128 * 2 + 2


@pytest.fixture(scope="module")
def runs(smoke_study):
    results = smoke_study("lora").assert_ok()
    return {(r["params"]["method"], r["params"]["lora_rank"]): r for r in results.values()}


def test_grid_is_full_and_two_lora_ranks_and_every_run_learns(runs):
    assert sorted(runs, key=str) == sorted([("full", None), ("lora", 4), ("lora", 16)], key=str)
    for (method, rank), r in runs.items():
        assert r["status"] == "ok" and r["params"]["model"] == "tiny-bert"
        assert r["metrics"]["accuracy"] > 0.75, (method, rank)  # synthetic sentiment is learnable; chance is 0.5
        assert 0 < r["metrics"]["f1"] <= 1


def test_lora_trainable_share_is_tiny_and_is_peft_own_count(runs):
    full = runs[("full", None)]["metrics"]
    assert full["trainable_params"] == full["total_params"] and full["trainable_pct"] == 100.0
    for rank in (4, 16):
        m = runs[("lora", rank)]["metrics"]
        assert m["params_counted_by"] == "peft.get_nb_trainable_parameters"
        assert m["trainable_params"] == m["trainable_params_torch"] == tiny_bert_lora_trainable(rank)
        assert m["trainable_pct"] == pytest.approx(100 * m["trainable_params"] / m["total_params"])
        assert m["trainable_pct"] < 1.0 and m["trainable_params"] < 0.01 * full["trainable_params"]
    assert runs[("lora", 4)]["metrics"]["trainable_params"] < runs[("lora", 16)]["metrics"]["trainable_params"]


def test_saved_models_reload_to_identical_predictions_and_adapters_are_small(runs, smoke_study):
    outputs = smoke_study("lora").outputs / "lora"
    for (method, rank), r in runs.items():
        m, folder = r["metrics"], outputs / r["run_id"]
        assert m["reload_agreement"] == 1.0, (method, rank)  # recorded by the run: reloaded vs trained predictions
        assert (folder / "checkpoint" / "config.json").is_file() and m["checkpoint_bytes"] > 0
        if method == "lora":
            assert (folder / "adapter" / "adapter_config.json").is_file()
            assert 0 < m["adapter_bytes"] < 0.05 * m["checkpoint_bytes"]
            assert m["adapter_vs_checkpoint_pct"] == pytest.approx(100 * m["adapter_bytes"] / m["checkpoint_bytes"])
        else:
            assert m["adapter_bytes"] is None and not (folder / "adapter").exists()
        # the exported fp32 model (LoRA merged into the weights) is the trained model
        assert m["inference"]["fp32"]["accuracy"] == pytest.approx(m["accuracy"], abs=0.01)


def test_int8_shrinks_the_model_names_its_backend_and_keeps_accuracy(runs):
    for key, r in runs.items():
        fp32, int8 = r["metrics"]["inference"]["fp32"], r["metrics"]["inference"]["int8"]
        assert int8["backend"].startswith("torch.ao dynamic int8 (") and int8["device"] == "cpu"
        assert int8["state_dict_bytes"] < fp32["state_dict_bytes"], key
        assert int8["accuracy"] >= fp32["accuracy"] - 0.05, key
        for record in (fp32, int8):
            assert record["latency_ms_b1_p95"] >= record["latency_ms_b1_p50"] > 0
            assert record["latency_ms_b32_p95"] >= record["latency_ms_b32_p50"] > 0
        windows = r["measurements"]
        assert windows["infer_fp32"]["samples"] == windows["infer_int8"]["samples"] == 200


def test_training_cost_is_measured_with_its_energy_source_and_tables_build(runs, smoke_study):
    for key, r in runs.items():
        train = r["measurements"]["train"]
        assert train["wall_s"] > 0 and train["samples"] == 2 * 1024 and train["peak_cpu_rss_bytes"] > 0
        assert train["sources"]["cpu_energy_j"] not in (None, "unavailable"), key
    frame = collect("lora", smoke_study("lora").outputs)
    table = lora_analysis.key_table(frame)
    assert len(table) == 3 and table["energy_source"].str.len().gt(0).all()
    assert (table["train_s"] > 0).all() and (table["s_per_epoch"] < table["train_s"]).all()
    quant = lora_analysis.quantization_table(frame)
    int8 = quant[quant["precision"] == "int8"]
    assert len(int8) == 3 and (int8["memory_saved_pct"] > 0).all()
    comparison = lora_analysis.reference_comparison(frame)
    assert {"LoRA accuracy - full (points)", "int8 model memory saved (%)"} <= set(comparison["quantity"])
    folder = smoke_study("lora").outputs / "lora" / runs[("lora", 4)]["run_id"]
    assert all((folder / name).is_file() for name in ("rank_sweep.png", "pareto.png", "reference.png"))
