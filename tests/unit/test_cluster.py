"""The cluster path without a cluster: the sbatch script submitit would submit, the options' validation, a task
the scheduler killed recorded with its cause, and claims of dead nodes going stale."""
import json
import os
import socket
import time

import pytest

from lowres import attempts, cluster, results
from lowres.cli import main
from lowres.config import ParamsError


def test_the_sbatch_script_holds_the_requested_resources(tmp_path, outputs):
    options = cluster.ClusterOptions(partition="gpu", gpus_per_task=1, cpus_per_task=8, mem_gb=32, time_min=120,
                                     array_parallelism=2, sbatch=["account=nlp", "--qos=short"])
    script = cluster.sbatch_script("quickstart", options, tasks=4, folder=tmp_path)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-task=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=32GB", "#SBATCH --time=120", "#SBATCH --array=0-3%2", "#SBATCH --account=nlp",
                 "#SBATCH --qos=short", "#SBATCH --job-name=lowres-quickstart"):
        assert line in script
    assert "submitit.core._submit" in script


def test_the_cli_renders_the_script_from_the_yaml_and_the_command_line(outputs, capsys, monkeypatch):
    assert main(["run", "quickstart", "--executor", "slurm", "--partition", "a100", "--mem-gb", "64",
                 "--set", "seed=[0,1,2]", "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --partition=a100" in script and "#SBATCH --mem=64GB" in script and "--array=0-2%3" in script


@pytest.mark.parametrize("argv, message", [
    (["--executor", "slurm"], "needs SLURM's sbatch and srun"),
    (["--executor", "slurm", "--cpus-per-task", "0", "--dry-run"], "cpus_per_task=0"),
    (["--executor", "slurm", "--sbatch", "account", "--dry-run"], "must read name=value"),
    (["--executor", "pbs"], "invalid choice: 'pbs'"),
])
def test_bad_cluster_options_are_one_line(outputs, capsys, argv, message, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # no SLURM here
    try:
        code = main(["run", "quickstart", *argv])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_a_task_the_scheduler_killed_is_recorded_with_its_cause(outputs, monkeypatch):
    cluster.record_submissions("quickstart", {"quickstart-aaaaaaaaaa": "123_0", "quickstart-bbbbbbbbbb": "123_1",
                                              "quickstart-cccccccccc": "123_2"}, "slurm", outputs / "x")
    states = {"123_0": "OUT_OF_MEMORY", "123_1": "TIMEOUT", "123_2": "RUNNING"}
    monkeypatch.setattr(cluster, "job_state", lambda entry: states[entry["job_id"]])
    monkeypatch.setattr(cluster, "stderr_tail", lambda entry: ["slurmstepd: error: Detected 1 oom_kill event"])
    assert sorted(cluster.reconcile("quickstart")) == ["quickstart-aaaaaaaaaa", "quickstart-bbbbbbbbbb"]
    oom = results.load_result(outputs / "quickstart" / "quickstart-aaaaaaaaaa")
    assert oom.status == "oom" and oom.error["job_state"] == "OUT_OF_MEMORY" and "oom_kill" in oom.error["traceback"][0]
    assert results.load_result(outputs / "quickstart" / "quickstart-bbbbbbbbbb").status == "timeout"
    table = cluster.status_table("quickstart").set_index("run_id")
    assert table.loc["quickstart-cccccccccc", "state"] == "running"
    assert table.loc["quickstart-aaaaaaaaaa", "state"] == "oom"


def test_a_claim_of_another_host_is_live_while_its_heartbeat_beats_and_stale_after(outputs):
    path = attempts.work_dir("quickstart") / "quickstart-aaaaaaaaaa.claim"
    path.write_text(json.dumps({"pid": 1, "host": "node042", "create_time": 1.0, "claimed_at": "then"}))
    assert attempts.is_claimed("quickstart", "quickstart-aaaaaaaaaa")
    old = time.time() - attempts.STALE_AFTER_S - 5
    os.utime(path, (old, old))  # the node died: nobody touches the claim any more
    assert not attempts.is_claimed("quickstart", "quickstart-aaaaaaaaaa")
    taken = attempts.claim("quickstart", "quickstart-aaaaaaaaaa")
    assert isinstance(taken, attempts.Claim) and json.loads(path.read_text())["host"] == socket.gethostname()
    taken.release()


def test_cluster_options_come_from_the_yaml_block_then_the_command_line(fake_root=None):
    with pytest.raises(ParamsError, match="mem_gb"):
        cluster.cluster_options("quickstart", "smoke", {"mem_gb": -1})
    options = cluster.cluster_options("quickstart", "smoke", {"partition": "a100", "mem_gb": None})
    assert options.partition == "a100" and options.mem_gb == cluster.ClusterOptions().mem_gb


def test_under_slurm_a_window_says_what_its_energy_covers(monkeypatch):
    from lowres.meters import Meter

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    meter = Meter(energy="off")
    with meter.window("train") as window:
        pass
    assert window.scope["scheduler"] == "slurm job 4242"
    assert any("this job's devices only (CUDA_VISIBLE_DEVICES=1)" in w for w in window.warnings)
