"""`lowres report`: the report notebook on the fixture (failed run, missing study) and on real smoke outputs,
each page then opened in headless Chromium at 1280x900 (tests/browser/report_page.py; screenshots saved in the
test's temp dir)."""
import csv
import os
import subprocess
import sys
import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "browser"))
from report_page import assert_readable, inspect_page  # noqa: E402 - the browser checks live with the browser tests

pytestmark = pytest.mark.notebook
FIXTURE = REPO / "tests" / "fixtures" / "report_outputs"
SECTIONS = ("Runs per study", "Each study: its key table and figure", "Published figures next to ours",
            "Quality against cost across strategies", "What the selector recommends for this machine")


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def build_report(lowres_cli, out: Path) -> str:
    proc = lowres_cli("report", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = out / "report.html"
    assert f"HTML report: {html}" in proc.stdout and html.is_file()
    return html.read_text()


def assert_figures_beside(html: str, out: Path) -> None:
    images = re.findall(r'<img[^>]*\ssrc="(report_files/[^"]+\.png)"', html)
    assert images and all((out / image).is_file() for image in images)
    assert not re.search(r'<img[^>]*\ssrc="data:', html)  # figures are files, not inlined


def test_report_on_the_fixture_shows_every_section_a_failed_run_and_a_missing_study(lowres_cli, outputs, tmp_path):
    shutil.copytree(FIXTURE, outputs, dirs_exist_ok=True)
    out = tmp_path / "report"
    html = build_report(lowres_cli, out)
    for heading in SECTIONS:
        assert heading in html
    for study in ("quickstart", "precision", "parallelism", "distil_vs_bert", "lora", "rag", "prompting", "selector"):
        assert f'id="{study}"' in html  # a section per study, run or not
    assert "FABRICATED TEST DATA" in html
    assert "quickstart-fixture-broken" in html and "FIXTURE: broken-model" in html  # the failed run, with its error
    assert "not run" in html and "lowres run rag --profile smoke" in html  # the missing study
    assert "Maina, Wolovick &amp; Benotti (2025)" in html and "not measured" in html
    assert_figures_beside(html, out)
    status = {r["study"]: r for r in read_csv(out / "status.csv")}
    assert status["rag"]["state"] == "not run" and status["precision"]["oom"] == "1"
    anchors = {r["anchor"]: r for r in read_csv(out / "anchors.csv")}
    assert float(anchors["design_int8_memory"]["ours"]) > 50 and anchors["design_rag"]["ours"] == ""
    assert {r["verdict"] for r in anchors.values()} <= {"reproduced", "not reproduced", "not comparable",
                                                       "not measurable here", "not measured"}
    assert (out / "report.ipynb").is_file()
    seen = inspect_page(out / "report.html", tmp_path / "screenshots", "fixture")
    assert_readable(seen)
    print(f"screenshots of the fixture report: {tmp_path / 'screenshots'}")


def test_report_on_every_study_s_smoke_outputs(smoke_study, smoke_outputs, tmp_path):
    from lowres.config import available_studies

    runs = {study: smoke_study(study) for study in available_studies()}  # shared with the studies' own tests
    out = tmp_path / "report"
    env = {**os.environ, "LOWRES_OUTPUTS": str(smoke_outputs)}
    proc = subprocess.run([sys.executable, "-m", "lowres.cli", "report", "--out", str(out)], capture_output=True,
                          text=True, timeout=600, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = (out / "report.html").read_text()
    for heading in SECTIONS:
        assert heading in html
    assert "FABRICATED" not in html
    status = {r["study"]: r for r in read_csv(out / "status.csv")}
    for study, run in runs.items():
        assert int(status[study]["runs"]) == len(run.results), study
        assert int(status[study]["ok"]) == sum(r["status"] == "ok" for r in run.results.values()), study
        for run_id in run.results:
            assert run_id in html
    points = read_csv(out / "quality_cost.csv")
    assert points and all(float(p["latency_ms"]) > 0 for p in points if p["latency_ms"])
    # the selector's plan table (Recommendation._repr_html_), not its fallback line
    assert "lowres-plan" in html and "Strategy" in html and "could not recommend" not in html
    assert_figures_beside(html, out)
    for run in runs.values():  # the kernels' own chatter stays in their kernel.log, out of the CLI's output
        assert "[IPKernelApp]" not in run.proc.stdout + run.proc.stderr
        assert "KeyboardInterrupt" not in run.proc.stdout + run.proc.stderr
    seen = inspect_page(out / "report.html", tmp_path / "screenshots", "smoke")
    assert_readable(seen)
    assert set(seen["ratio"]) == {"-"} and set(seen["ours"]) == {"-"}  # no smoke figure beside a published one
    assert seen["verdicts"] and "reproduced" not in seen["verdicts"]
    print(f"screenshots of the smoke report: {tmp_path / 'screenshots'}")
