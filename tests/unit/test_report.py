"""The report's pieces without a kernel: collecting, status, sections and their fallbacks, quality vs cost."""
import json
import types
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from lowres import report

matplotlib.use("Agg")
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "report_outputs"


@pytest.fixture(scope="module")
def frames():
    return report.collect_all(FIXTURE)


def test_every_registered_study_is_listed_and_missing_ones_are_not_run(frames):
    from lowres import studies

    assert list(frames)[:len(studies.names())] == studies.names()
    status = report.status_table(frames, {"rag": "refused: no data"}).set_index("study")
    assert status.loc["rag", "state"] == "not run" and status.loc["rag", "note"] == "refused: no data"
    assert status.loc["quickstart", "failed"] == 1 and status.loc["precision", "oom"] == 1
    assert status.loc["parallelism", "state"] == "ok"


def test_fixture_results_are_announced_as_fabricated(frames):
    assert report.is_fixture(frames)
    assert "FABRICATED TEST DATA" in report.banner(FIXTURE, frames)


def test_a_missing_study_section_says_how_to_run_it(frames):
    section = report.study_section("rag", frames["rag"], FIXTURE)
    assert "not run" in section.lines[0] and "lowres run rag" in section.lines[0] and section.figure is None


def test_without_an_analysis_module_a_generic_table_is_shown():
    df = report.collect_all(FIXTURE)["quickstart"].assign(study="nosuchstudy")
    section = report.study_section("nosuchstudy", df)
    assert any("study `nosuchstudy` has no analysis module" in line for line in section.lines)
    captions = [caption for caption, _ in section.tables]
    assert captions == ["Runs that did not succeed", "Results (generic table)"]
    assert section.tables[0][1]["status"].tolist() == ["failed"]
    assert "metrics.accuracy" in section.tables[1][1]


def test_an_analysis_that_fails_falls_back_and_says_why(monkeypatch, frames):
    from lowres import studies

    broken = types.ModuleType("lowres.studies.brokenstudy.analysis")
    broken.key_table = lambda df: df
    broken.key_figure = lambda df, ax=None: 1 / 0
    monkeypatch.setattr(studies, "analysis", lambda name: broken)
    section = report.study_section("brokenstudy", frames["parallelism"])
    assert any("ZeroDivisionError" in line for line in section.lines)
    assert [c for c, _ in section.tables] == ["Key table", "Results (generic table)"] and section.figure is None


def test_a_study_with_only_failed_runs_is_shown_as_failed(frames):
    only_failed = frames["lora"][frames["lora"]["status"] != "ok"]
    section = report.study_section("lora", only_failed)
    assert "No successful run to analyse." in section.lines and section.tables[0][0] == "Runs that did not succeed"


def test_quality_cost_points_strategies_and_costs(frames):
    points = report.strategy_points(frames)
    assert set(points["strategy"]) == {"full_ft", "lora", "prompting"}
    lora = points[points["study"] == "lora"].set_index("strategy")
    assert lora.loc["full_ft", "latency kind"] == "per request (batch 1)"
    assert (points["energy_j"] > 0).all() and (points["memory kind"] == "cpu-rss").all()
    twins = points[points["study"] == "distil_vs_bert"]
    assert set(twins["model"]) == {"tiny-bert", "tiny-distilbert"}
    figure = report.pareto_figure(points)
    assert len(figure.axes) >= 3 and figure.axes[0].lines  # the front is drawn
    report.close(figure)
    assert report.pareto_figure(pd.DataFrame()) is None


def test_recommendation_or_a_clear_line():
    plan = report.recommendation(FIXTURE, "classification", 200.0, 10_000)
    assert hasattr(plan, "strategy") or (isinstance(plan, str) and "selector" in plan)
    if hasattr(plan, "basis"):
        assert plan.basis.startswith("rules only")  # fabricated fixture results never calibrate a real machine
    assert report.recommendation(FIXTURE, "classification", -1.0).startswith("the selector could not recommend")


def test_demo_notes_and_tables_saved(tmp_path, frames):
    (tmp_path / report.DEMO_SUMMARY).write_text(json.dumps([{"study": "rag", "message": "refused: x"},
                                                            {"study": "lora", "message": ""}]))
    assert report.demo_notes(tmp_path) == {"rag": "refused: x"} and report.demo_notes(None) == {}
    paths = report.save_tables(tmp_path / "out", status=report.status_table(frames))
    assert paths[0].read_text().startswith("study,runs")
    assert report.save_tables(None, status=report.status_table(frames)) == []
