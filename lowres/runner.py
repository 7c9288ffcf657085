"""`lowres run`: one papermill execution per grid point, each in a kernel process of its own, resumable.

Kernels are forked from a warm server (lowres.warm) when two or more runs are to execute, else started fresh.

Every failure (exception, out-of-memory, dead kernel, timeout) becomes that run's result.json and the
grid goes on. Each run is claimed first (two runners never execute the same point), runs in a new attempt
folder beside the committed one and replaces it only when it finishes (`lowres.attempts`), and its kernel
never outlives the runner (`lowres.kernels`). Resume trusts a result only when it passes the schema, is
this run's, and has its executed notebook.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from lowres import attempts, config, kernels, results
from lowres.paths import run_dir

KERNEL_NAME = "lowres"
KERNEL_LOG = "kernel.log"  # the kernel's own stdout/stderr, kept beside the run's notebook


@dataclasses.dataclass
class RunOutcome:
    run_id: str
    status: str  # ok | failed | oom | timeout | skipped
    wall_s: float
    params: dict
    message: str = ""


def check_resources(plan: config.StudyPlan) -> None:
    """Every model and dataset the grid names must resolve before anything runs."""
    from lowres.data import DatasetNotAvailable, check_available
    from lowres.models import ModelNotAvailable, check_resolvable

    needed = {"models": set(), "datasets": set()}
    for params in plan.runs:
        for kind, names in params.resources().items():
            needed[kind].update(names)
    try:
        for name in sorted(needed["models"]):
            check_resolvable(name)
        for name in sorted(needed["datasets"]):
            check_available(name)
    except (ModelNotAvailable, DatasetNotAvailable) as err:
        raise config.ParamsError(str(err)) from None


def check_kernel(kernel_name: str = KERNEL_NAME) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise config.ParamsError(f"Jupyter kernel {kernel_name!r} is not installed; run `make install` (or "
                                 f"`python -m ipykernel install --sys-prefix --name {kernel_name}`)") from None


def trusted_ok(folder: Path, study: str, rid: str, params, measure=None) -> tuple[bool, str]:
    """(True, "") when `folder` holds an ok run of exactly these params with its notebook; else (False, why).
    A result is trusted only when it passes the schema, names this study and run id, records the params
    the plan asks for, and its executed notebook is beside it."""
    try:
        result = results.load_result(folder)
    except FileNotFoundError:
        return False, ""
    except results.CorruptResult as err:
        return False, f"previous result invalid ({err}); re-running"
    if result.status != "ok":
        return False, ""
    same = config.identity(result.params) == config.identity(config.to_dict(params)) and config.measure_dict(result.measure) == config.measure_dict(measure)
    if (result.study, result.run_id) != (study, rid) or not same:
        return False, "previous result names other params or another run; re-running"
    if not (folder / results.NOTEBOOK_FILE).is_file():
        return False, "previous ok result has no executed notebook; re-running"
    return True, ""


def record_failure(plan: config.StudyPlan, rid: str, params, folder: Path, status: str, error: dict,
                   started: str) -> None:
    from lowres.env import fingerprint

    result = results.RunResult(study=plan.study, run_id=rid, status=status, params=config.to_dict(params),
                               env=fingerprint(), error=error, started_at=started, finished_at=results.utc_now(),
                               profile=plan.profile, measure=config.to_dict(plan.measure))
    results.save_result(result, folder)


def execute_notebook(plan: config.StudyPlan, params, rid: str, folder: Path, timeout: int | None, kernel_name: str,
                     fork_server=None):
    """One papermill execution into `folder`; returns (status, message). The notebook is saved after every
    cell, so a timeout or a dead kernel still leaves the cells that ran."""
    import papermill as pm

    started = results.utc_now()
    watch = kernels.KernelWatch()
    injected = {**config.to_dict(params), "study": plan.study, "profile": plan.profile,
                "measure": config.to_dict(plan.measure), "run_id": rid, "output_dir": str(folder)}
    try:
        pm.execute_notebook(str(plan.notebook), str(folder / results.NOTEBOOK_FILE), parameters=injected,
                            kernel_name=kernel_name, cwd=str(plan.notebook.parent),
                            progress_bar={"desc": f"  {rid}", "leave": False, "dynamic_ncols": True},
                            execution_timeout=timeout, log_output=False, request_save_on_cell_execute=True,
                            kernel_manager_class=kernels.manager_class_for(watch, folder / KERNEL_LOG, fork_server),
                            shutdown_kernel="immediate")
        watch.reap()
        return finalize_success(plan, rid, params, folder, started)
    except Exception as exc:  # noqa: BLE001 - every failure of the notebook is recorded, the grid goes on
        watch.reap()
        status, error = kernels.classify_failure(exc, watch)
        record_failure(plan, rid, params, folder, status, error, started)
        return status, f"{error.get('type')}: {first_line(error.get('message'))}"


def execute_one(plan: config.StudyPlan, params, timeout: int | None, kernel_name: str, force: bool = False,
                fork_server=None) -> RunOutcome:
    """Claim the run, skip it when a trusted ok result exists (unless forced), else execute a new attempt
    beside the committed one and commit it when it finishes."""
    rid = config.run_id(plan.study, params, plan.measure)
    run = run_dir(plan.study, rid)
    owned = attempts.claim(plan.study, rid)
    if isinstance(owned, str):
        return RunOutcome(rid, "skipped", 0.0, config.to_dict(params), owned)
    t0 = time.perf_counter()
    try:
        attempts.recover(plan.study, rid, run)
        done, why = trusted_ok(run, plan.study, rid, params, plan.measure)
        if done and not force:
            return RunOutcome(rid, "skipped", 0.0, config.to_dict(params), "already ok (use --force)")
        attempts.discard_stale_attempts(plan.study, rid)
        attempt = attempts.new_attempt_dir(plan.study, rid)
        status, message = execute_notebook(plan, params, rid, attempt, timeout, kernel_name, fork_server)
        kept = attempts.commit(plan.study, rid, attempt, run)
        message = "; ".join(m for m in (why, message, kept) if m)
        return RunOutcome(rid, status, time.perf_counter() - t0, config.to_dict(params), message)
    finally:
        owned.release()


def first_line(text, limit: int = 160) -> str:
    line = str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def finalize_success(plan: config.StudyPlan, rid: str, params, folder: Path, started: str) -> tuple[str, str]:
    """The notebook finished: its result must exist, pass the schema and be this run's; else record why not."""
    try:
        result = results.load_result(folder)
    except (FileNotFoundError, results.CorruptResult) as err:
        error = {"type": "NoResult", "message": f"the notebook finished without saving a valid result ({err})"}
        record_failure(plan, rid, params, folder, "failed", error, started)
        return "failed", error["message"]
    return result.status, ""


