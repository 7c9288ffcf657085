"""RunResult round-trip, atomic writes, and the tidy collect() table."""
import json
import os

import pytest

from lowres import results
from lowres.results import RunResult, collect, load_result, save_result


def make(run_id="quickstart-aaa", status="ok", **kw):
    base = dict(study="quickstart", run_id=run_id, status=status, params={"model": "tiny-bert", "seed": 0},
                env={"fingerprint": "abc", "cpu_model": "cpu"}, metrics={"accuracy": 0.9},
                measurements={"train": {"wall_s": 2.0, "tokens": 100, "gpu_energy_j": [1.0, 3.0],
                                        "sources": {"gpu_energy_j": "nvml-energy-counter"}}})
    base.update(kw)
    return RunResult(**base)


def test_round_trip(tmp_path):
    original = make()
    save_result(original, tmp_path)
    assert load_result(tmp_path) == original
    assert json.loads((tmp_path / "result.json").read_text())["schema"] == results.SCHEMA


def test_bad_status_refused():
    with pytest.raises(ValueError, match="status"):
        make(status="done")


def test_failed_write_keeps_previous_result_and_leaves_no_temp(tmp_path, monkeypatch):
    save_result(make(), tmp_path)
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_result(make(status="failed"), tmp_path)
    assert load_result(tmp_path).status == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_corrupt_result_is_listed_as_invalid_not_fatal(outputs, capsys):
    good, bad = outputs / "quickstart" / "quickstart-good", outputs / "quickstart" / "quickstart-bad"
    save_result(make("quickstart-good"), good)
    bad.mkdir(parents=True)
    (bad / "result.json").write_text('{"study": "quickstart", "run_id": ')
    frame = collect("quickstart").set_index("run_id")
    assert frame.loc["quickstart-good", "status"] == "ok"
    assert frame.loc["quickstart-bad", "status"] == "invalid" and "not valid JSON" in frame.loc["quickstart-bad", "error"]
    assert [r.run_id for r in results.iter_results("quickstart")] == ["quickstart-good"]
    assert "invalid result, not used" in capsys.readouterr().err


def test_collect_flattens_params_metrics_windows_and_devices(outputs):
    save_result(make("quickstart-a"), outputs / "quickstart" / "quickstart-a")
    save_result(make("quickstart-b", status="failed", metrics={}, error={"type": "X", "message": "boom"}),
                outputs / "quickstart" / "quickstart-b")
    frame = collect("quickstart").set_index("run_id")
    assert frame.loc["quickstart-a", "params.model"] == "tiny-bert"
    assert frame.loc["quickstart-a", "metrics.accuracy"] == 0.9
    assert frame.loc["quickstart-a", "train.gpu_energy_j.sum"] == 4.0
    assert frame.loc["quickstart-a", "train.sources.gpu_energy_j"] == "nvml-energy-counter"
    assert frame.loc["quickstart-b", "error"] == "boom"
    assert frame.loc["quickstart-b", "status"] == "failed"


def test_save_table_writes_csv_and_parquet(outputs):
    import pandas as pd

    save_result(make(), outputs / "quickstart" / "quickstart-aaa")
    paths = results.save_table(collect("quickstart"), "quickstart")
    assert pd.read_parquet(paths["parquet"]).loc[0, "run_id"] == "quickstart-aaa"
    assert pd.read_csv(paths["csv"]).loc[0, "metrics.accuracy"] == 0.9
