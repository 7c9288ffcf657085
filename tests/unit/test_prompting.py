"""Prompting: balanced demonstrations, metrics, embedding zero/few-shot with MiniLM, generative scoring paths."""
from collections import Counter

import numpy as np
import pytest

from lowres import prompting as P

TRAIN = [("an absolute delight, funny and warm", 1), ("a masterpiece of acting and heart", 1),
         ("I loved every minute of it", 1), ("beautiful, moving and brilliant", 1),
         ("a dull, tedious mess", 0), ("boring and painfully bad", 0),
         ("a waste of time, awful script", 0), ("I hated it, dreadful", 0)]
TEST = [{"text": "wonderful film, full of joy", "label": 1}, {"text": "a brilliant and charming story", "label": 1},
        {"text": "great performances, I loved it", "label": 1}, {"text": "terrible, ugly and stupid", "label": 0},
        {"text": "the worst movie I have seen", "label": 0}, {"text": "tedious, boring and awful", "label": 0}]


def test_draw_balanced_is_seeded_and_balanced():
    rows = [(f"t{i}", i % 3) for i in range(30)]
    demos = P.draw_balanced(rows, 7, seed=1)
    counts = Counter(y for _, y in demos)
    assert len(demos) == 7 and sorted(counts.values()) == [2, 2, 3]
    assert P.draw_balanced(rows, 7, seed=1) == demos and P.draw_balanced(rows, 7, seed=2) != demos
    with pytest.raises(ValueError):
        P.draw_balanced(rows[:3], 6)


def test_classification_metrics_and_spread():
    from lowres.classification_metrics import classification_scores

    scores = classification_scores([1, 0, 1, 1], [1, 0, 0, 1])
    assert scores["accuracy"] == 0.75
    # label 1: tp 2, pred 3, gold 2 -> 0.8; label 0: tp 1, pred 1, gold 2 -> 2/3
    assert scores["f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert classification_scores([1, 1], [0, 0])["f1"] == 0.0
    results = [P.PromptResult("generative", 0, t, 2, acc, acc, 1.0, 5.0) for t, acc in (("a", 0.5), ("b", 0.9))]
    assert P.template_spread(results)["spread"] == pytest.approx(0.4)


def test_knn_vote_hand_case():
    similarity = np.array([[0.9, 0.8, 0.2], [0.2, 0.3, 0.95]])
    assert P.knn_vote(similarity, np.array([0, 1, 1]), [0, 1], 2).tolist() == [0, 1]  # 0.9 vs 0.8; 0.95 + 0.3 vs 0.2
    assert P.knn_vote(similarity, np.array([0, 1, 1]), [0, 1], 3).tolist() == [1, 1]


@pytest.fixture(scope="module")
def minilm():
    """One torch thread while this module runs: tiny batches gain nothing from two, and on a shared CPU
    a second thread mostly waits (restored afterwards)."""
    import torch

    from lowres.models import load_embedder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_embedder("minilm")
    torch.set_num_threads(threads)


def test_embedding_prompting_on_tiny_sentiment_set(minilm):
    zero = P.zero_shot_embedding(TEST, minilm)
    assert zero.method == "embedding-zero-shot" and zero.n == 6 and zero.accuracy >= 5 / 6
    assert zero.prompt_tokens_per_example > 3 and zero.latency_ms_per_example > 0
    support = P.draw_balanced(TRAIN, 8, seed=0)
    proto = P.few_shot_embedding(TEST, support, minilm, "prototype")
    knn = P.few_shot_embedding(TEST, support, minilm, "knn", n_neighbors=3)
    assert proto.shots == 4 and proto.accuracy >= 5 / 6 and knn.accuracy >= 4 / 6
    assert set(knn.predictions) <= {0, 1} and "predictions" not in knn.metrics()
    encoded = P.encode_texts(TEST, minilm, batch_size=1)  # encoded once, shared by every configuration
    shared = P.few_shot_embedding(TEST, support, minilm, "prototype", encoded=encoded)
    assert shared.predictions == proto.predictions
    assert shared.prompt_tokens_per_example == proto.prompt_tokens_per_example
    assert shared.latency_ms_per_example >= 1e3 * encoded.seconds / len(TEST)  # charged the shared encoding
    assert P.zero_shot_embedding(TEST, minilm, encoded=encoded).predictions == zero.predictions
    with pytest.raises(ValueError, match="encoded holds 6 vectors for 2 rows"):
        P.zero_shot_embedding(TEST[:2], minilm, encoded=encoded)


def test_format_prompt_with_demonstrations():
    prompt = P.format_prompt("new text", "Review: {text}\nSentiment:", [("good", 1), ("bad", 0)])
    assert prompt == ("Review: good\nSentiment: positive\n\nReview: bad\nSentiment: negative\n\n"
                      "Review: new text\nSentiment:")


def test_generative_scoring_seq2seq_and_causal_are_batch_invariant():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from lowres.models import load_model, load_tokenizer

    tokenizer = load_tokenizer("tiny-t5")
    prompts = ["short", "a much longer prompt that forces padding in the batch", "mid length text"]
    t5 = load_model("tiny-t5", "seq2seq")
    np.testing.assert_allclose(P.label_log_likelihoods(prompts, t5, tokenizer, batch_size=3),
                               P.label_log_likelihoods(prompts, t5, tokenizer, batch_size=1), rtol=1e-4, atol=1e-4)
    torch.manual_seed(0)
    gpt = GPT2LMHeadModel(GPT2Config(vocab_size=tokenizer.vocab_size, n_embd=32, n_layer=1, n_head=2, n_positions=128,
                                     bos_token_id=None, eos_token_id=None))
    batched = P.label_log_likelihoods(prompts, gpt, tokenizer, batch_size=3)
    assert batched.shape == (3, 2) and np.all(batched < 0)
    np.testing.assert_allclose(batched, P.label_log_likelihoods(prompts, gpt, tokenizer, batch_size=1), rtol=1e-4,
                               atol=1e-4)
    zero = P.generative_classify(TEST, t5, tokenizer)
    few = P.generative_classify(TEST, t5, tokenizer, demonstrations=P.draw_balanced(TRAIN, 2, seed=0))
    assert few.shots == 2 and few.prompt_tokens_per_example > zero.prompt_tokens_per_example
    assert set(zero.predictions) <= {0, 1}