FAILED_STATUSES = ("failed", "oom", "timeout", "invalid")


def run_study(study: str, profile: str = "smoke", overrides: dict | None = None, force: bool = False,
              dry_run: bool = False, timeout: int | None = None, kernel_name: str = KERNEL_NAME,
              out=sys.stdout, retry_failed: bool = False, warm: bool = True) -> list[RunOutcome]:
    """Validate everything, then execute the grid one run at a time (concurrent runs corrupt timings).
    `retry_failed`: only the points whose last attempt failed (failed, oom, timeout, invalid).
    `warm`: with two or more runs to execute, fork each run's kernel from a server that imported the training
    stack once, before the first run (lowres.warm); each run still has a process of its own."""
    from tqdm.auto import tqdm

    timeout = config.check_timeout(timeout)
    plan = config.load_params(study, profile, overrides)
    check_resources(plan)
    if dry_run:
        return [RunOutcome(rid, "planned", 0.0, config.to_dict(p)) for rid, p in zip(plan.run_ids(), plan.runs)]
    check_kernel(kernel_name)
    kernels.install_exit_handlers()
    kernels.sweep_connection_files()
    todo = [(rid, p) for rid, p in zip(plan.run_ids(), plan.runs)
            if not retry_failed or results.status_of_folder(run_dir(study, rid)) in FAILED_STATUSES]
    skipped = [RunOutcome(rid, "skipped", 0.0, config.to_dict(p), "did not fail (--retry-failed)")
               for rid, p in zip(plan.run_ids(), plan.runs) if (rid, p) not in todo]
    server = start_fork_server(study, warm and sum(not trusted_ok(run_dir(study, rid), study, rid, p,
                                                                   plan.measure)[0] or force for rid, p in todo) > 1)
    outcomes = []
    try:
        bar = tqdm(todo, desc=f"{study}/{profile}", unit="run", file=out, dynamic_ncols=True)
        for rid, params in bar:
            bar.set_postfix_str(rid)
            if server is not None and not server.alive():
                server = None  # the server died: the remaining runs start fresh kernels
            outcomes.append(execute_one(plan, params, timeout, kernel_name, force or retry_failed, server))
        bar.close()
    finally:
        if server is not None:
            server.stop()
    return skipped + outcomes


def start_fork_server(study: str, wanted: bool):
    """The warm-kernel server for this grid (None for a single run, or when it cannot start: fresh kernels)."""
    if not wanted:
        return None
    from lowres.warm import ForkServer

    try:
        return ForkServer(attempts.work_dir(study) / "warm-server.log")
    except (RuntimeError, OSError) as err:
        print(f"warm kernels unavailable ({err}); starting a fresh kernel per run", file=sys.stderr)
        return None


def summary_table(outcomes: list[RunOutcome]) -> str:
    """Run id, status, seconds and the params that vary across the grid."""
    import pandas as pd

    if not outcomes:
        return "(no runs)"
    frame = pd.DataFrame([{**o.params, "run_id": o.run_id, "status": o.status, "wall_s": round(o.wall_s, 1),
                           "message": o.message} for o in outcomes])
    varying = [c for c in frame.columns[:-4] if frame[c].astype(str).nunique() > 1]
    return frame[["run_id", *varying, "status", "wall_s", "message"]].to_string(index=False)


def failed(outcomes: list[RunOutcome]) -> list[RunOutcome]:
    return [o for o in outcomes if o.status not in ("ok", "skipped", "planned")]
