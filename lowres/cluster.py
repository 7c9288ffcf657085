"""Grids on a cluster: one SLURM array task per grid point, through submitit.

`lowres run STUDY --executor slurm` submits the grid's pending points as a job array; each task runs
`run_point` in its own process on a compute node: the same claim -> attempt -> kernel -> commit path as a
local run (lowres.runner.execute_one), writing outputs/<study>/<run_id>/ on the shared filesystem. A task the
scheduler kills (out of memory, time limit, node failure) cannot record itself: `reconcile` does, from the
job's state, when `lowres status` or a later `lowres run` looks. `--executor submitit-local` runs the same
path through submitit's local executor, one task at a time (what CI tests without a cluster).

Submissions are kept in outputs/<study>/.work/submissions.json ({run_id: {job_id, folder, executor, ...}}).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

from lowres import attempts, config, results
from lowres.config import Count, ParamsError, params_dataclass
from lowres.paths import outputs_dir, run_dir

EXECUTORS = ("local", "submitit-local", "slurm")
SUBMISSIONS = "submissions.json"
# SLURM job states -> the run status a task killed in that state gets (sacct's names; submitit reports them)
SLURM_STATUS = {"OUT_OF_MEMORY": "oom", "TIMEOUT": "timeout", "DEADLINE": "timeout", "NODE_FAIL": "failed",
                "FAILED": "failed", "CANCELLED": "failed", "PREEMPTED": "failed", "BOOT_FAIL": "failed",
                "INTERRUPTED": "failed"}
UNFINISHED = ("PENDING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED", "CONFIGURING", "COMPLETING", "UNKNOWN")


@params_dataclass
class ClusterOptions:
    """SLURM resources per array task: a `cluster:` block in params/<study>.yaml (or a profile), or options of
    `lowres run` (--partition, --gpus-per-task, ...). `sbatch`: extra options as written for sbatch."""

    partition: Optional[str] = None
    gpus_per_task: int = 0
    cpus_per_task: Count = 4
    mem_gb: float = 16.0
    time_min: Count = 60
    array_parallelism: Count = 8
    sbatch: list[str] = dataclasses.field(default_factory=list)  # e.g. ["--account=nlp", "--qos=short"]

    def __post_init__(self):
        if self.gpus_per_task < 0 or not 0 < self.mem_gb <= 16_384:
            raise ValueError(f"gpus_per_task must be >= 0 and mem_gb in (0, 16384], got {self.gpus_per_task}, "
                             f"{self.mem_gb}")
        for option in self.sbatch:
            if "=" not in option or not option.lstrip("-").split("=")[0]:
                raise ValueError(f"sbatch option {option!r} must read name=value (e.g. account=nlp)")


def cluster_options(study: str, profile: str, given: dict) -> ClusterOptions:
    """The YAML `cluster:` block, the profile's, then the command line's (None: not given)."""
    spec = config.read_study_yaml(study)
    chosen = (spec.get("profiles") or {}).get(profile) or {}
    values = {**(spec.get("cluster") or {}), **(chosen.get("cluster") or {}),
              **{k: v for k, v in given.items() if v is not None}}
    return config.build_params(ClusterOptions, values, f"{study}/{profile} cluster options")


def sbatch_parameters(options: ClusterOptions) -> dict:
    """submitit SlurmExecutor parameters for the options."""
    extra = dict(option.lstrip("-").split("=", 1) for option in options.sbatch)
    parameters = {"cpus_per_task": options.cpus_per_task, "mem": f"{options.mem_gb:g}GB", "time": options.time_min,
                  "array_parallelism": options.array_parallelism,
                  "additional_parameters": {k.replace("-", "_"): v for k, v in extra.items()}}
    if options.partition:
        parameters["partition"] = options.partition
    if options.gpus_per_task:
        parameters["gpus_per_task"] = options.gpus_per_task
    return parameters


def make_executor(kind: str, folder: Path, options: ClusterOptions, study: str):
    import shutil

    import submitit

    if kind == "slurm":
        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise ParamsError("--executor slurm needs SLURM's sbatch and srun here (run `lowres run` on the "
                              "cluster's login node); valid on this machine: local, submitit-local")
        executor = submitit.SlurmExecutor(folder=folder)
        executor.update_parameters(job_name=f"lowres-{study}", **sbatch_parameters(options))
        return executor
    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=options.time_min)
    return executor


def sbatch_script(study: str, options: ClusterOptions, tasks: int, folder: Path) -> str:
    """The sbatch script submitit would submit for a `tasks`-point array: submitit's own rendering
    (the function its SlurmExecutor writes the file with); nothing is submitted, no SLURM needed."""
    from submitit.slurm.slurm import _make_sbatch_string

    command = f"{sys.executable} -u -m submitit.core._submit {folder}"
    return _make_sbatch_string(command=command, folder=folder, job_name=f"lowres-{study}", map_count=max(tasks, 1),
                               **sbatch_parameters(options))


# ---------------------------------------------------------------------------------------------- the task
def run_point(study: str, profile: str, overrides: dict, run_id: str, timeout: int | None, kernel_name: str,
              outputs: str) -> dict:
    """One array task: the grid point `run_id`, through the local runner's own path (claim, attempt, commit)."""
    from lowres import runner

    os.environ["LOWRES_OUTPUTS"] = outputs
    runner.kernels.install_exit_handlers()
    plan = config.load_params(study, profile, overrides)
    params = dict(zip(plan.run_ids(), plan.runs))[run_id]
    return dataclasses.asdict(runner.execute_one(plan, params, timeout, kernel_name, force=True))


