"""The platform end to end: `lowres run quickstart` through papermill, a broken run in a grid, resume, collect.
Kills, timeouts, concurrent runners and bad input: tests/notebooks/test_runner_robustness_notebook.py and
tests/unit/test_runner_safety.py."""
import json

import pytest

from lowres.cli import main

pytestmark = pytest.mark.notebook


def test_smoke_grid_learns_a_broken_run_does_not_stop_the_grid_and_reruns_skip(tmp_path, run_study, lowres_cli,
                                                                               outputs):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # resolves, then fails inside the kernel
    grid = ("--set", f"model=[tiny-bert, {broken}]")
    results = run_study("quickstart", *grid, expect_rc=1)
    by_model = {r["params"]["model"]: r for r in results.values()}
    ok, bad = by_model["tiny-bert"], by_model[str(broken)]
    assert ok["status"] == "ok" and ok["metrics"]["accuracy"] > 0.8  # synthetic sentiment is learnable
    train = ok["measurements"]["train"]
    assert train["samples"] == 2 * 1024 and train["padded_tokens"] >= train["tokens"] > 0
    assert ok["env"]["fingerprint"] and ok["params"]["seed"] == 0
    assert (outputs / "quickstart" / ok["run_id"] / "notebook.ipynb").is_file()
    assert (outputs / "quickstart" / ok["run_id"] / "throughput.png").is_file()
    assert bad["status"] == "failed" and bad["error"]["type"] and bad["error"]["traceback"]

    rerun = lowres_cli("run", "quickstart", *grid)  # the ok run is skipped, the failed one retried
    assert "skipped" in rerun.stdout and rerun.stdout.count("failed") >= 1
    collected = lowres_cli("collect", "quickstart", check=True)
    assert ok["run_id"] in collected.stdout and (outputs / "quickstart" / "results.parquet").is_file()
    env = json.loads(lowres_cli("env", "--json", check=True).stdout)
    assert env["cpu_cores_logical"] >= 1 and env["packages"]["torch"].startswith("2.13.0")


def test_missing_data_dir_is_refused(outputs, monkeypatch, capsys):
    monkeypatch.delenv("LOWRES_DATA_DIR", raising=False)
    assert main(["run", "quickstart", "--profile", "cpu"]) == 2
    assert "needs LOWRES_DATA_DIR" in capsys.readouterr().err


def test_measurement_settings_reach_the_run_and_its_carbon_figure(run_study):
    """`--set measure.country_iso_code=ARG`: the run records ARG and its CO2 is ARG's grid intensity x energy."""
    (result,) = run_study("quickstart", "--set", "epochs=1", "--set", "train_size=128", "--set", "val_size=64",
                          "--set", "measure.country_iso_code=ARG").values()
    assert result["measure"]["country_iso_code"] == "ARG" and result["profile"] == "smoke"
    carbon = result["measurements"]["train"]["codecarbon"]
    assert carbon["country_iso_code"] == "ARG"
    kg_per_kwh = carbon["co2_kg"] / (carbon["energy_j"] / 3.6e6)
    mix = grid_intensities()
    assert kg_per_kwh == pytest.approx(mix["ARG"], rel=0.01) and abs(kg_per_kwh - mix["USA"]) > 0.01


def grid_intensities() -> dict:
    """kg CO2 per kWh by country, from codecarbon's own energy-mix data (what its offline tracker uses)."""
    import importlib.util
    from pathlib import Path

    path = Path(importlib.util.find_spec("codecarbon").origin).parent / "data" / "private_infra" / "global_energy_mix.json"
    data = json.loads(path.read_text())
    return {code: data[code]["carbon_intensity"] / 1000 for code in ("ARG", "USA")}


def test_auto_batch_with_an_effective_batch_trains_with_the_fitted_batch_and_accumulation(run_study):
    """`batch_size=auto`: the notebook fits the batch (capped here by the 128 training examples), accumulates to the
    requested effective batch, records both, and the run summary's effective batch is the one trained with."""
    (result,) = run_study("quickstart", "--set", "batch_size=auto", "--set", "effective_batch_size=256",
                          "--set", "memory_budget_gb=16", "--set", "epochs=1", "--set", "train_size=128",
                          "--set", "val_size=64").values()
    fit = result["metrics"]["batch_fit"]
    assert result["status"] == "ok" and result["params"]["batch_size"] == "auto"
    assert (fit["batch_size"], fit["accumulate_grad_batches"], fit["effective_batch_size"]) == (128, 2, 256)
    assert fit["trials"][-1].startswith("batch 128: fits (measured peak") and fit["memory_kind"].startswith("process")
    assert result["measurements"]["train"]["samples"] == 128  # one epoch of 128 examples, one micro-batch each

    from lowres.results import RunResult
    from lowres.summary import summarize

    assert summarize(RunResult(**result)).effective_batch_size == 256
