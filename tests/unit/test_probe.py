"""`lowres recommend --probe` (lowres.probe): the plan run on this CPU with a tiny model inside its time cap, saved,
and calibrating the next recommendation; bad probes answered with the next plan, bad requests refused."""
import json
import time

import pytest

from lowres import probe, selector
from lowres.cli import main
from lowres.results import load_result
from lowres.widgets import selector_form

# A latency budget this CPU meets even while the test suite loads it: what is checked here is the probe, not speed.
REQUEST = ["recommend", "--task", "classification", "--latency-ms", "60000", "--dataset-size", "20000",
           "--model", "tiny-bert", "--seq-len", "32"]
CAP_S = 60


def test_probe_measures_within_its_time_cap_and_calibrates_the_next_plan(tmp_path, capsys):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    started = time.perf_counter()
    assert main(REQUEST + ["--probe", "--probe-seconds", str(CAP_S), "--outputs", str(outputs), "--json"]) == 0
    elapsed = time.perf_counter() - started
    answer = json.loads(capsys.readouterr().out)
    report = answer["probe"]
    measured = report["measured"]
    assert elapsed < CAP_S + 30  # the cap bounds the child; planning and saving add seconds, not minutes
    assert measured["steps"] >= 2 and measured["requests"] >= 3 and measured["step_s"] > 0
    assert measured["latency_ms"] > 0 and measured["model_peak_gb"] > 0 and measured["process_peak_gb"] > 0
    assert measured["epoch_s"] == pytest.approx(measured["step_s"] * -(-20000 // report["spec"]["batch_size"]))
    assert measured["energy_source"]  # the energy says where it came from (codecarbon estimate on this CPU)
    saved = load_result(outputs / "selector" / report["run_id"])
    assert saved.status == "ok" and saved.params["probe"] and saved.params["model"] == "tiny-bert"
    assert saved.metrics["probe"]["memory_ratio"] > 0 and saved.env["fingerprint"]

    assert main(REQUEST + ["--outputs", str(outputs)]) == 0  # the next plan on this machine
    plan = capsys.readouterr().out
    assert f"the probe on this machine ({report['run_id']}) measured tiny-bert's own peak" in plan
    assert "calibrated x" in plan and f"by measured runs on this machine ({report['run_id']})" in plan
    assert "estimates are calibrated by measurements on this machine" in plan
    assert report["estimated"]["epoch_s"] > 0  # the plan's epoch estimate beside the probe's projection
    epoch = next(line for line in plan.splitlines() if "per training epoch on this CPU" in line)
    assert "calibrated x" in epoch and report["run_id"] in epoch  # the probe's steps calibrate the training time


FAKE = {"steps": 3, "step_s": 0.5, "requests": 3, "latency_ms": 2.0, "model_peak_bytes": 2e8,
        "process_peak_bytes": 9e8, "memory_kind": "fake", "load_s": 1.0, "measurements": {}}


def cpu_plan(**extra):
    return selector.recommend("classification", "cpu", 16, 200, 20_000, model="tiny-bert", seq_len=32, **extra)


def test_out_of_memory_halves_the_batch_and_says_so(monkeypatch):
    tried = []

    def child(spec):
        tried.append(spec.batch_size)
        return (None, "out of memory: RuntimeError: DefaultCPUAllocator") if spec.batch_size > 256 else (FAKE, "")

    monkeypatch.setattr(probe, "run_child", child)
    report = probe.probe(cpu_plan(), 30, save=False)
    assert tried == [1024, 512, 256] and report.spec.batch_size == 256
    assert report.attempts == ["LoRA fine-tuning, batch 1024: out of memory: RuntimeError: DefaultCPUAllocator",
                               "LoRA fine-tuning, batch 512: out of memory: RuntimeError: DefaultCPUAllocator"]


def test_over_the_time_cap_halves_the_batch_and_a_plan_that_cannot_run_gives_way_to_the_next(monkeypatch):
    def child(spec):
        if spec.batch_size > 512:
            return None, "over the 30 s time cap before its first steps and requests finished"
        return (None, "failed: RuntimeError: unsupported here") if spec.strategy == "lora" else (FAKE, "")

    monkeypatch.setattr(probe, "run_child", child)
    report = probe.probe(cpu_plan(), 30, recommend_again=lambda exclude: cpu_plan(exclude=exclude), save=False)
    assert report.spec.strategy == "full_ft" and report.spec.batch_size == 512
    assert report.attempts[:2] == ["LoRA fine-tuning, batch 1024: over the 30 s time cap before its first steps "
                                   "and requests finished", "LoRA fine-tuning, batch 512: failed: RuntimeError: "
                                   "unsupported here"]
    assert "ruled out by a probe on this machine" in " ".join(report.plan.reasons)


def test_nothing_runs_is_one_error_not_a_traceback(monkeypatch):
    monkeypatch.setattr(probe, "run_child", lambda spec: (None, "failed: RuntimeError: boom"))
    with pytest.raises(probe.ProbeError, match="no plan that runs here: LoRA fine-tuning, batch 1024: failed"):
        probe.probe(cpu_plan(), 30, recommend_again=lambda exclude: cpu_plan(exclude=exclude), save=False)


@pytest.mark.parametrize("extra, message", [
    (["--probe", "--hardware", "gpu", "--memory-gb", "8"], "--probe runs the plan on this machine"),
    (["--probe", "--rules-only"], "--probe runs the plan on this machine"),
    (["--probe", "--probe-seconds", "5"], "probe time cap must be 20..3600 seconds, got 5"),
])
def test_bad_probe_requests_are_one_line(capsys, extra, message):
    assert main(REQUEST + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_plan_whose_model_is_not_here_cannot_be_probed_and_says_what_to_do():
    from lowres.models import ModelNotAvailable, resolve

    try:
        resolve("distilbert-base-uncased")
        pytest.skip("distilbert-base-uncased is in this machine's Hugging Face cache")
    except ModelNotAvailable:
        pass
    rec = selector.recommend("classification", "cpu", 16, 200, 20_000)
    with pytest.raises(probe.ProbeError, match="not available on this machine.*--model tiny-bert"):
        probe.probe(rec, 30, save=False)


def test_the_form_probes_the_plan_of_this_machine_only(monkeypatch, tmp_path):
    monkeypatch.setattr(probe, "run_child", lambda spec: (FAKE, ""))
    monkeypatch.setattr(selector, "detect", lambda: {"hardware": "cpu", "memory_gb": 16.0, "gpus": 0})
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    form = selector_form(dict(hardware="cpu", memory_gb=16.0, latency_ms=60_000.0, dataset_size=20000,
                              model="tiny-bert"), fingerprint="fp-test", outputs=outputs)
    report = form.probe()
    assert report is not None and "<table class='lowres-probe'>" in form.probed.value
    assert report.run_id and (outputs / "selector" / report.run_id / "result.json").is_file()
    assert "fits the budget: memory (0.90 GB of 16 GB): yes" in form.probed.value
    form.fields["hardware"].value, form.fields["memory_gb"].value = "gpu", 8.0
    assert form.probe() is None and "Cannot probe: the form describes another machine" in form.probed.value


def test_a_training_time_budget_is_checked_against_the_probe_s_projected_epoch(monkeypatch):
    slow = {**FAKE, "step_s": 100.0}  # 20 steps of 1024 examples per epoch: 2000 s measured
    monkeypatch.setattr(probe, "run_child", lambda spec: (slow, ""))
    report = probe.probe(cpu_plan(train_hours=0.1), 30, save=False)  # the estimate is within 0.1 h, the probe not
    assert report.estimated["epoch_s"] < 360 < report.measured["epoch_s"] == pytest.approx(2000)
    assert report.fits == {"memory (0.90 GB of 16 GB)": True, "latency (2.0 ms of 200 ms)": True,
                           "training time (33.3 min per epoch of 0.1 h)": False}
    assert report.title().endswith("(cpu, 3 steps, 3 requests)")
