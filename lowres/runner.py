"""`lowres run`: one papermill execution per grid point, in a fresh `lowres` kernel, resumable.

Every failure (exception, out-of-memory, dead kernel, timeout) becomes that run's result.json and the
grid goes on; results are written atomically, so a run killed half-way leaves no half-written result.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from lowres import config, results
from lowres.paths import run_dir

KERNEL_NAME = "lowres"
OOM_NAMES = ("OutOfMemoryError", "MemoryError")


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
            needed[kind].update(n for n in names if n)
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


def already_done(folder: Path) -> bool:
    try:
        return results.load_result(folder).status == "ok"
    except (results.CorruptResult, FileNotFoundError):
        return False


def classify_failure(exc: BaseException) -> tuple[str, dict]:
    """Map what papermill/nbclient raised to (status, error dict)."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        oom = exc.ename in OOM_NAMES or "out of memory" in (exc.evalue or "").lower()
        tail = [line for line in (exc.traceback or [])][-15:]
        return ("oom" if oom else "failed"), {"type": exc.ename, "message": exc.evalue, "traceback": tail,
                                               "cell": exc.exec_count}
    if isinstance(exc, (CellTimeoutError, TimeoutError)):
        return "timeout", results.error_info(exc)
    if isinstance(exc, DeadKernelError):
        info = results.error_info(exc)
        info["message"] = f"kernel died (killed, crashed or out of host memory): {exc}"
        return "failed", info
    return "failed", results.error_info(exc)


def record_failure(study: str, rid: str, params, folder: Path, status: str, error: dict, started: str) -> None:
    from lowres.env import fingerprint

    result = results.RunResult(study=study, run_id=rid, status=status, params=config.to_dict(params),
                               env=fingerprint(), error=error, started_at=started, finished_at=results.utc_now())
    results.save_result(result, folder)


def execute_one(plan: config.StudyPlan, params, timeout: float | None, kernel_name: str) -> RunOutcome:
    import papermill as pm

    rid = config.run_id(plan.study, params)
    folder = run_dir(plan.study, rid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / results.RESULT_FILE).unlink(missing_ok=True)  # a stale failure must not outlive this attempt
    started, t0 = results.utc_now(), time.perf_counter()
    injected = {**config.to_dict(params), "run_id": rid, "output_dir": str(folder)}
    try:
        pm.execute_notebook(str(plan.notebook), str(folder / "notebook.ipynb"), parameters=injected,
                            kernel_name=kernel_name, cwd=str(plan.notebook.parent), progress_bar=False,
                            execution_timeout=timeout, log_output=False, request_save_on_cell_execute=False)
        status, message = finalize_success(plan.study, rid, params, folder, started)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the grid goes on
        status, error = classify_failure(exc)
        record_failure(plan.study, rid, params, folder, status, error, started)
        message = f"{error.get('type')}: {str(error.get('message'))[:200]}"
    return RunOutcome(rid, status, time.perf_counter() - t0, config.to_dict(params), message)


def finalize_success(study: str, rid: str, params, folder: Path, started: str) -> tuple[str, str]:
    try:
        return results.load_result(folder).status, ""
    except (FileNotFoundError, results.CorruptResult) as err:
        error = {"type": "NoResult", "message": f"the notebook finished without saving a result ({err})"}
        record_failure(study, rid, params, folder, "failed", error, started)
        return "failed", error["message"]


def run_study(study: str, profile: str = "smoke", overrides: dict | None = None, force: bool = False,
              dry_run: bool = False, timeout: float | None = None, kernel_name: str = KERNEL_NAME,
              out=sys.stdout) -> list[RunOutcome]:
    """Validate everything, then execute the grid one run at a time (concurrent runs corrupt timings)."""
    from tqdm.auto import tqdm

    plan = config.load_params(study, profile, overrides)
    check_resources(plan)
    if dry_run:
        return [RunOutcome(config.run_id(study, p), "planned", 0.0, config.to_dict(p)) for p in plan.runs]
    check_kernel(kernel_name)
    outcomes = []
    bar = tqdm(plan.runs, desc=f"{study}/{profile}", unit="run", file=out, dynamic_ncols=True)
    for params in bar:
        rid = config.run_id(study, params)
        bar.set_postfix_str(rid)
        if not force and already_done(run_dir(study, rid)):
            outcomes.append(RunOutcome(rid, "skipped", 0.0, config.to_dict(params), "already ok (use --force)"))
            continue
        outcomes.append(execute_one(plan, params, timeout, kernel_name))
    bar.close()
    return outcomes


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
