"""The runner's data-loss and validation holes (issue 13), each reproduced without a kernel where possible:
bad input refused before anything starts, attempts committed atomically, claims, out-of-memory
classification, result schema, file modes, the report's --out folder."""
import json
import os
import signal
import socket
import stat
import threading

import pytest

from lowres import attempts, kernels, report, results, runner
from lowres.cli import main
from lowres.config import ParamsError, load_params
from lowres.results import RunResult, collect, load_result, save_result

LONG_NAME = "x" * 300

# (argv, a piece of the one-line message that names the bad value)
BAD_INPUTS = [
    (["run", "nosuch"], "unknown study 'nosuch'"),
    (["run", "quickstart", "--profile", "smok"], "study 'quickstart' has no profile 'smok'; did you mean 'smoke'?"),
    (["run", "quickstart", "--set", "lr"], "--set 'lr' does not parse"),
    (["run", "quickstart", "--set", "lr=fast"], "lr='fast'"),
    (["run", "quickstart", "--set", "model="], "model='': model name is empty"),
    (["run", "quickstart", "--set", "dataset="], "dataset='': unknown dataset ''"),
    (["run", "quickstart", "--set", "train_size=-5"], "train_size=-5"),
    (["run", "quickstart", "--set", "val_size=-1"], "val_size=-1"),
    (["run", "quickstart", "--set", "train_size=0"], "train_size=0"),
    (["run", "quickstart", "--set", "seed=-1"], "seed=-1"),
    (["run", "quickstart", "--set", f"seed={2**40}"], f"seed={2**40}: Input should be less than or equal to 4294967295"),
    (["run", "quickstart", "--set", f"model={LONG_NAME}"], "is not a usable name"),
    (["run", "quickstart", "--set", "model=tïny-bert"], "model 'tïny-bert' is not a usable name"),
    (["run", "quickstart", "--set", "model=a/b/c"], "model 'a/b/c' is not a usable name"),
    (["run", "quickstart", "--set", "model=./no-such-model-dir"], "'./no-such-model-dir' does not exist"),
    (["run", "quickstart", "--set", "model=~/no-such-model-dir"], "'~/no-such-model-dir' does not exist"),
    (["run", "quickstart", "--set", "model=bert-base-uncased"], "not in the Hugging Face cache"),
    (["run", "quickstart", "--set", "dataset=imbd"], "unknown dataset 'imbd' (did you mean 'imdb'?)"),
    (["run", "quickstart", "--set", "lr=.nan"], "lr=nan: Input should be a finite number"),
    (["run", "quickstart", "--set", "lr=0"], "lr=0"),
    (["run", "quickstart", "--set", "lr=1.5"], "lr=1.5"),
    (["run", "quickstart", "--set", "epochs=0"], "epochs=0"),
    (["run", "quickstart", "--set", "epochs=true"], "epochs=True"),
    (["run", "quickstart", "--set", "batch_size=-1"], "batch_size=-1"),
    (["run", "quickstart", "--set", "batch_size=2.5"], "batch_size=2.5"),
    (["run", "quickstart", "--set", "max_length=0"], "max_length=0"),
    (["run", "quickstart", "--set", "max_steps=0"], "max_steps must be -1 (no limit) or >= 1, got 0"),
    (["run", "quickstart", "--set", "precision=fp8"], "precision='fp8'"),
    (["run", "quickstart", "--set", "seed=[]"], "seeds must be a non-empty list, got []"),
    (["run", "quickstart", "--set", "nosuchkey=1"], "unknown parameter (--set) 'nosuchkey'"),
    (["run", "quickstart", "--timeout", "2.5"], "--timeout '2.5' is not allowed"),
    (["run", "quickstart", "--timeout", "nan"], "--timeout 'nan' is not allowed"),
    (["run", "quickstart", "--timeout", "inf"], "--timeout 'inf' is not allowed"),
    (["run", "quickstart", "--timeout", "0"], "--timeout '0' is not allowed"),
    (["run", "quickstart", "--timeout", "-1"], "--timeout '-1' is not allowed"),
    (["run", "quickstart", "--timeout", "soon"], "--timeout 'soon' is not allowed"),
    (["run", "quickstart", "--bogus"], "unrecognized arguments: --bogus"),
    (["run", "lora", "--set", "lora_rank=0"], "lora_rank=0"),
    (["run", "lora", "--set", "lora_dropout=1.0"], "lora_dropout=1.0"),
    (["run", "precision", "--set", "warmup_ratio=1.5"], "warmup_ratio=1.5"),
    (["run", "precision", "--set", "strategy=ddp", "--set", "processes=1"], "strategy 'ddp' needs processes >= 2"),
    (["run", "rag", "--set", "k=7"], "k=7 must be one of ks"),
    (["run", "prompting", "--set", "n_eval=0"], "n_eval=0"),
    (["run", "distil_vs_bert", "--set", "dataset=vizwiz"], "dataset 'vizwiz' is not a classification"),
    (["collect", "nosuch"], "unknown study 'nosuch'"),
    (["recommend", "--task", "qa", "--latency-ms", "1e-9"], "latency_ms must be >= 0.1 ms, got 1e-09"),
    (["recommend", "--task", "qa", "--hardware", "gpu", "--memory-gb", "8", "--latency-ms", "50", "--gpus", "1000000"],
     "gpus must be at most 1,024"),
]


