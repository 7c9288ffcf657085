"""Training-free classification: zero/few-shot prompting, scored for quality and cost.

Two families, both returning a `PromptResult` (accuracy, macro-F1, latency per example, prompt tokens):
- Generative label scoring: a seq2seq or causal LM scores each label's verbalizer (its log-likelihood given
  the prompt); the best-scoring label wins. Zero-shot, or k-shot with demonstrations drawn with a seed and
  balanced by label. Running several templates (`template_spread`) shows how much the prompt alone moves
  accuracy. Needs a pretrained LM (flan-t5 with hub access); offline models are untrained.
- Embedding-based (offline default, pretrained `minilm`): zero-shot by cosine similarity to label
  descriptions; few-shot by class prototypes (mean of k examples per class) or k-nearest neighbours.

Rows are `(text, label)` pairs or dicts with "text" and "label"; labels are ints 0..L-1.
"""
from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from typing import Sequence

import numpy as np

from lowres.classification_metrics import classification_scores

SENTIMENT_DESCRIPTIONS = {0: ["This is a negative review.", "Terrible, boring and disappointing."],
                          1: ["This is a positive review.", "Wonderful, moving and delightful."]}
SENTIMENT_VERBALIZERS = {0: "negative", 1: "positive"}
SENTIMENT_TEMPLATES = ("Review: {text}\nSentiment (positive or negative):",
                       "{text}\nIs this movie review positive or negative?",
                       "Classify the sentiment of this sentence as positive or negative.\n\n{text}")


@dataclasses.dataclass
class PromptResult:
    method: str  # embedding-zero-shot | embedding-prototype | embedding-knn | generative
    shots: int  # demonstrations (generative) or labelled examples per class (embedding); 0 = zero-shot
    template: str | None
    n: int
    accuracy: float
    macro_f1: float
    latency_ms_per_example: float  # wall time of encoding + scoring / n (batched)
    prompt_tokens_per_example: float
    setup_s: float = 0.0  # one-off work: embedding label descriptions / support examples
    predictions: list = dataclasses.field(default_factory=list, repr=False)

    def metrics(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "predictions"}


# ---------------------------------------------------------------- data helpers and metrics

def as_pairs(rows: Sequence) -> tuple[list[str], list[int]]:
    pairs = [(r["text"], r["label"]) if isinstance(r, dict) else (r[0], r[1]) for r in rows]
    return [t for t, _ in pairs], [int(y) for _, y in pairs]


def draw_balanced(rows: Sequence, k: int, seed: int = 0) -> list[tuple[str, int]]:
    """k labelled examples, as balanced across labels as k allows (extra ones go to random labels), shuffled."""
    texts, labels = as_pairs(rows)
    rng = random.Random(seed)
    by_label = {y: [i for i, lab in enumerate(labels) if lab == y] for y in sorted(set(labels))}
    quota = {y: k // len(by_label) for y in by_label}
    for y in rng.sample(sorted(by_label), k % len(by_label)):
        quota[y] += 1
    for y, q in quota.items():
        if q > len(by_label[y]):
            raise ValueError(f"asked for {q} examples of label {y}, only {len(by_label[y])} available")
    picked = [i for y in sorted(by_label) for i in rng.sample(by_label[y], quota[y])]
    rng.shuffle(picked)
    return [(texts[i], labels[i]) for i in picked]


def template_spread(results: Sequence[PromptResult], metric: str = "accuracy") -> dict:
    """Prompt sensitivity: mean, std, min, max and max-min of a metric across templates."""
    values = np.asarray([getattr(r, metric) for r in results], dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()), "spread": float(values.max() - values.min()), "n_templates": len(values)}


def _result(method, shots, template, labels, predictions, seconds, tokens, setup_s=0.0) -> PromptResult:
    n = len(labels)
    scores = classification_scores(predictions, labels)
    return PromptResult(method, shots, template, n, scores["accuracy"], scores["f1"],
                        1e3 * seconds / max(n, 1), float(np.mean(tokens)) if len(tokens) else float("nan"),
                        setup_s, [int(p) for p in predictions])


# ---------------------------------------------------------------- embedding-based (offline default)

