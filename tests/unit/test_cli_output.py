"""What a researcher reads in a terminal: `run --help` lists studies and profiles, `collect` prints a compact
table (every column goes to CSV/parquet), `env` uses human units and names its energy source; contention is
measured per window and flagged."""
import os
import shutil
import time
from pathlib import Path

import pytest

from lowres import config, report, results
from lowres.cli import main
from lowres.meters import Meter, contention
from lowres.results import RunResult, save_result

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "report_outputs"


def test_run_help_lists_every_study_and_its_profiles(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for study in config.available_studies():
        assert f"\n  {study} " in out
        for profile in config.read_study_yaml(study)["profiles"]:
            assert f"--profile {profile}" in out
    assert max(len(line) for line in out.splitlines()) <= 120


def test_collect_prints_a_compact_table_and_saves_every_column(outputs, capsys):
    shutil.copytree(FIXTURE / "lora", outputs / "lora")
    assert main(["collect", "lora"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:2] == ["run_id", "method"] and {"status", "quality", "time_s", "energy_j", "energy_source"} <= set(header)
    assert max(len(line) for line in out.splitlines()[:-1]) < 160 and "accuracy 0.9" in out
    full = results.collect("lora")
    assert f"every column ({full.shape[1]})" in out and (outputs / "lora" / "results.parquet").is_file()


def test_env_speaks_human_units_and_names_the_energy_source(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "GiB" in out and "energy source:" in out and "load now:" in out
    assert "ram_bytes" not in out


def test_a_window_records_other_processes_load_and_warns_over_the_threshold(monkeypatch):
    meter = Meter(energy="off", sample_hz=20)
    with meter.window("quiet") as quiet:
        pass
    assert quiet.other_cpu_s is not None and quiet.other_cpu_s >= 0 and quiet.load_avg_1m is not None
    busy = iter([0.0, 1.0 + 4.0])  # the machine's busy CPU seconds at the two ends: ours 1 s, others 4 s
    own = iter([0.0, 1.0])
    monkeypatch.setattr(contention, "machine_busy_s", lambda: next(busy))
    monkeypatch.setattr(contention, "own_cpu_s", lambda process=None: next(own))
    monkeypatch.setattr(contention.os, "cpu_count", lambda: 2)
    clock = contention.CpuClock()
    figures = clock.figures(wall_s=2.0)
    assert figures["other_cpu_s"] == pytest.approx(4.0) and figures["other_cpu_cores"] == pytest.approx(2.0)
    warning = contention.contention_warning(figures["other_cpu_cores"], 2)
    assert warning.startswith("contention: other processes used 2.00 of 2 CPU cores")
    assert contention.contention_warning(0.3, 2) is None  # under a quarter of the machine


def burn_cpu(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure_beside_a_sibling(queue) -> None:
    """A forked 'rank 0': the same window counted with its own tree and with its ranks' common parent."""
    root = contention.job_root(world_size=2)
    alone, job = contention.CpuClock(), contention.CpuClock(root)
    time.sleep(1.5)  # its sibling rank burns CPU meanwhile
    queue.put((root.pid, alone.figures(1.5)["other_cpu_s"], job.figures(1.5)["other_cpu_s"]))


def test_sibling_ddp_ranks_of_the_run_are_not_other_processes():
    import multiprocessing

    context = multiprocessing.get_context("fork")  # Lightning's ddp_notebook forks its ranks the same way
    queue = context.Queue()
    # the burning rank first: real ranks open windows only after DDP's rendezvous, when every rank exists
    ranks = [context.Process(target=burn_cpu, args=(1.7,)),
             context.Process(target=measure_beside_a_sibling, args=(queue,))]
    for rank in ranks:
        rank.start()
    root_pid, other_alone, other_job = queue.get(timeout=30)
    for rank in ranks:
        rank.join()
    assert root_pid == os.getpid()  # the parent of both ranks
    assert other_alone - other_job > 0.5, (other_alone, other_job)  # the sibling's CPU: others alone, ours as a job
    assert contention.job_root(world_size=1).pid == os.getpid()


def test_a_contended_run_is_flagged_in_its_summary_and_on_the_report(outputs):
    warning = contention.contention_warning(1.5, 2)
    result = RunResult(study="quickstart", run_id="quickstart-a", status="ok", params={"model": "m"},
                       metrics={"accuracy": 0.9}, profile="cpu",
                       measurements={"train": {"wall_s": 1.0, "other_cpu_cores": 1.5, "warnings": [warning]}})
    save_result(result, outputs / "quickstart" / "quickstart-a")
    frames = report.collect_all(outputs)
    row = frames["quickstart"].iloc[0]
    assert bool(row["summary.contended"]) and row["summary.other_cpu_cores"] == 1.5
    assert "1 run(s) measured under load" in report.banner(outputs, frames)
    assert report.status_table(frames).set_index("study").loc["quickstart", "under load"] == 1
    assert "contended" in results.compact_table(frames["quickstart"]).columns
