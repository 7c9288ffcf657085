"""Least-squares fits of energy against tokens (hand-computed cases, R², degenerate inputs), the StepWindows
windows that give a run its fit points, and the confidence intervals over seeds."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from lowres import energy_fit, results
from lowres.energy_fit import fit_metrics, fit_notes, fit_table, linear_fit, window_sizes
from lowres.meters.callback import StepWindows
from lowres.stats import mean_ci
from lowres.meters import Meter


def test_exact_line_recovers_slope_intercept_and_r2_of_one():
    fit = linear_fit([100, 200, 300, 400], [2.5, 4.5, 6.5, 8.5], "padded_tokens", "energy_j")
    assert (fit.slope, fit.intercept, fit.r2, fit.n) == (pytest.approx(0.02), pytest.approx(0.5), pytest.approx(1.0), 4)
    assert fit.slope_stderr == pytest.approx(0.0, abs=1e-12) and fit.note == ""
    assert fit.slope_unit == "J/token" and fit.to_dict()["slope_unit"] == "J/token"


def test_noisy_points_match_the_hand_computed_least_squares():
    # x̄ = 1.5, ȳ = 2.75, Sxx = 5, Sxy = 5.5 -> slope 1.1, intercept 2.75 - 1.1 * 1.5 = 1.1
    # SST = 8.75, SSR = slope * Sxy = 6.05 -> R² = 6.05 / 8.75; SSE = 2.7 -> stderr = sqrt(2.7 / 2 / 5)
    fit = linear_fit([0, 1, 2, 3], [1, 3, 2, 5], "wall_s", "energy_j")
    assert fit.slope == pytest.approx(1.1) and fit.intercept == pytest.approx(1.1)
    assert fit.r2 == pytest.approx(6.05 / 8.75) and fit.slope_stderr == pytest.approx(math.sqrt(0.27))
    assert fit.slope_unit == "J/s"


def test_missing_values_are_dropped_pairwise_before_fitting():
    fit = linear_fit([1, 2, None, 3, 4, np.nan], [3, 5, 7, np.nan, 9, 1])
    assert fit.n == 3 and fit.slope == pytest.approx(2.0) and fit.intercept == pytest.approx(1.0)


@pytest.mark.parametrize("x, y, note", [
    ([], [], "needs >= 3 points with both padded_tokens and energy_j, got 0"),
    ([1, 2], [1, 2], "needs >= 3 points with both padded_tokens and energy_j, got 2"),  # 2 points: R² = 1 always
    ([1, 2, None], [1, 2, 3], "got 2"),
    ([512] * 5, [1, 2, 3, 4, 5], "needs >= 3 distinct padded_tokens values, got 1 over 5 points; no slope"),
    ([512, 512, 1024, 1024], [1, 1.1, 2, 2.1], "needs >= 3 distinct padded_tokens values, got 2 over 4 points"),
])
def test_a_fit_that_cannot_be_judged_is_nan_and_says_why(x, y, note):
    fit = linear_fit(x, y, "padded_tokens", "energy_j")
    assert math.isnan(fit.slope) and math.isnan(fit.intercept) and math.isnan(fit.r2)
    assert note in fit.note


def test_constant_y_has_a_flat_slope_and_no_r2():
    fit = linear_fit([1, 2, 3], [4.0, 4.0, 4.0], "padded_tokens", "energy_j")
    assert (fit.slope, fit.intercept) == (0.0, 4.0) and math.isnan(fit.r2)
    assert "same energy_j; R² undefined" in fit.note


def test_fit_table_per_group_and_flat_metrics_carry_the_notes():
    points = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "padded_tokens": [1, 2, 3, 5, 5, 5],
                           "energy_j": [2, 4, 6, 1, 2, 3]})
    table = fit_table(points, "padded_tokens", "energy_j", by=["model"])
    assert list(table["model"]) == ["a", "b"] and table.loc[0, "slope"] == pytest.approx(2.0)
    assert table.loc[0, "note"] == "" and math.isnan(table.loc[1, "slope"]) and "distinct" in table.loc[1, "note"]
    good, bad = fit_metrics(table.iloc[[0]]), fit_metrics(table.iloc[[1]])
    assert good["fit_energy_j_vs_padded_tokens_r2"] == pytest.approx(1.0)
    assert "fit_energy_j_vs_padded_tokens_note" not in good
    assert "distinct padded_tokens" in bad["fit_energy_j_vs_padded_tokens_note"]
    assert fit_notes(table) == [f"energy_j vs padded_tokens: {table.loc[1, 'note']}"]
    assert fit_notes(table.iloc[[0]]) == []
    empty = fit_table(pd.DataFrame(), "padded_tokens", "energy_j", by=["model"])
    assert empty.empty and {"model", "slope", "r2", "note", "slope_unit"} <= set(empty.columns)


def test_standard_fits_stack_energy_and_time_against_tokens():
    points = pd.DataFrame({"padded_tokens": [1000, 2000, 3000], "wall_s": [1.0, 2.1, 2.9],
                           "energy_j": [8.0, 16.5, 23.5]})
    fits = energy_fit.standard_fits(points)
    assert [(f.x, f.y) for f in fits.itertuples()] == list(energy_fit.STANDARD_FITS)
    assert list(fits["slope_unit"]) == ["J/token", "s/token", "J/s"] and (fits["r2"] > 0.99).all()


def test_window_sizes_cycle_one_two_three_parts_and_cover_every_step():
    # one step each, the other 57 by weights 1,2,3,1,2,3 (sum 12): bounds round(57 * [1,3,6,7,9,12] / 12)
    # = 5, 14, 28, 33, 43, 57 -> shares 5, 9, 14, 5, 10, 14 -> sizes 6, 10, 15, 6, 11, 15
    assert window_sizes(63, 6) == [6, 10, 15, 6, 11, 15]
    assert window_sizes(3, 7) == [1, 1, 1]  # never more windows than steps, never an empty window
    sizes = window_sizes(1000, 7)
    assert sum(sizes) == 1000 and len(sizes) == 7 and max(sizes) / min(sizes) == pytest.approx(3, rel=0.02)
    with pytest.raises(ValueError, match="total_steps >= 1 and windows >= 1, got 0, 6"):
        window_sizes(0, 6)


def test_energy_and_source_sums_the_parts_present_and_names_their_sources():
    m = {"gpu_energy_j": [10.0, 20.0], "cpu_energy_j": 5.0, "dram_energy_j": None,
         "sources": {"gpu_energy_j": "nvml-energy-counter", "cpu_energy_j": "rapl"}}
    assert results.energy_and_source(m) == (35.0, "nvml-energy-counter, rapl")
    assert results.energy_and_source({"gpu_energy_j": None, "sources": {}}) == (None, "unavailable")


def test_mean_ci_is_the_student_t_interval():
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, df=2) * sd / sqrt(n), sd = 1
    assert (mean, low, high) == (2.0, pytest.approx(2 - half), pytest.approx(2 + half))
    one = mean_ci([0.5, None, float("nan")])
    assert one[0] == 0.5 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in mean_ci([]))


def batch(rows: int, length: int, real: int) -> dict:
    mask = torch.zeros(rows, length, dtype=torch.long)
    mask[:, :real] = 1
    return {"input_ids": torch.ones_like(mask), "attention_mask": mask}


class FakeTrainer:
    precision = "32-true"


def drive(callback: StepWindows, batches: list[dict], epoch_end_after: int | None = None) -> None:
    """Call the hooks Lightning calls for each training step (and an epoch end after step `epoch_end_after`)."""
    trainer = FakeTrainer()
    for i, b in enumerate(batches):
        callback.on_train_batch_start(trainer, None, b, i)
        callback.on_train_batch_end(trainer, None, None, b, i)
        if epoch_end_after == i:
            callback.on_train_epoch_end(trainer, None)
    callback.on_train_end(trainer, None)


def test_step_windows_follow_the_sizes_count_exact_tokens_and_close_at_epoch_end():
    meter = Meter(energy="off")
    windows = StepWindows(meter, [1, 2], warmup_steps=1)
    lengths = [8, 4, 6, 6, 5, 3, 7]
    drive(windows, [batch(2, n, n - 1) for n in lengths], epoch_end_after=4)
    m = meter.to_dict()
    # warmup: step 0; steps_0: size 1 (step 1); steps_1: size 2 (steps 2-3); steps_2: size 1 (step 4), then the
    # epoch ends; steps_3: size 2 (steps 5-6)
    assert [k for k in m] == ["steps_warmup", "steps_0", "steps_1", "steps_2", "steps_3"]
    assert [m[k]["steps"] for k in m] == [1, 1, 2, 1, 2]
    assert [m[k]["padded_tokens"] for k in m] == [16, 8, 24, 10, 20]
    assert [m[k]["tokens"] for k in m] == [14, 6, 20, 8, 16]
    assert all(m[k]["status"] == "ok" and m[k]["samples"] == 2 * m[k]["steps"] for k in m)
    points = energy_fit.window_points(m)
    assert list(points["window"]) == ["steps_0", "steps_1", "steps_2", "steps_3"]  # warmup left out of the fits
    assert list(points["padded_tokens"]) == [8, 24, 10, 20] and set(points["energy_source"]) == {"unavailable"}


def test_step_windows_close_as_failed_on_an_exception_and_refuse_bad_sizes():
    meter = Meter(energy="off")
    windows = StepWindows(meter, 3, warmup_steps=0)
    windows.on_train_batch_start(FakeTrainer(), None, batch(1, 4, 4), 0)
    windows.on_exception(FakeTrainer(), None, RuntimeError("boom"))
    assert meter.to_dict()["steps_0"]["status"] == "failed"
    assert energy_fit.window_points(meter.to_dict()).empty
    with pytest.raises(ValueError, match=r"window sizes >= 1 and warmup_steps >= 0, got \[2, 0\], 1"):
        StepWindows(meter, [2, 0])