def test_the_table_has_at_least_forty_bad_inputs():
    assert len(BAD_INPUTS) >= 40


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a)[:60] for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_starts_no_kernel(argv, message, outputs, capsys, monkeypatch):
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was about to start")

    monkeypatch.setattr(runner, "execute_one", no_kernel)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    assert message in lines[0] and "Traceback" not in captured.err
    assert not any(outputs.iterdir())


def test_a_relative_model_directory_is_made_absolute_before_the_kernel(tmp_path, monkeypatch):
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    (params,) = load_params("quickstart", "smoke", {"model": "my-model"}).runs
    assert params.model == str(tmp_path / "my-model") and os.path.isabs(params.model)


# ---------------------------------------------------------------------------------------------- attempts
def make(run_id="quickstart-aaa", status="ok", **kw):
    base = dict(study="quickstart", run_id=run_id, status=status, params={"seed": 0}, env={"fingerprint": "f"})
    base.update(kw)
    return RunResult(**base)


def staged(study, rid, status):
    folder = attempts.new_attempt_dir(study, rid)
    save_result(make(rid, status), folder)
    (folder / results.NOTEBOOK_FILE).write_text("{}")
    return folder


def test_a_failed_rerun_keeps_the_previous_ok_result_readable(outputs):
    run = outputs / "quickstart" / "quickstart-aaa"
    attempts.commit("quickstart", "quickstart-aaa", staged("quickstart", "quickstart-aaa", "ok"), run)
    note = attempts.commit("quickstart", "quickstart-aaa", staged("quickstart", "quickstart-aaa", "timeout"), run)
    assert load_result(run).status == "timeout" and load_result(run / "previous").status == "ok"
    assert "previous ok result kept" in note
    note = attempts.commit("quickstart", "quickstart-aaa", staged("quickstart", "quickstart-aaa", "failed"), run)
    assert load_result(run / "previous").status == "ok" and "last attempt: timeout" in note  # the ok one carries on
    assert list(collect("quickstart")["status"]) == ["failed"]  # previous/ is history, not a second run


def test_a_commit_killed_between_its_renames_is_undone_or_finished(outputs):
    run = outputs / "quickstart" / "quickstart-aaa"
    attempts.commit("quickstart", "quickstart-aaa", staged("quickstart", "quickstart-aaa", "ok"), run)
    new = staged("quickstart", "quickstart-aaa", "failed")
    os.replace(run, new.with_name(new.name + attempts.OLD_SUFFIX))  # the first rename happened, then a kill
    attempts.recover("quickstart", "quickstart-aaa", run)
    assert load_result(run).status == "ok"  # the old attempt is back
    os.replace(run, new.with_name(new.name + attempts.OLD_SUFFIX))
    os.replace(new, run)  # both renames happened, the kill came before previous/ was kept
    attempts.recover("quickstart", "quickstart-aaa", run)
    assert load_result(run).status == "failed" and load_result(run / "previous").status == "ok"


