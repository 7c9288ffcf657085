"""Corpora offline and real, and the token/padding counts energy is scaled by."""
import pytest

from lowres import models
from lowres.data import DatasetNotAvailable, check_available, load_corpus
from lowres.data.modules import ClassificationDataModule, MLMDataModule

from conftest import has_real_data, requires_real_data


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_tokenizer("tiny-bert")


def test_synthetic_corpora_are_seeded():
    assert load_corpus("synthetic-vizwiz", 50, 10, seed=1).train == load_corpus("synthetic-vizwiz", 50, 10, seed=1).train
    assert load_corpus("synthetic-vizwiz", 50, 10, seed=1).train != load_corpus("synthetic-vizwiz", 50, 10, seed=2).train
    sentiment = load_corpus("synthetic-sentiment", 400, 100)
    assert {r["label"] for r in sentiment.train} == {0, 1}


def test_synthetic_kb_answer_lies_in_exactly_its_gold_passage():
    kb = load_corpus("synthetic-kb", 40)
    by_id = {p["passage_id"]: p["text"] for p in kb.passages}
    for q in kb.questions:
        assert q["answers"][0] in by_id[q["gold_passage_id"]]
        holders = [pid for pid, text in by_id.items() if q["context"] == text]
        assert holders == [q["gold_passage_id"]]


def test_unknown_dataset_and_missing_data_dir(monkeypatch, tmp_path):
    with pytest.raises(DatasetNotAvailable, match=r"unknown dataset 'sst-2'; valid: mrpc, squad, sst2"):
        check_available("sst-2")
    monkeypatch.delenv("LOWRES_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotAvailable, match="needs LOWRES_DATA_DIR"):
        check_available("sst2")
    monkeypatch.setenv("LOWRES_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotAvailable, match=r"missing sst2/train.tsv, sst2/dev.tsv"):
        check_available("sst2")
    monkeypatch.delenv("LOWRES_ONLINE", raising=False)
    with pytest.raises(DatasetNotAvailable, match="LOWRES_ONLINE=1"):
        check_available("rte")


def counts(corpus, tokenizer, padding, batch_size=4, max_length=16):
    dm = ClassificationDataModule(corpus, tokenizer, batch_size=batch_size, max_length=max_length, padding=padding)
    dm.setup()
    return dm, dm.epoch_token_counts("train")


def test_token_counts_per_padding_mode(tokenizer):
    corpus = load_corpus("synthetic-sentiment", 64, 8)
    dm, dynamic = counts(corpus, tokenizer, "dynamic")
    _, fixed = counts(corpus, tokenizer, "max_length")
    _, grouped = counts(corpus, tokenizer, "length-grouped")
    real = sum(dm.train_set.lengths())
    assert dynamic["real_tokens"] == fixed["real_tokens"] == grouped["real_tokens"] == real
    assert fixed["padded_tokens"] == 64 * 16
    assert real <= grouped["padded_tokens"] <= dynamic["padded_tokens"] < fixed["padded_tokens"]
    assert dynamic["samples"] == 64 and dynamic["batches"] == 16


def test_bad_padding_mode_names_valid_ones(tokenizer):
    with pytest.raises(ValueError, match=r"unknown padding mode 'longest'; valid: dynamic, length-grouped, max_length"):
        ClassificationDataModule(load_corpus("synthetic-sentiment", 8, 8), tokenizer, padding="longest")


def test_mlm_batches_mask_about_15_percent(tokenizer):
    dm = MLMDataModule(load_corpus("synthetic-vizwiz", 256, 16), tokenizer, batch_size=256, max_length=32)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    masked = (batch["labels"] != -100).sum().item()
    maskable = (batch["attention_mask"].sum() - 2 * 256).item()  # no [CLS]/[SEP]
    assert 0.10 < masked / maskable < 0.20
    assert dm.train_counter.real_tokens == batch["attention_mask"].sum().item()


@requires_real_data
def test_real_glue_and_squad_files():
    sst2 = load_corpus("sst2")
    assert (len(sst2.train), len(sst2.val)) == (67349, 872)
    assert sst2.train[0] == {"text": "hide new secretions from the parental units", "text_pair": None, "label": 0}
    mrpc = load_corpus("mrpc")
    assert (len(mrpc.train), len(mrpc.val), mrpc.is_pair) == (3668, 408, True)
    assert sum(r["label"] for r in mrpc.val) == 279
    squad = load_corpus("squad")
    assert (len(squad.passages), len(squad.questions)) == (2067, 10570)
    by_id = {p["passage_id"]: p["text"] for p in squad.passages}
    assert all(q["answers"][0] in by_id[q["gold_passage_id"]] for q in squad.questions[:500])


@pytest.mark.skipif(not has_real_data("vizwiz/skills_train.csv"), reason="VizWiz files absent from LOWRES_DATA_DIR")
def test_real_vizwiz_questions():
    viz = load_corpus("vizwiz")
    assert (len(viz.train), len(viz.val)) == (14239, 2245)
    assert all(isinstance(q, str) and q for q in viz.train[:100])
    assert load_corpus("vizwiz", train_size=100, seed=3).train == load_corpus("vizwiz", train_size=100, seed=3).train
