"""DistilBERT vs BERT end to end: the smoke grid (tiny twins x length-grouped / max_length padding) through
`lowres run`, once per session; twins compared token for token, the energy fits, the analysis tables."""
import math

import pytest

from lowres.studies.distil_vs_bert import analysis
from lowres.cli import main
from lowres.results import collect

pytestmark = pytest.mark.notebook

STUDY = "distil_vs_bert"


@pytest.fixture(scope="module")
def smoke(smoke_study):
    run = smoke_study(STUDY)
    return run, run.assert_ok()


def twins(results: dict) -> dict[str, dict[str, dict]]:
    """{padding: {variant: result}}."""
    out: dict[str, dict[str, dict]] = {}
    for r in results.values():
        out.setdefault(r["params"]["padding"], {})[r["params"]["variant"]] = r
    return out


def test_smoke_grid_runs_both_twins_in_both_padding_modes_and_each_learns(smoke):
    _, results = smoke
    pairs = twins(results)
    assert {p: set(v) for p, v in pairs.items()} == {"length-grouped": {"bert", "distil"},
                                                      "max_length": {"bert", "distil"}}
    for r in results.values():
        assert r["status"] == "ok" and r["metrics"]["quality_name"] == "accuracy"
        assert r["metrics"]["accuracy"] > 0.8 and r["metrics"]["balanced_accuracy"] > 0.8  # chance is 0.5
        train = r["measurements"]["train"]
        assert train["samples"] == 2 * 1024 and train["steps"] == 64 and train["padded_tokens"] >= train["tokens"] > 0
        assert train["sources"]["cpu_energy_j"] != "unavailable" and train["co2_kg"] > 0


def test_distil_processed_the_same_tokens_with_fewer_flops_and_less_time_than_its_bert_twin(smoke):
    _, results = smoke
    for padding, pair in twins(results).items():
        bert, distil = pair["bert"]["measurements"]["train"], pair["distil"]["measurements"]["train"]
        assert (distil["tokens"], distil["padded_tokens"], distil["samples"]) == \
               (bert["tokens"], bert["padded_tokens"], bert["samples"]), padding
        flops = pair["distil"]["metrics"]["step_flops"] / pair["bert"]["metrics"]["step_flops"]
        assert flops == pytest.approx(0.5, abs=0.05), padding  # 2 of 4 layers at the same width
        assert pair["distil"]["metrics"]["step_padded_tokens"] == pair["bert"]["metrics"]["step_padded_tokens"]
        assert distil["wall_s"] < bert["wall_s"], (padding, distil["wall_s"], bert["wall_s"])
    grouped, fixed = (twins(results)[p]["bert"]["measurements"]["train"] for p in ("length-grouped", "max_length"))
    assert fixed["padded_tokens"] == 2 * 1024 * 32 and grouped["tokens"] == fixed["tokens"]
    assert grouped["padded_tokens"] <= 1.1 * grouped["tokens"] < fixed["padded_tokens"]


def test_every_run_has_its_energy_and_time_fits_with_r2(smoke):
    _, results = smoke
    for r in results.values():
        m = r["metrics"]
        for y in ("energy_j", "wall_s"):
            assert m[f"fit_{y}_vs_padded_tokens_n"] >= 3 and f"fit_{y}_vs_padded_tokens_note" not in m
            assert m[f"fit_{y}_vs_padded_tokens_slope"] > 0 and 0 <= m[f"fit_{y}_vs_padded_tokens_r2"] <= 1
        assert m["fit_wall_s_vs_padded_tokens_r2"] > 0.5  # time grows with the tokens of a window
        windows = [k for k in r["measurements"] if k.startswith("steps_") and k != "steps_warmup"]
        assert len(windows) == m["fit_energy_j_vs_padded_tokens_n"]
        assert len({r["measurements"][k]["padded_tokens"] for k in windows}) >= 3  # spread even under max_length


def test_analysis_tables_compare_twins_padding_and_fit_across_runs(smoke):
    run, _ = smoke
    df = collect(STUDY, run.outputs)
    table = analysis.key_table(df).set_index("padding")
    assert set(table.index) == {"length-grouped", "max_length"} and (table["seeds"] == 1).all()
    assert table["same_tokens"].all() and (table["energy_ratio"] < 1).all() and (table["time_ratio"] < 1).all()
    assert table["energy_ratio_ci_low"].isna().all()  # one seed: no interval, not a fake one
    assert (table["energy_source"] != "unavailable").all()
    savings = analysis.padding_savings(df).set_index("model")
    assert set(savings.index) == {"tiny-bert", "tiny-distilbert"}
    assert (savings["padded_per_real_max_length"] > 2 * savings["padded_per_real_length-grouped"]).all()
    # tiny-bert: 3x the padded tokens under max_length cost clearly more time; tiny-distilbert's short steps are
    # dominated by per-step costs (the embedding table's AdamW update), within a shared CPU's noise: not asserted
    assert savings.loc["tiny-bert", "time_saved"] > 0 and savings.loc["tiny-bert", "energy_saved"] > 0
    windows = analysis.energy_fits(df, level="window")
    energy = windows[(windows.x == "padded_tokens") & (windows.y == "energy_j")].set_index("model")
    assert energy.loc["tiny-bert", "slope"] > 0 and not math.isnan(energy.loc["tiny-bert", "r2"])
    assert energy.loc["tiny-bert", "n"] >= 6  # the windows of both padding modes' runs
    runs = analysis.energy_fits(df, level="run")  # 2 runs per model: too few to judge, and it says so
    assert runs["r2"].isna().all() and runs["note"].str.contains("needs >= 3 points").all()
    assert (run.outputs / STUDY / next(iter(run.results)) / "fits.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["run", STUDY, "--set", "dataset=vizwiz"], "dataset 'vizwiz' is not a classification or extractive QA task"),
    (["run", STUDY, "--set", "dataset=squad", "--set", "max_length=64"], "extractive QA needs max_length >= 128"),
    (["run", STUDY, "--set", "padding=longest"], "padding='longest'"),
    (["run", STUDY, "--set", "variant=large"], "variant='large'"),
])
def test_bad_input_is_refused_before_anything_runs(outputs, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(outputs.iterdir())