# ---------------------------------------------------------------------------------------------- submissions
def submissions_path(study: str) -> Path:
    return attempts.work_dir(study) / SUBMISSIONS


def read_submissions(study: str) -> dict:
    try:
        data = json.loads(submissions_path(study).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_submissions(study: str, jobs: dict, kind: str, folder: Path) -> None:
    data = read_submissions(study)
    for rid, job_id in jobs.items():
        data[rid] = {"job_id": job_id, "executor": kind, "folder": str(folder), "submitted_at": results.utc_now()}
    results.atomic_write_text(submissions_path(study), json.dumps(data, indent=2))


def job_for(entry: dict):
    import submitit

    cls = submitit.SlurmJob if entry["executor"] == "slurm" else submitit.local.local.LocalJob
    return cls(folder=entry["folder"], job_id=entry["job_id"])


def job_state(entry: dict) -> str:
    """The scheduler's state of a submitted task (sacct through submitit; UNKNOWN when it cannot tell)."""
    try:
        return str(job_for(entry).state).split()[0]
    except (OSError, ValueError, RuntimeError) as err:  # sacct missing or its output unreadable
        return f"UNKNOWN ({type(err).__name__})"


def stderr_tail(entry: dict, lines: int = 8) -> list[str]:
    try:
        return job_for(entry).stderr().strip().splitlines()[-lines:]
    except (OSError, AttributeError, TypeError):
        return []


def reconcile(study: str, plan: config.StudyPlan | None = None) -> list[str]:
    """Record as failed (oom / timeout / failed, with the scheduler's state) every submitted task that ended
    without committing a result: killed by the scheduler, its node lost, or cancelled. Returns their run ids."""
    recorded = []
    for rid, entry in read_submissions(study).items():
        folder = run_dir(study, rid)
        if results.status_of_folder(folder) is not None:
            continue
        state = job_state(entry)
        if state in UNFINISHED or state.startswith("UNKNOWN") or attempts.is_claimed(study, rid):
            continue
        status = SLURM_STATUS.get(state, "failed")
        error = {"type": "SchedulerKilledTask", "message": f"the {entry['executor']} task {entry['job_id']} ended "
                 f"in state {state} before the run saved a result", "traceback": stderr_tail(entry),
                 "job_id": entry["job_id"], "job_state": state}
        results.save_result(results.RunResult(study=study, run_id=rid, status=status, params={}, error=error,
                                              finished_at=results.utc_now()), folder)
        recorded.append(rid)
    return recorded


# ---------------------------------------------------------------------------------------------- commands
def pending(plan: config.StudyPlan, retry_failed: bool) -> list[tuple[str, object]]:
    """The grid points to (re)submit: without an ok result, or (retry_failed) only those whose run failed."""
    from lowres import runner

    found = []
    for rid, params in zip(plan.run_ids(), plan.runs):
        folder = run_dir(plan.study, rid)
        status = results.status_of_folder(folder)
        done, _ = runner.trusted_ok(folder, plan.study, rid, params, plan.measure)
        if retry_failed:
            if status in ("failed", "oom", "timeout", "invalid"):
                found.append((rid, params))
        elif not done:
            found.append((rid, params))
    return found


def submit(study: str, profile: str, overrides: dict, kind: str, options: ClusterOptions, timeout: int | None,
           retry_failed: bool = False, kernel_name: str = "lowres", wait: bool | None = None) -> list:
    """Submit the pending grid points (one task each); submitit-local waits for each in turn, slurm returns once
    the array is queued. Returns RunOutcomes (status `queued` for tasks still on the cluster)."""
    from lowres.runner import RunOutcome, check_kernel, check_resources

    plan = config.load_params(study, profile, overrides)
    check_resources(plan)
    check_kernel(kernel_name)
    reconcile(study, plan)
    todo = pending(plan, retry_failed)
    skipped = [RunOutcome(rid, "skipped", 0.0, config.to_dict(p), "already ok") for rid, p in
               zip(plan.run_ids(), plan.runs) if rid not in dict(todo)]
    if not todo:
        return skipped
    folder = attempts.work_dir(study) / "submitit"
    executor = make_executor(kind, folder, options, study)
    args = [(study, profile, overrides, rid, timeout, kernel_name, str(outputs_dir())) for rid, _ in todo]
    wait = (kind != "slurm") if wait is None else wait
    if kind == "slurm":
        jobs = executor.map_array(run_point, *zip(*args))
        record_submissions(study, {rid: job.job_id for (rid, _), job in zip(todo, jobs)}, kind, folder)
        return skipped + [RunOutcome(rid, "queued", 0.0, config.to_dict(p), f"job {job.job_id}")
                          for (rid, p), job in zip(todo, jobs)]
    return skipped + [run_locally(executor, kind, folder, task_args, params, wait) for task_args, (_, params)
                      in zip(args, todo)]


def run_locally(executor, kind: str, folder: Path, task_args: tuple, params, wait: bool):
    """submitit-local: one task at a time (concurrent runs would time each other)."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    from lowres.runner import RunOutcome

    study, rid = task_args[0], task_args[3]
    job = executor.submit(run_point, *task_args)
    record_submissions(study, {rid: job.job_id}, kind, folder)
    if not wait:
        return RunOutcome(rid, "queued", 0.0, config.to_dict(params), f"task {job.job_id}")
    t0 = time.perf_counter()
    try:
        return RunOutcome(**job.result())
    except (FailedJobError, UncompletedJobError) as err:  # the task process itself died: record why
        reconcile(study)
        status = results.status_of_folder(run_dir(study, rid)) or "failed"
        return RunOutcome(rid, status, time.perf_counter() - t0, config.to_dict(params),
                          str(err).strip().splitlines()[0][:200])


def status_table(study: str):
    """One row per submitted or finished run: its state (queued, running, done, failed, ...) and why."""
    import pandas as pd

    reconcile(study)
    submitted = read_submissions(study)
    rows = []
    for path in results.result_paths(study):
        rid = path.parent.name
        try:
            result = results.load_result(path)
            state, why = ("done" if result.status == "ok" else result.status), (result.error or {}).get("message", "")
        except results.CorruptResult as err:
            state, why = "invalid", str(err)
        rows.append({"run_id": rid, "state": state, "job": submitted.get(rid, {}).get("job_id", "-"),
                     "message": str(why).splitlines()[0][:120] if why else ""})
    done = {r["run_id"] for r in rows}
    for rid, entry in submitted.items():
        if rid in done:
            continue
        state = job_state(entry)
        running = attempts.is_claimed(study, rid) or state == "RUNNING"
        rows.append({"run_id": rid, "state": "running" if running else "queued" if state in UNFINISHED else
                     state.lower(), "job": entry["job_id"], "message": f"scheduler state {state}"})
    return pd.DataFrame(rows, columns=["run_id", "state", "job", "message"])


def print_status(study: str, out=sys.stdout) -> None:
    table = status_table(study)
    if table.empty:
        print(f"no runs of {study!r} yet; `lowres run {study}` starts them", file=out)
        return
    counts = table["state"].value_counts().to_dict()
    print(table.to_string(index=False), file=out)
    print(", ".join(f"{n} {state}" for state, n in counts.items()), file=out)


__all__ = ["EXECUTORS", "ClusterOptions", "ParamsError", "cluster_options", "print_status", "reconcile",
           "sbatch_script", "submit"]
