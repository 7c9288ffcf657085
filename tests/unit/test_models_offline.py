"""The registry resolves offline defaults without network and fails fast and clearly otherwise."""
import time

import pytest

from lowres import models


def test_tiny_pair_mirrors_bert_vs_distilbert():
    bert = models.load_model("tiny-bert", "mlm").config
    distil = models.load_model("tiny-distilbert", "mlm").config
    assert distil.n_layers * 2 == bert.num_hidden_layers
    assert distil.dim == bert.hidden_size and distil.vocab_size == bert.vocab_size == 30522


def test_tiny_models_are_deterministic_and_reload_through_from_pretrained():
    a = models.load_model("tiny-bert", "classification", num_labels=3)
    b = models.load_model("tiny-bert", "classification", num_labels=3)
    assert a.config.num_labels == 3
    assert all((pa == pb).all() for (_, pa), (_, pb) in zip(a.bert.named_parameters(), b.bert.named_parameters()))


def test_tiny_t5_generates_with_wordpiece_tokenizer():
    import torch

    tok, model = models.load_tokenizer("tiny-t5"), models.load_model("tiny-t5", "seq2seq")
    out = model.generate(**tok(["what color is this?"], return_tensors="pt"), max_new_tokens=3)
    assert out.shape[0] == 1 and tok.vocab_size == 30522 and isinstance(out, torch.Tensor)


def test_minilm_is_the_bundled_pretrained_encoder():
    emb = models.load_embedder("minilm")
    vec = emb.encode(["a photo of a red shirt", "a red shirt in a photo", "the stock market fell"],
                     normalize_embeddings=True)
    assert vec.shape == (3, 384)
    assert vec[0] @ vec[1] > vec[0] @ vec[2] + 0.3  # pretrained: paraphrases are close


def test_uncached_hub_id_fails_at_once_with_instructions(monkeypatch):
    monkeypatch.delenv("LOWRES_ONLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(models.ModelNotAvailable, match=r"huggingface-cli download some-org/not-cached.*local directory"):
        models.resolve("some-org/not-cached")
    assert time.perf_counter() - start < 2.0


def test_local_directory_paths(tmp_path):
    assert models.resolve(str(models.build_tiny("tiny-bert"))).endswith("tiny-bert-v3")
    with pytest.raises(models.ModelNotAvailable, match="has no config.json"):
        models.resolve(str(tmp_path))
    with pytest.raises(models.ModelNotAvailable, match="does not exist"):
        models.resolve("./no/such/dir")


def test_count_parameters():
    counts = models.count_parameters(models.load_model("tiny-bert", "classification"))
    assert counts["total"] == counts["trainable"] > 4_000_000
