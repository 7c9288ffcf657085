"""The selector study through `lowres run` (one kernel run, shared), and its bad input refused before any kernel."""
import pytest

from lowres.cli import main

pytestmark = pytest.mark.notebook


def test_smoke_run_records_worked_example_1_and_the_memory_curves(smoke_study):
    run = smoke_study("selector")
    (result,) = run.assert_ok().values()
    m = result["metrics"]
    assert (m["strategy"], m["models"], m["precision"]) == ("lora", "model distilbert-base-uncased", "fp16")
    assert m["worked_examples_matching"] == 3 and m["batch_size"] >= 1
    assert 0 < m["estimated_memory_gb"] <= 4 * 0.9
    assert m["basis"] == "rules only"  # the defaults describe a 4 GB GPU, not this machine
    assert (run.outputs / "selector" / result["run_id"] / "memory_vs_batch.png").is_file()


def test_profiles_expand_and_bad_params_are_refused_before_a_kernel(capsys):
    assert main(["run", "selector", "--profile", "cpu", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("selector-") >= 4  # one plan per task
    assert main(["run", "selector", "--set", "memory_gb=-1", "--dry-run"]) == 2
    assert "memory_gb must be > 0 GB, got -1" in capsys.readouterr().err
    assert main(["run", "selector", "--set", "hardware=cpu", "--set", "memory_gb=16", "--dry-run"]) == 0
    capsys.readouterr()
    assert main(["run", "selector", "--set", "hardware=cpu", "--set", "gpus=2", "--dry-run"]) == 2
    assert "gpus=2 with hardware 'cpu'" in capsys.readouterr().err
