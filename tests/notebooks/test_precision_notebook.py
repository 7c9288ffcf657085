"""Precision and parallelism studies end to end: both smoke grids through `lowres run` (the session's `smoke_study`
fixture: 4 + 2 kernel runs shared with the report test), what ran, learning, DDP's processes, the analysis."""
import pytest

from lowres.studies.parallelism import analysis as parallel_analysis
from lowres.studies.precision import analysis
from lowres.cli import main
from lowres.results import collect

pytestmark = pytest.mark.notebook


def accuracies(result) -> list[float]:
    epochs = result["metrics"]["epochs"]
    return [epochs[str(i)]["val_mlm_accuracy"] for i in range(len(epochs))]


def test_precision_smoke_grid_records_what_ran_and_learns(smoke_study):
    smoke = smoke_study("precision")
    results = smoke.assert_ok()
    by_point = {(r["params"]["batch_size"], r["params"]["precision"]): r for r in results.values()}
    assert set(by_point) == {(16, "32-true"), (16, "bf16-mixed"), (32, "32-true"), (32, "bf16-mixed")}
    for (batch, precision), result in by_point.items():
        ran, plan = result["metrics"]["precision"], result["metrics"]["parallel"]
        assert ran["requested"] == ran["effective"] == precision and not ran["notes"]
        assert ran["autocast_dtype"] == ("bfloat16" if precision == "bf16-mixed" else None)
        assert result["measurements"]["train"]["precision"] == precision  # the Meter's label is what ran
        assert plan["per_rank_batch_size"] == plan["total_batch_size"] == batch and plan["processes"] == 1
        train = result["measurements"]["train"]
        assert train["samples"] == 2 * 128 and train["epochs"] == 2 and train["sources"]["cpu_energy_j"]
        losses = [result["metrics"]["epochs"][e]["val_loss"] for e in ("0", "1")]
        assert losses[1] < losses[0]  # every precision learns
    table = analysis.speedup_table(collect("precision", smoke.outputs))
    assert len(table) == 4 and set(table["baseline"]) == {"32-true single"}
    baseline_rows = table[table["precision_ran"] == "32-true"]
    assert (baseline_rows["speedup"] == 1.0).all()  # one seed: each baseline is its own reference
    assert table["speedup_ci_low"].isna().all()  # one seed: no interval is claimed
    assert "3.5x" in analysis.comparison_text(collect("precision", smoke.outputs))
    assert (smoke.outputs / "precision" / by_point[(16, "bf16-mixed")]["run_id"] / "accuracy.png").is_file()


def test_parallelism_smoke_grid_runs_ddp_on_two_processes_and_accuracy_rises(smoke_study):
    smoke = smoke_study("parallelism")
    results = smoke.assert_ok()
    by_strategy = {r["params"]["strategy"]: r for r in results.values()}
    assert set(by_strategy) == {"single", "ddp"}
    ddp, single = by_strategy["ddp"]["metrics"]["parallel"], by_strategy["single"]["metrics"]["parallel"]
    assert ddp["processes"] == 2 and ddp["lightning_strategy"] == "ddp_notebook"
    assert ddp["process_group_backend"] == "gloo" and (ddp["per_rank_batch_size"], ddp["total_batch_size"]) == (8, 16)
    assert single["processes"] == 1 and single["total_batch_size"] == 16
    ddp_train = by_strategy["ddp"]["measurements"]["train"]
    assert ddp_train["world_size"] == 2 and ddp_train["samples"] == 3 * 512  # both ranks' samples, gathered
    assert any("gathered from 2 DDP ranks" in w for w in ddp_train["warnings"])
    for result in results.values():
        scores, majority = accuracies(result), result["metrics"]["val_majority_accuracy"]
        assert len(scores) == 3
        assert scores[-1] > scores[0] + 0.02, scores  # masked-token accuracy rises over the epochs
        assert scores[-1] > majority, (scores, majority)  # beyond token frequencies: it uses context
    scaling = parallel_analysis.scaling_table(collect("parallelism", smoke.outputs))
    assert len(scaling) == 1 and scaling.loc[0, "workers"] == 2
    assert 0 < scaling.loc[0, "scaling_efficiency"] == pytest.approx(scaling.loc[0, "speedup"] / 2)


@pytest.mark.parametrize("args, message", [
    (["run", "precision", "--set", "precision=fp8"], "precision='fp8'"),
    (["run", "parallelism", "--set", "strategy=ddp", "--set", "batch_size=15"],
     "batch_size 15 (total) does not split evenly over 2 devices"),
    (["run", "parallelism", "--set", "strategy=fsdp"], "strategy='fsdp'"),
    (["run", "precision", "--set", "dataset=sst2"], "dataset='sst2'"),
])
def test_bad_input_is_refused_before_anything_runs(outputs, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(outputs.iterdir())
