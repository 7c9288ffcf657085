"""Seq2seq study end to end through `lowres run seq2seq --profile smoke` (tiny-t5 on synthetic stories, full vs
LoRA r=8), the grid run once per session through the `smoke_study` fixture; then the rag study reading with the
fine-tuned model, named by its run id."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from lowres.results import collect
from lowres.studies.seq2seq import analysis

pytestmark = pytest.mark.notebook
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def runs(smoke_study):
    return {r["params"]["method"]: r for r in smoke_study("seq2seq").assert_ok().values()}


def test_tiny_t5_learns_the_stories_well_above_copying_the_lead_sentence(runs):
    assert sorted(runs) == ["full", "lora"]
    full = runs["full"]["metrics"]
    assert full["baseline"]["name"] == "lead sentence" and full["n_eval"] == 100
    assert full["rougeL"] > full["baseline"]["rougeL"] + 0.2, (full["rougeL"], full["baseline"]["rougeL"])
    assert full["rouge2"] > full["baseline"]["rouge2"] and 0 < full["rouge2"] <= full["rouge1"] <= 1


def test_lora_trains_a_small_share_counted_by_peft_and_saves_a_small_adapter(runs):
    full, adapted = runs["full"]["metrics"], runs["lora"]["metrics"]
    assert full["trainable_params"] == full["total_params"]
    assert adapted["params_counted_by"] == "peft.get_nb_trainable_parameters"
    assert adapted["trainable_params"] == adapted["trainable_params_torch"] == 6 * 2 * 8 * (128 + 128)
    assert adapted["trainable_pct"] == pytest.approx(100 * adapted["trainable_params"] / adapted["total_params"])
    assert 0 < adapted["adapter_bytes"] < 0.02 * adapted["checkpoint_bytes"]
    assert runs["lora"]["params"]["lora_rank"] == 8 and runs["full"]["params"]["lora_rank"] is None


def test_generation_cost_is_measured_per_request_greedy_and_beam_and_batched(runs, smoke_study):
    for method, r in runs.items():
        m, windows = r["metrics"], r["measurements"]
        assert m["reload_agreement"] == 1.0, method
        greedy, beam = m["generation"]["greedy"], m["generation"]["beam"]
        assert greedy["decoding"] == "greedy" and beam["decoding"] == "beam4" and greedy["n"] == beam["n"] == 20
        for timing in (greedy, beam):
            assert timing["p95_ms"] >= timing["p50_ms"] > 0 and timing["ms_per_token"] > 0
        assert m["latency_ms_greedy_p50"] == greedy["p50_ms"]
        assert m["throughput"]["n"] == 100 and m["throughput"]["examples_per_s"] > 0
        assert m["generated_tokens"] > 100
        train = windows["train"]
        assert train["samples"] == 4 * 768 and train["tokens"] > train["samples"] * 20  # source + target tokens
        assert train["sources"]["cpu_energy_j"] not in (None, "unavailable")
        assert {"eval", "generate_greedy", "generate_beam", "generate_batched"} <= set(windows)
    frame = collect("seq2seq", smoke_study("seq2seq").outputs)
    table = analysis.key_table(frame)
    assert len(table) == 2 and (table["rougeL"] > 0).all() and table["energy_source"].str.len().gt(0).all()
    assert set(frame["summary.task"]) == {"summarization"} and set(frame["summary.strategy"]) == {"full_ft", "lora"}
    assert (frame["summary.latency_ms"] == frame["metrics.latency_ms_greedy_p50"]).all()
    assert len(analysis.generation_table(frame)) == 6


def test_rag_reads_with_the_fine_tuned_model_named_by_its_run_id(runs, smoke_study, tmp_path):
    outputs = smoke_study("seq2seq").outputs
    reader = runs["full"]["run_id"]
    env = {**os.environ, "LOWRES_OUTPUTS": str(tmp_path)}
    # the reader's run in this outputs/ (a copy: the runner refuses links out of it; the smoke rag grid stays alone)
    shutil.copytree(outputs / "seq2seq" / reader / "checkpoint", tmp_path / "seq2seq" / reader / "checkpoint")
    proc = subprocess.run([sys.executable, "-m", "lowres.cli", "run", "rag", "--profile", "smoke", "--set",
                           f"generator={reader}", "--set", "n_questions=10", "--set", "ks=[[1, 3]]", "--set", "k=3"],
                          capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = (tmp_path / "rag").glob("*/result.json")
    result = json.loads(path.read_text())
    m = result["metrics"]
    assert result["status"] == "ok" and result["params"]["generator"] == reader
    assert m["reader"] == f"seq2seq-generate:{reader}" and m["by_k"]["3"]["read_ms"] > 0
    assert m["n_questions"] == 10 and 0 <= m["f1"] <= 1
