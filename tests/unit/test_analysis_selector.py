"""The selector study's key table and figure on hand-made results (including a failed run)."""
import matplotlib

matplotlib.use("Agg")
import pandas as pd

from lowres.studies.selector import analysis


def frame():
    return pd.DataFrame([
        {"run_id": "selector-a", "status": "ok", "params.task": "qa", "params.hardware": "cpu", "params.memory_gb": 16.0,
         "metrics.strategy": "rag", "metrics.estimated_memory_gb": 1.2, "metrics.batch_size": None},
        {"run_id": "selector-b", "status": "failed", "params.task": "x", "params.hardware": "gpu",
         "params.memory_gb": 4.0},
    ])


def test_key_table_keeps_ok_plans_with_short_column_names():
    table = analysis.key_table(frame())
    assert list(table["run_id"]) == ["selector-a"]
    assert table.loc[0, "strategy"] == "rag" and table.loc[0, "memory_gb"] == 16.0


def test_key_figure_draws_budget_and_estimate_bars():
    ax = analysis.key_figure(frame())
    assert len(ax.patches) >= 2 and "budget" in ax.get_title()


def test_key_figure_on_no_results_says_so():
    ax = analysis.key_figure(pd.DataFrame())
    assert "no plans" in ax.get_title()
