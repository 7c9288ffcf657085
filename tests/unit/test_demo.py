"""`lowres demo` orchestration with the runner and the report stubbed: failures are recorded, the demo goes on."""
import json
import types

import pytest

from lowres import config, demo, report, runner


@pytest.fixture
def stubbed(monkeypatch, outputs, tmp_path):
    calls = []

    def run_study(study, profile):
        calls.append((study, profile))
        if study == "broken":
            raise RuntimeError("kernel exploded")
        if study == "refused":
            raise config.ParamsError("needs LOWRES_DATA_DIR")
        if study == "partial":
            return [runner.RunOutcome("partial-1", "ok", 1.0, {}), runner.RunOutcome("partial-2", "oom", 1.0, {},
                                                                                    "OutOfMemoryError: boom")]
        return [runner.RunOutcome(f"{study}-1", "ok", 1.0, {}), runner.RunOutcome(f"{study}-2", "skipped", 0.0, {})]

    html = tmp_path / "report.html"
    monkeypatch.setattr(config, "available_studies", lambda: ["good", "broken", "refused", "partial", "noprofile"])
    monkeypatch.setattr(demo, "has_profile", lambda study, profile: study != "noprofile")
    monkeypatch.setattr(runner, "run_study", run_study)
    monkeypatch.setattr(report, "build_report", lambda outputs, out: (True, html))
    return calls, html


def test_every_study_runs_failures_are_recorded_and_the_report_is_built(stubbed, outputs, capsys):
    calls, html = stubbed
    assert demo.run_demo(types.SimpleNamespace(profile="smoke")) == 1  # some studies failed
    assert calls == [(s, "smoke") for s in ("good", "broken", "refused", "partial")]
    out = capsys.readouterr().out
    assert "[2/5] broken --profile smoke" in out and f"report: {html}" in out and "demo wall time" in out
    summary = {o["study"]: o for o in json.loads((outputs / "report" / report.DEMO_SUMMARY).read_text())}
    assert summary["good"]["state"] == "ok" and summary["good"]["skipped"] == 1
    assert summary["broken"]["state"] == "crashed" and "kernel exploded" in summary["broken"]["message"]
    assert summary["refused"]["state"] == "refused" and "LOWRES_DATA_DIR" in summary["refused"]["message"]
    assert summary["partial"]["state"] == "some runs failed" and "oom" in summary["partial"]["message"]
    assert summary["noprofile"]["state"] == "no such profile"


def test_all_ok_exits_zero(stubbed, monkeypatch):
    monkeypatch.setattr(config, "available_studies", lambda: ["good"])
    assert demo.run_demo(types.SimpleNamespace(profile="cpu")) == 0
