"""The runner under a hostile user, with real kernels (issue 13): forced re-runs that fail, kills at the worst
moment, two runners on one grid, a runner killed under a subreaper, real out-of-memory and dead kernels."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import nbformat
import psutil
import pytest

from conftest import REPO
from lowres import config, kernels, results, runner

pytestmark = pytest.mark.notebook
FAST = ("--set", "epochs=1", "--set", "train_size=128", "--set", "val_size=64")


def cli(*args):
    return [sys.executable, "-m", "lowres.cli", *args]


def test_a_forced_rerun_that_times_out_keeps_the_ok_result_and_its_partial_notebook(run_study, lowres_cli, outputs):
    (ok,) = run_study("quickstart", *FAST).values()
    refused = lowres_cli("run", "quickstart", *FAST, "--force", "--timeout", "2.5")
    assert refused.returncode == 2 and results.load_result(outputs / "quickstart" / ok["run_id"]).status == "ok"
    rerun = lowres_cli("run", "quickstart", "--profile", "smoke", *FAST, "--force", "--timeout", "1")
    assert rerun.returncode == 1 and "previous ok result kept" in rerun.stdout
    run = outputs / "quickstart" / ok["run_id"]
    assert results.load_result(run).status == "timeout"
    assert results.load_result(run / "previous").to_dict() == ok  # readable, unchanged
    partial = nbformat.read(run / results.NOTEBOOK_FILE, as_version=4)
    assert any(c.get("execution_count") for c in partial.cells if c.cell_type == "code")  # where it stopped


def test_a_grid_killed_after_a_result_but_before_its_notebook_resumes_without_loss_or_duplication(outputs):
    args = cli("run", "quickstart", *FAST, "--set", "seed=[0, 1]")
    proc = subprocess.Popen(args, cwd=REPO, env=os.environ.copy(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((outputs / "quickstart" / ".work").glob("*/result.json")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the kernel saved result.json; papermill has not written the notebook
    proc.wait()
    for run in (p for p in (outputs / "quickstart").iterdir() if not p.name.startswith(".")):
        assert (run / results.NOTEBOOK_FILE).is_file()  # a committed run always has both (else nothing is)
    resumed = subprocess.run(args, cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    runs = [p for p in (outputs / "quickstart").iterdir() if not p.name.startswith(".")]
    done = [results.load_result(run) for run in runs]
    assert sorted(r.params["seed"] for r in done) == [0, 1] and all(r.status == "ok" for r in done)
    assert all((run / results.NOTEBOOK_FILE).is_file() for run in runs)
    work = outputs / "quickstart" / ".work"
    assert not list((outputs / "quickstart").rglob("*.tmp"))
    assert not [p for p in work.iterdir() if p.is_dir() or p.suffix == ".claim"]  # no attempt or claim left behind


def test_two_runners_on_one_grid_run_each_point_exactly_once(outputs):
    args = cli("run", "quickstart", *FAST, "--set", "seed=[0, 1]")
    procs = [subprocess.Popen(args, cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    done = [results.load_result(p) for p in (outputs / "quickstart").glob("*/result.json")]
    assert sorted(r.params["seed"] for r in done) == [0, 1] and all(r.status == "ok" for r in done), outs
    assert not list((outputs / "quickstart").glob("*/previous")), outs  # a second execution would have left one
    lines = [line for out in outs for line in out.splitlines() if line.startswith("quickstart-")]
    # the status column (a skipped line's message "already ok" must not count as an execution)
    statuses = [next(word for word in line.split()[1:] if word in ("ok", "skipped", "failed")) for line in lines]
    executed = [line.split()[0] for line, status in zip(lines, statuses) if status == "ok"]
    assert sorted(executed) == sorted(r.run_id for r in done), outs  # each point executed by exactly one runner


SUBREAPER = textwrap.dedent("""
    import ctypes, subprocess, sys
    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans come to this process, not to pid 1
    runner = subprocess.Popen(sys.argv[1:])
    print(runner.pid, flush=True)
    runner.wait()
    """)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers and PDEATHSIG are Linux features")
def test_a_kernel_does_not_outlive_its_runner_under_a_subreaper(outputs):
    parent = subprocess.Popen([sys.executable, "-c", SUBREAPER, *cli("run", "quickstart", "--set", "epochs=50")],
                              cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, text=True)
    runner_pid = int(parent.stdout.readline())
    kernel = None
    deadline = time.time() + 120
    while time.time() < deadline and kernel is None:
        kids = psutil.Process(runner_pid).children()
        kernel = next((k for k in kids if "ipykernel" in " ".join(k.cmdline())), None)
        time.sleep(0.2)
    assert kernel is not None
    connection = next(kernels.runtime_dir().glob(f"{kernels.CONNECTION_PREFIX}{runner_pid}-*.json"))
    os.kill(runner_pid, signal.SIGKILL)
    gone = psutil.wait_procs([kernel], timeout=10)[0]
    parent.wait(timeout=30)
    assert gone, "the kernel outlived its runner"
    # the next runner (here, or another test's runner that started first) removes the dead runner's file
    assert not connection.exists() or connection in kernels.sweep_connection_files()
    assert not connection.exists()


def one_cell_plan(tmp_path, code: str) -> config.StudyPlan:
    tmp_path.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": {"name": "lowres", "display_name": "lowres", "language": "python"}}
    notebook.cells = [nbformat.v4.new_code_cell("run_id = None\noutput_dir = None", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(code)]
    path = tmp_path / "one_cell.ipynb"
    nbformat.write(notebook, path)
    return config.StudyPlan("quickstart", "smoke", path, config.load_params("quickstart").runs)


@pytest.mark.parametrize("code, status, words", [
    ("import torch\ntorch.empty(2**50, dtype=torch.uint8)", "oom", "DefaultCPUAllocator"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "failed", "SIGKILL; memory was not short"),
])
def test_real_kernel_failures_are_classified(tmp_path, outputs, code, status, words):
    plan = one_cell_plan(tmp_path, code)
    folder = tmp_path / "attempt"
    folder.mkdir()
    got, message = runner.execute_notebook(plan, plan.runs[0], "quickstart-0000000000", folder, 120, "lowres")
    recorded = results.load_result(folder)
    assert got == status == recorded.status and words in json.dumps(recorded.error)
    assert recorded.error["kernel_peak_rss_bytes"] and (folder / results.NOTEBOOK_FILE).is_file()


def test_a_kernel_crash_in_one_warm_run_does_not_affect_the_next(tmp_path, outputs):
    from lowres.warm import ForkServer

    server = ForkServer(tmp_path / "server.log")
    try:
        crash = one_cell_plan(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        (tmp_path / "a").mkdir()
        status, message = runner.execute_notebook(crash, crash.runs[0], "quickstart-0000000000", tmp_path / "a", 120,
                                                  "lowres", server)
        assert status == "failed" and "SIGKILL" in message and server.alive()
        fine = one_cell_plan(tmp_path / "b", "import torch, os\nassert os.environ['LOWRES_KERNEL_MODE'] == 'forked'\n"
                                             "print(torch.ones(2).sum().item())")
        (tmp_path / "b" / "run").mkdir()
        status, message = runner.execute_notebook(fine, fine.runs[0], "quickstart-0000000000", tmp_path / "b" / "run",
                                                  120, "lowres", server)
        assert status == "failed" and "without saving a valid result" in message  # ran; a bare cell saves none
        executed = nbformat.read(tmp_path / "b" / "run" / results.NOTEBOOK_FILE, as_version=4)
        assert executed.cells[-1].outputs[0]["text"].strip() == "2.0"
    finally:
        server.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are a Linux feature")
def test_warm_kernels_and_their_server_do_not_outlive_the_runner(outputs):
    runner_proc = subprocess.Popen(cli("run", "quickstart", "--set", "epochs=50", "--set", "seed=[0, 1]"), cwd=REPO,
                                   env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kernel = server = None
    deadline = time.time() + 180
    while time.time() < deadline and kernel is None:
        server = next((p for p in psutil.Process(runner_proc.pid).children() if "lowres.warm" in " ".join(p.cmdline())),
                      None)
        kernel = (server.children() or [None])[0] if server else None
        time.sleep(0.2)
    assert kernel is not None, "no forked kernel appeared"
    runner_proc.kill()
    runner_proc.wait()
    gone, alive = psutil.wait_procs([server, kernel], timeout=10)
    assert not alive, f"outlived the runner: {[p.pid for p in alive]}"
