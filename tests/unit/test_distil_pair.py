"""The pretrained distilled pair built offline (minilm / minilm-half), its optional distillation, and the
length-vs-count fit of the distil_vs_bert study."""
import json
import math

import pytest
import torch

from lowres import distill, models
from lowres.results import RunResult, collect, save_result
from lowres.studies.distil_vs_bert import analysis


@pytest.fixture(scope="module")
def pair():
    return models.load_model("minilm", "base"), models.load_model("minilm-half", "base")


def test_minilm_half_is_one_layer_in_two_of_minilm_with_its_embeddings_and_pooler(pair):
    teacher, student = pair
    assert student.config.num_hidden_layers == 3 == teacher.config.num_hidden_layers // 2
    assert student.config.hidden_size == teacher.config.hidden_size
    for index, source in enumerate(models.HALF_LAYERS):
        for (name, mine), (_, theirs) in zip(student.encoder.layer[index].named_parameters(),
                                             teacher.encoder.layer[source].named_parameters()):
            assert torch.equal(mine, theirs), (index, source, name)
    assert torch.equal(student.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)
    assert torch.equal(student.pooler.dense.weight, teacher.pooler.dense.weight)
    assert models.load_embedder("minilm-half").encode(["a red shirt"]).shape == (1, 384)


def test_minilm_half_costs_about_half_the_flops_per_token():
    from lowres.meters.flops import training_step_flops

    tokenizer = models.load_tokenizer("minilm-half")
    batch = dict(tokenizer(["a fine film"] * 4, padding="max_length", max_length=32, return_tensors="pt"),
                 labels=torch.zeros(4, dtype=torch.long))
    flops = {name: training_step_flops(models.load_model(name, "classification"), dict(batch))
             for name in ("minilm", "minilm-half")}
    assert flops["minilm-half"] / flops["minilm"] == pytest.approx(0.5, abs=0.03)


def pooled(model, tokenizer, texts):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model.eval()(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (states * mask).sum(1) / mask.sum(1)


def test_distillation_moves_the_student_towards_its_teacher_and_is_cached(pair, tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_CACHE", str(tmp_path))
    teacher, student = pair
    tokenizer = models.load_tokenizer("minilm")
    held_out = ["the plot was thin but the acting carried it", "a dull, lifeless remake", "warm and funny"]
    before = torch.cosine_similarity(pooled(student, tokenizer, held_out), pooled(teacher, tokenizer, held_out))
    directory = distill.distill(dataset="synthetic-sentiment", steps=12, batch_size=8, max_length=24, lr=3e-4)
    after = torch.cosine_similarity(pooled(models.load_model(str(directory), "base"), tokenizer, held_out),
                                    pooled(teacher, tokenizer, held_out))
    assert after.mean() > before.mean() + 0.02, (before, after)
    record = json.loads((directory / "lowres_distillation.json").read_text())
    assert record["steps"] == 12 and record["teacher"] == "minilm" and record["final_loss"] > 0
    assert distill.distill(dataset="synthetic-sentiment", steps=12, batch_size=8, max_length=24, lr=3e-4) == directory


def test_distillation_on_a_qa_dataset_is_refused_with_the_valid_value():
    from lowres.studies.distil_vs_bert.params import Params

    with pytest.raises(ValueError, match=r"distill_steps=5 needs a classification dataset.*valid: distill_steps=0"):
        Params(dataset="synthetic-kb", max_length=128, distill_steps=5)


def run_result(variant: str, samples: int, length: int, seconds_per_token: float) -> RunResult:
    """A twin run padded to `length`: its cost follows samples x length, its examples vary independently."""
    wall = seconds_per_token * samples * length
    train = {"name": "train", "status": "ok", "wall_s": wall, "samples": samples, "steps": samples // 32,
             "tokens": samples * length // 2, "padded_tokens": samples * length, "cpu_energy_j": 20.0 * wall,
             "gpu_energy_j": None, "sources": {"cpu_energy_j": "codecarbon-estimate", "gpu_energy_j": "unavailable"}}
    params = {"seed": 0, "bert_model": "minilm", "distil_model": "minilm-half", "variant": variant,
              "dataset": "sst2", "train_size": samples, "max_length": length, "padding": "max_length"}
    return RunResult(study="distil_vs_bert", run_id=f"distil_vs_bert-{variant}-{samples}-{length}", status="ok",
                     params=params, metrics={"quality": 0.8}, measurements={"train": train})


def test_length_predicts_cost_better_than_the_number_of_examples_when_both_vary(tmp_path):
    for variant, seconds in (("bert", 2e-3), ("distil", 1e-3)):
        for samples in (200, 400, 800):
            for length in (32, 64):
                result = run_result(variant, samples, length, seconds)
                save_result(result, tmp_path / "distil_vs_bert" / result.run_id)
    table = analysis.length_vs_count(collect("distil_vs_bert", tmp_path)).set_index(["model", "y"])
    assert set(table.index) == {(m, y) for m in ("minilm", "minilm-half") for y in ("energy_j", "wall_s")}
    assert (table["runs"] == 6).all()
    assert table["r2_tokens"].min() > 0.999  # cost is exactly tokens x a per-token price
    assert (table["r2_examples"] < 0.9).all() and (table["tokens_minus_examples"] > 0.1).all()
    assert table.loc[("minilm", "energy_j"), "source"] == "codecarbon-estimate"
    assert table.loc[("minilm", "wall_s"), "source"] == "measured (wall clock)"


def test_the_majority_baseline_is_the_share_of_the_commonest_label():
    from lowres.classification_metrics import majority_share

    assert majority_share([1, 0, 1, 1]) == 0.75 and math.isnan(majority_share([]))