def test_an_ok_result_without_its_notebook_or_for_other_params_is_not_trusted(outputs):
    (params,) = load_params("quickstart", "smoke").runs
    from lowres.config import run_id, to_dict

    rid = run_id("quickstart", params)
    run = outputs / "quickstart" / rid
    save_result(make(rid, params=to_dict(params)), run)
    assert runner.trusted_ok(run, "quickstart", rid, params) == (False, "previous ok result has no executed "
                                                                        "notebook; re-running")
    (run / results.NOTEBOOK_FILE).write_text("{}")
    assert runner.trusted_ok(run, "quickstart", rid, params) == (True, "")
    save_result(make(rid, params={}), run)  # the keys are there, the params are not
    assert runner.trusted_ok(run, "quickstart", rid, params)[0] is False


# ---------------------------------------------------------------------------------------------- claims
def test_a_claim_is_exclusive_until_released_and_stale_once_its_owner_is_gone(outputs):
    first = attempts.claim("quickstart", "quickstart-aaa")
    assert isinstance(first, attempts.Claim)
    second = attempts.claim("quickstart", "quickstart-aaa")
    assert isinstance(second, str) and f"pid {os.getpid()}" in second
    first.release()
    again = attempts.claim("quickstart", "quickstart-aaa")
    assert isinstance(again, attempts.Claim)
    again.release()
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname(), "create_time": 1.0, "claimed_at": "then"}
    (attempts.work_dir("quickstart") / "quickstart-bbb.claim").write_text(json.dumps(dead))
    taken = attempts.claim("quickstart", "quickstart-bbb")
    assert isinstance(taken, attempts.Claim)  # its runner is gone
    taken.release()
    elsewhere = {**dead, "host": "another-node"}
    (attempts.work_dir("quickstart") / "quickstart-ccc.claim").write_text(json.dumps(elsewhere))
    assert "another-node" in attempts.claim("quickstart", "quickstart-ccc")  # cannot be judged from here: live
    assert not [t for t in threading.enumerate() if t.name == "lowres-claim-heartbeat"]  # released: beats stop


# ---------------------------------------------------------------------------------------------- out of memory
class FakeWatch(kernels.KernelWatch):
    def __init__(self, signal_=None, min_available=None, peak_rss=0, kills_before=None):
        super().__init__()
        self.oom_kills_before, self.min_available_bytes, self.peak_rss_bytes = kills_before, min_available, peak_rss
        self._signal = signal_

    def exit_signal(self):
        return self._signal


def papermill_error(ename, evalue, traceback=()):
    from papermill.exceptions import PapermillExecutionError

    return PapermillExecutionError(cell_index=3, exec_count=4, source="", ename=ename, evalue=evalue,
                                   traceback=list(traceback))


