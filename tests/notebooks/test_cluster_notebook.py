"""Grids through submitit (issue 16): the submitit-local executor runs the same code path as a SLURM array task
(one task per grid point, claim -> attempt -> kernel -> commit), resumes, records a failed point with its cause
and retries only it; `lowres status` says what is done and failed."""
import json

import pytest

from lowres import results

pytestmark = pytest.mark.notebook
FAST = ("--set", "epochs=1", "--set", "train_size=128", "--set", "val_size=64")


def test_submitit_local_runs_resumes_records_a_failure_and_retries_it(lowres_cli, outputs, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # resolves, then fails inside the kernel
    grid = ("run", "quickstart", "--executor", "submitit-local", *FAST, "--set", f"model=[tiny-bert, {broken}]")
    first = lowres_cli(*grid)
    assert first.returncode == 1, first.stdout + first.stderr
    done = {r.params["model"]: r for r in map(results.load_result, (outputs / "quickstart").glob("*/result.json"))}
    ok, bad = done["tiny-bert"], done[str(broken)]
    assert ok.status == "ok" and bad.status == "failed" and bad.error["type"] and bad.error["traceback"]
    submitted = json.loads((outputs / "quickstart" / ".work" / "submissions.json").read_text())
    assert set(submitted) == {ok.run_id, bad.run_id} and all(e["executor"] == "submitit-local"
                                                               for e in submitted.values())

    retry = lowres_cli(*grid, "--retry-failed")
    assert retry.returncode == 1 and "skipped" in retry.stdout  # the ok point is not run again
    again = results.load_result(outputs / "quickstart" / bad.run_id)
    assert again.status == "failed" and again.started_at >= bad.finished_at  # a new attempt of the failed one
    assert results.load_result(outputs / "quickstart" / ok.run_id).finished_at == ok.finished_at

    status = lowres_cli("status", "quickstart")
    assert status.returncode == 0 and "1 done" in status.stdout and "1 failed" in status.stdout
