"""The platform end to end: `lowres run quickstart` through papermill, failures, kill + resume, timeouts."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
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


def test_killed_grid_resumes_without_loss_duplication_or_corruption(outputs):
    args = [sys.executable, "-m", "lowres.cli", "run", "quickstart", "--set", "seed=[0, 1]", "--set", "epochs=1"]
    proc = subprocess.Popen(args, cwd=REPO, env=os.environ.copy(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((outputs / "quickstart").glob("*/result.json")):
        time.sleep(0.2)
    time.sleep(2)  # the second run's kernel is starting
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, mid-grid
    proc.wait()
    finished_before = {p.parent.name for p in (outputs / "quickstart").glob("*/result.json")}
    assert len(finished_before) == 1
    for path in (outputs / "quickstart").glob("*/result.json"):
        assert json.loads(path.read_text())["status"] == "ok"  # whatever exists is whole
    resumed = subprocess.run(args, cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.count("skipped") == 1
    results = [json.loads(p.read_text()) for p in (outputs / "quickstart").glob("*/result.json")]
    assert sorted(r["params"]["seed"] for r in results) == [0, 1]
    assert all(r["status"] == "ok" for r in results)
    assert not list((outputs / "quickstart").rglob("*.tmp"))


def test_timeout_is_recorded_as_timeout(run_study):
    results = run_study("quickstart", "--set", "epochs=50", "--set", "train_size=null", "--timeout", "3",
                        expect_rc=1)
    (result,) = results.values()
    assert result["status"] == "timeout" and result["error"]["message"]


@pytest.mark.parametrize("args, message", [
    (["run", "nosuch"], "unknown study 'nosuch'"),
    (["run", "quickstart", "--profile", "paper"], "unknown profile for study 'quickstart' 'paper'"),
    (["run", "quickstart", "--set", "lr"], "--set 'lr' does not parse"),
    (["run", "quickstart", "--set", "lr=fast"], "lr='fast'"),
    (["run", "quickstart", "--set", "model=bert-base-uncased"], "not in the Hugging Face cache"),
    (["run", "quickstart", "--set", "dataset=imbd"], "unknown dataset 'imbd'"),
])
def test_bad_input_is_refused_before_anything_runs(outputs, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(outputs.iterdir())


def test_missing_data_dir_is_refused(outputs, monkeypatch, capsys):
    monkeypatch.delenv("LOWRES_DATA_DIR", raising=False)
    assert main(["run", "quickstart", "--profile", "cpu"]) == 2
    assert "needs LOWRES_DATA_DIR" in capsys.readouterr().err
