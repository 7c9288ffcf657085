"""Extractive question answering (SQuAD v1.1): span features, a Lightning module, answer text, EM/F1.

Preprocessing is transformers' documented `question-answering` recipe: each (question, context) pair is
tokenized with truncation="only_second", a stride and offset mappings, so a long context becomes several
overlapping features. A training feature is labelled with the answer's start/end token, or with the [CLS]
token (0, 0) when the answer is not inside that window. An evaluation feature keeps its offsets (None
outside the context) so the best span maps back to characters of the context. Scores: the official SQuAD
normalization, EM and F1, max over gold answers (`lowres.qa_metrics`).

Both twins of a comparison get the same inputs (input_ids, attention_mask): DistilBERT has no segment
embeddings, so token_type_ids are dropped, as the classification DataModule does for sentence pairs.
"""
from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import torch

from lowres.data.corpora import subsample
from lowres.data.modules import TokenDataModule, TokenizedDataset
from lowres.qa_metrics import squad_scores
from lowres.train import HFModule

MODEL_INPUTS = ("input_ids", "attention_mask")


def split_questions(questions: list[dict], passages: list[dict], train_size: int | None = None,
                    val_size: int | None = None, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Train/validation questions split by article (title of the gold passage), so no validation context
    was seen in training; then seeded subsets. Without `val_size`, a fifth of the questions validate."""
    article = {p["passage_id"]: p.get("title") or p["passage_id"] for p in passages}
    by_article = defaultdict(list)
    for q in questions:
        by_article[article.get(q["gold_passage_id"], q["gold_passage_id"])].append(q)
    names = sorted(by_article)
    random.Random(seed).shuffle(names)
    wanted = val_size or max(1, len(questions) // 5)
    train, val = [], []
    for name in names:
        (val if len(val) < wanted else train).extend(by_article[name])
    if not train:
        raise ValueError(f"val_size={val_size} leaves no article for training ({len(questions)} questions, "
                         f"{len(names)} articles)")
    return subsample(train, train_size, seed), subsample(val, val_size, seed)


def tokenize(tokenizer, questions: list[dict], max_length: int, stride: int):
    """Question + context windows (the recipe's call): overflow features, offsets, sample mapping."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer; QA needs offset mappings")
    return tokenizer([q["question"].lstrip() for q in questions], [q["context"] for q in questions],
                     truncation="only_second", max_length=max_length, stride=stride,
                     return_overflowing_tokens=True, return_offsets_mapping=True)


def answer_token_span(offsets: list, sequence_ids: list, start_char: int, end_char: int) -> tuple[int, int]:
    """Token indices of the answer's first and last token in one feature; (0, 0) when it lies outside."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def train_features(tokenizer, questions: list[dict], max_length: int, stride: int) -> TokenizedDataset:
    """Features labelled with start_positions/end_positions of the first gold answer."""
    enc = tokenize(tokenizer, questions, max_length, stride)
    features = []
    for i, example in enumerate(enc["overflow_to_sample_mapping"]):
        q = questions[example]
        start_char = q["answer_starts"][0]
        start, end = answer_token_span(enc["offset_mapping"][i], enc.sequence_ids(i), start_char,
                                       start_char + len(q["answers"][0]))
        features.append({**{k: enc[k][i] for k in MODEL_INPUTS}, "start_positions": start, "end_positions": end})
    return TokenizedDataset(features)


def eval_features(tokenizer, questions: list[dict], max_length: int, stride: int) -> tuple[TokenizedDataset, list[dict]]:
    """Model inputs per feature, plus {example, offsets} per feature (offsets None outside the context)."""
    enc = tokenize(tokenizer, questions, max_length, stride)
    inputs, meta = [], []
    for i, example in enumerate(enc["overflow_to_sample_mapping"]):
        ids = enc.sequence_ids(i)
        offsets = [o if ids[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][i])]
        inputs.append({k: enc[k][i] for k in MODEL_INPUTS})
        meta.append({"example": example, "offsets": offsets})
    return TokenizedDataset(inputs), meta


class QADataModule(TokenDataModule):
    """SQuAD-style questions -> span features; padding per batch (or to max_length) by DataCollatorWithPadding."""

    def __init__(self, train_questions: list[dict], val_questions: list[dict], tokenizer, doc_stride: int = 128,
                 **kwargs):
        super().__init__(tokenizer, **kwargs)
        if not 0 < doc_stride < self.max_length:
            raise ValueError(f"doc_stride must be in (0, max_length={self.max_length}), got {doc_stride}")
        self.train_questions, self.val_questions, self.doc_stride = train_questions, val_questions, doc_stride
        self.val_meta: list[dict] = []

    def build_sets(self) -> tuple:
        train = train_features(self.tokenizer, self.train_questions, self.max_length, self.doc_stride)
        val, self.val_meta = eval_features(self.tokenizer, self.val_questions, self.max_length, self.doc_stride)
        return train, val


class QAModule(HFModule):
    """Span prediction; the model's own loss (mean of start and end cross-entropy). Evaluation features carry no
    answer positions: their steps have no loss (HFModule.logged_forward logs none)."""


@torch.no_grad()
def span_logits(model, dataloader, device: str | torch.device = "cpu") -> list[tuple[np.ndarray, np.ndarray]]:
    """(start_logits, end_logits) per feature, cut to the feature's unpadded length."""
    model.eval().to(device)
    out = []
    for batch in dataloader:
        batch = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        pred = model(**batch)
        for start, end, mask in zip(pred.start_logits, pred.end_logits, batch["attention_mask"]):
            n = int(mask.sum())
            out.append((start[:n].float().cpu().numpy(), end[:n].float().cpu().numpy()))
    return out


def best_answer(context: str, features: list[tuple[np.ndarray, np.ndarray, list]], n_best: int = 20,
                max_answer_tokens: int = 30) -> str:
    """The highest start+end logit span inside the context over all features of one question ('' if none)."""
    best, best_score = "", -np.inf
    for start_logits, end_logits, offsets in features:
        starts = np.argsort(start_logits)[::-1][:n_best]
        ends = np.argsort(end_logits)[::-1][:n_best]
        for s in starts:
            for e in ends:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_tokens:
                    continue
                score = start_logits[s] + end_logits[e]
                if score > best_score:
                    best, best_score = context[offsets[s][0]:offsets[e][1]], score
    return best


def predict_answers(model, datamodule: QADataModule, device="cpu", n_best: int = 20,
                    max_answer_tokens: int = 30) -> list[str]:
    """Answer text for every validation question (features of one question pooled)."""
    logits = span_logits(model, datamodule.val_dataloader(), device)
    per_example = defaultdict(list)
    for (start, end), meta in zip(logits, datamodule.val_meta):
        per_example[meta["example"]].append((start, end, meta["offsets"][:len(start)]))
    return [best_answer(q["context"], per_example[i], n_best, max_answer_tokens)
            for i, q in enumerate(datamodule.val_questions)]


def evaluate_qa(model, datamodule: QADataModule, device="cpu") -> dict:
    """SQuAD exact match and F1 (fractions) on the validation questions."""
    predictions = predict_answers(model, datamodule, device)
    return squad_scores(predictions, [q["answers"] for q in datamodule.val_questions])