@pytest.mark.parametrize("exc, status", [
    (papermill_error("RuntimeError", "[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate "
                                     "memory: you tried to allocate 1125899906842624 bytes."), "oom"),
    (papermill_error("OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
    (papermill_error("MemoryError", ""), "oom"),
    (papermill_error("", "", ["Traceback", "MemoryError"]), "oom"),
    (papermill_error("ValueError", "bad value"), "failed"),
])
def test_kernel_errors_meaning_out_of_memory_are_oom(exc, status):
    assert kernels.classify_failure(exc, FakeWatch())[0] == status


def test_a_dead_kernel_is_oom_only_with_evidence(monkeypatch):
    from nbclient.exceptions import DeadKernelError

    import psutil

    total = psutil.virtual_memory().total
    dead = DeadKernelError("Kernel died")
    monkeypatch.setattr(kernels, "cgroup_oom_kills", lambda: 3)
    status, info = kernels.classify_failure(dead, FakeWatch(kills_before=2))
    assert status == "oom" and "oom_kill count 2 -> 3" in info["message"]
    monkeypatch.setattr(kernels, "cgroup_oom_kills", lambda: None)
    status, info = kernels.classify_failure(dead, FakeWatch(signal.SIGKILL, min_available=int(0.01 * total),
                                                            peak_rss=5 * 2**30))
    assert status == "oom" and info["kernel_peak_rss_bytes"] == 5 * 2**30
    status, info = kernels.classify_failure(dead, FakeWatch(signal.SIGKILL, min_available=int(0.5 * total)))
    assert status == "failed" and "SIGKILL; memory was not short" in info["message"]
    assert kernels.classify_failure(dead, FakeWatch(signal.SIGSEGV, min_available=1))[0] == "failed"


# ---------------------------------------------------------------------------------------------- schema
DAMAGED = {
    "keys only": {"study": "quickstart", "run_id": "quickstart-x", "status": "ok", "params": {}},
    "measurements list": {"study": "quickstart", "run_id": "quickstart-x", "status": "ok", "params": {},
                          "measurements": [1, 2]},
    "env list": {"study": "quickstart", "run_id": "quickstart-x", "status": "ok", "params": {}, "env": ["x"]},
    "error string": {"study": "quickstart", "run_id": "quickstart-x", "status": "failed", "params": {},
                     "error": "boom"},
    "window of the wrong type": {"study": "quickstart", "run_id": "quickstart-x", "status": "ok", "params": {},
                                 "measurements": {"train": {"wall_s": "slow"}}},
    "a list": [1, 2],
}


@pytest.mark.parametrize("name", [n for n in DAMAGED if n != "keys only"])
def test_wrong_types_are_refused_with_the_field(name, tmp_path):
    (tmp_path / "result.json").write_text(json.dumps(DAMAGED[name]))
    with pytest.raises(results.CorruptResult):
        load_result(tmp_path)


def test_damaged_results_are_listed_as_invalid_and_the_report_goes_on(outputs):
    base = outputs / "quickstart"
    for i, data in enumerate(DAMAGED.values()):
        (base / f"quickstart-{i}").mkdir(parents=True)
        (base / f"quickstart-{i}" / "result.json").write_text(json.dumps(data))
    (base / "quickstart-dir" / "result.json").mkdir(parents=True)  # a directory named result.json
    save_result(make("quickstart-good"), base / "quickstart-good")
    frame = collect("quickstart").set_index("run_id")
    invalid = frame[frame["status"] == "invalid"]
    assert len(invalid) == len(DAMAGED)  # "keys only" passes the schema; resume and analysis judge it
    assert "is a directory" in frame.loc["quickstart-dir", "error"]
    assert "measurements" in frame.loc["quickstart-1", "error"] and "env" in frame.loc["quickstart-2", "error"]
    section = report.study_section("quickstart", collect("quickstart"))
    assert section.lines and any("invalid" in str(t) or "invalid" in str(c) for c, t in section.tables)
    table = report.status_table({"quickstart": collect("quickstart")})
    assert table.loc[0, "invalid"] == len(DAMAGED)


def test_result_json_has_the_same_mode_as_every_other_output(tmp_path):
    save_result(make(), tmp_path)
    (tmp_path / "other.txt").write_text("x")
    mode = stat.S_IMODE((tmp_path / "result.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "other.txt").stat().st_mode) == results.file_mode()


# ---------------------------------------------------------------------------------------------- report --out
def test_report_out_refuses_a_folder_it_did_not_write_and_deletes_only_its_own_files(tmp_path):
    theirs = tmp_path / "report_files"
    theirs.mkdir()
    (theirs / "my-figure.png").write_text("mine")
    with pytest.raises(ParamsError, match="report_files, which lowres report did not write"):
        report.check_out_dir(tmp_path)
    mine = tmp_path / "mine"
    (mine / "report_files").mkdir(parents=True)
    (mine / "report_files" / "figure_1.png").write_text("old figure")
    (mine / "report_files" / "notes.txt").write_text("the user's")
    (mine / report.MANIFEST).write_text(json.dumps(["report.html", "report_files", "report_files/figure_1.png"]))
    report.check_out_dir(mine)
    report.remove_written_before(mine)
    assert not (mine / "report_files" / "figure_1.png").exists() and (mine / "report_files" / "notes.txt").exists()