def _encode(texts: Sequence[str], embedder, batch_size: int) -> np.ndarray:
    return np.asarray(embedder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def _token_counts(texts: Sequence[str], embedder) -> list[int]:
    limit = getattr(embedder, "max_seq_length", None) or 512
    return [min(len(ids), limit) for ids in embedder.tokenizer(list(texts))["input_ids"]]


def _normalize(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)


def label_embeddings(descriptions: dict, embedder, batch_size: int = 32) -> tuple[list[int], np.ndarray]:
    """One unit vector per label: the normalized mean of its description(s)."""
    labels = sorted(descriptions)
    vectors = [_encode([d] if isinstance(d, str) else d, embedder, batch_size).mean(axis=0)
               for d in (descriptions[y] for y in labels)]
    return labels, _normalize(np.stack(vectors))


@dataclasses.dataclass(frozen=True)
class EncodedTexts:
    """Scored texts encoded once and the seconds that took: every embedding configuration compares the same
    text vectors, so a sweep over shots encodes each text once and charges each configuration that time."""
    vectors: np.ndarray
    seconds: float
    tokens: list


def encode_texts(rows: Sequence, embedder, batch_size: int = 64) -> EncodedTexts:
    """Normalized embeddings of the rows' texts (batch_size=1: one at a time, as when serving) and their cost."""
    texts, _ = as_pairs(rows)
    start = time.perf_counter()
    vectors = _encode(texts, embedder, batch_size)
    return EncodedTexts(vectors, time.perf_counter() - start, _token_counts(texts, embedder))


def _encoded(rows: Sequence, embedder, batch_size: int, encoded: EncodedTexts | None) -> EncodedTexts:
    if encoded is None:
        return encode_texts(rows, embedder, batch_size)
    if len(encoded.vectors) != len(rows):
        raise ValueError(f"encoded holds {len(encoded.vectors)} vectors for {len(rows)} rows")
    return encoded


def zero_shot_embedding(rows: Sequence, embedder, descriptions: dict = SENTIMENT_DESCRIPTIONS,
                        batch_size: int = 64, encoded: EncodedTexts | None = None) -> PromptResult:
    """Predict the label whose description embedding is most similar (cosine) to the text's.
    `encoded` = `encode_texts(rows, embedder)` reuses those vectors; its seconds count in the latency."""
    _, gold = as_pairs(rows)
    start = time.perf_counter()
    labels, centroids = label_embeddings(descriptions, embedder)
    setup_s = time.perf_counter() - start
    encoded = _encoded(rows, embedder, batch_size, encoded)
    start = time.perf_counter()
    predictions = np.asarray(labels)[np.argmax(encoded.vectors @ centroids.T, axis=1)]
    seconds = encoded.seconds + time.perf_counter() - start
    return _result("embedding-zero-shot", 0, None, gold, predictions, seconds, encoded.tokens, setup_s)


def few_shot_embedding(rows: Sequence, support: Sequence, embedder, method: str = "prototype",
                       n_neighbors: int | None = None, batch_size: int = 64,
                       encoded: EncodedTexts | None = None) -> PromptResult:
    """Few-shot from labelled `support` examples: nearest class prototype, or a kNN vote (cosine-weighted).
    `encoded` as in `zero_shot_embedding`."""
    if method not in ("prototype", "knn"):
        raise ValueError(f"unknown method {method!r}; valid: prototype, knn")
    _, gold = as_pairs(rows)
    support_texts, support_labels = as_pairs(support)
    start = time.perf_counter()
    support_vectors, support_labels = _encode(support_texts, embedder, batch_size), np.asarray(support_labels)
    labels = sorted(set(support_labels.tolist()))
    prototypes = _normalize(np.stack([support_vectors[support_labels == y].mean(axis=0) for y in labels]))
    setup_s = time.perf_counter() - start
    encoded = _encoded(rows, embedder, batch_size, encoded)
    start = time.perf_counter()
    similarity = encoded.vectors @ (prototypes if method == "prototype" else support_vectors).T
    if method == "prototype":
        predictions = np.asarray(labels)[similarity.argmax(axis=1)]
    else:
        predictions = knn_vote(similarity, support_labels, labels, n_neighbors or max(1, len(support) // len(labels)))
    seconds = encoded.seconds + time.perf_counter() - start
    shots = min(Counter(support_labels.tolist()).values())
    return _result(f"embedding-{method}", shots, None, gold, predictions, seconds, encoded.tokens, setup_s)


def knn_vote(similarity: np.ndarray, support_labels: np.ndarray, labels: list, n_neighbors: int) -> np.ndarray:
    """Sum of cosine similarities of the n nearest support examples per label; ties go to the lower label."""
    n_neighbors = min(n_neighbors, similarity.shape[1])
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :n_neighbors]
    votes = np.zeros((similarity.shape[0], len(labels)))
    for j, y in enumerate(labels):
        hit = support_labels[nearest] == y
        votes[:, j] = np.where(hit, np.take_along_axis(similarity, nearest, axis=1), 0.0).sum(axis=1)
    return np.asarray(labels)[votes.argmax(axis=1)]


# ---------------------------------------------------------------- generative label scoring

def format_prompt(text: str, template: str, demonstrations: Sequence[tuple[str, int]] = (),
                  verbalizers: dict = SENTIMENT_VERBALIZERS, separator: str = "\n\n") -> str:
    """k-shot prompt: each demonstration is the template filled with its text followed by its verbalizer."""
    demos = [f"{template.format(text=t)} {verbalizers[y]}" for t, y in demonstrations]
    return separator.join([*demos, template.format(text=text)])


def _tensor_batch(tokenizer, prompts: Sequence[str], max_input_tokens: int):
    enc = tokenizer(list(prompts), padding=True, truncation=True, max_length=max_input_tokens, return_tensors="pt")
    enc.pop("token_type_ids", None)
    return enc


def _seq2seq_scores(model, tokenizer, prompts, verbalizer_ids, max_input_tokens) -> np.ndarray:
    import torch

    enc = _tensor_batch(tokenizer, prompts, max_input_tokens).to(model.device)
    columns = []
    for ids in verbalizer_ids:
        labels = torch.tensor([ids] * len(prompts), device=model.device)
        logprobs = model(**enc, labels=labels).logits.log_softmax(-1)
        columns.append(logprobs.gather(-1, labels.unsqueeze(-1)).squeeze(-1).sum(-1))
    return torch.stack(columns, dim=1).float().cpu().numpy()


def _causal_scores(model, tokenizer, prompts, verbalizer_ids, max_input_tokens) -> np.ndarray:
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    prompt_ids = [tokenizer(p, truncation=True, max_length=max_input_tokens)["input_ids"] for p in prompts]
    columns = []
    for ids in verbalizer_ids:
        rows = [p + ids for p in prompt_ids]
        width = max(map(len, rows))
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=model.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=model.device)
        logprobs = model(input_ids=input_ids, attention_mask=mask).logits.log_softmax(-1)
        # the verbalizer token at position t is predicted by the logits at t - 1
        columns.append(torch.stack([sum(logprobs[b, len(p) - 1 + j, tok] for j, tok in enumerate(ids))
                                    for b, p in enumerate(prompt_ids)]))
    return torch.stack(columns, dim=1).float().cpu().numpy()


def verbalizer_token_ids(tokenizer, verbalizers: dict, is_encoder_decoder: bool) -> list[list[int]]:
    """Target ids per label: seq2seq targets keep the tokenizer's special tokens (T5: '</s>'); causal LMs
    continue the prompt with ' word' and no special tokens."""
    if is_encoder_decoder:
        return [tokenizer(verbalizers[y])["input_ids"] for y in sorted(verbalizers)]
    return [tokenizer(" " + verbalizers[y], add_special_tokens=False)["input_ids"] for y in sorted(verbalizers)]


def label_log_likelihoods(prompts: Sequence[str], model, tokenizer, verbalizers: dict = SENTIMENT_VERBALIZERS,
                          batch_size: int = 16, max_input_tokens: int = 512,
                          length_normalize: bool = False) -> np.ndarray:
    """(n_prompts, n_labels) summed log-likelihood of each verbalizer (per token when length_normalize)."""
    import torch

    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    ids = verbalizer_token_ids(tokenizer, verbalizers, encoder_decoder)
    scorer = _seq2seq_scores if encoder_decoder else _causal_scores
    model.eval()
    with torch.inference_mode():
        scores = np.concatenate([scorer(model, tokenizer, prompts[i:i + batch_size], ids, max_input_tokens)
                                 for i in range(0, len(prompts), batch_size)])
    return scores / np.asarray([len(x) for x in ids]) if length_normalize else scores


def generative_classify(rows: Sequence, model, tokenizer, template: str = SENTIMENT_TEMPLATES[0],
                        demonstrations: Sequence[tuple[str, int]] = (), verbalizers: dict = SENTIMENT_VERBALIZERS,
                        batch_size: int = 16, max_input_tokens: int = 512) -> PromptResult:
    """Zero-shot (no demonstrations) or k-shot label scoring with one template."""
    texts, gold = as_pairs(rows)
    prompts = [format_prompt(t, template, demonstrations, verbalizers) for t in texts]
    tokens = [min(len(ids), max_input_tokens) for ids in tokenizer(prompts)["input_ids"]]
    start = time.perf_counter()
    scores = label_log_likelihoods(prompts, model, tokenizer, verbalizers, batch_size, max_input_tokens)
    seconds = time.perf_counter() - start
    predictions = np.asarray(sorted(verbalizers))[scores.argmax(axis=1)]
    return _result("generative", len(demonstrations), template, gold, predictions, seconds, tokens)
