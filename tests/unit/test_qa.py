"""Extractive QA: offset-mapping preprocessing puts each answer on the right token span (long contexts split
with a stride included), span selection maps back to context characters, SQuAD EM/F1 end to end, and the
padding modes' token counts of QA features."""
import types

import pytest
import torch

from lowres import models, qa
from lowres.data import load_corpus
from lowres.qa_metrics import normalize_answer

from conftest import requires_real_data

CONTEXT = "Super Bowl 50 was won by the Denver Broncos, who beat the Carolina Panthers 24-10 in 2016."


def question(q: str, answer: str, context: str = CONTEXT, qid: str = "q") -> dict:
    return {"id": qid, "question": q, "answers": [answer], "answer_starts": [context.index(answer)],
            "gold_passage_id": "p", "context": context}


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_tokenizer("tiny-bert")


def span_text(feature: dict, offsets: list, context: str) -> str:
    start, end = feature["start_positions"], feature["end_positions"]
    return context[offsets[start][0]:offsets[end][1]]


def test_answer_token_span_by_hand():
    # tokens: [CLS] q [SEP] | "denver"(0,6) "bro"(7,10) "##ncos"(10,14) "won"(15,18) | [SEP]
    offsets = [(0, 0), (0, 3), (0, 0), (0, 6), (7, 10), (10, 14), (15, 18), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, 1, None]
    assert qa.answer_token_span(offsets, sequence_ids, 7, 14) == (4, 5)  # "Broncos": both word pieces
    assert qa.answer_token_span(offsets, sequence_ids, 0, 14) == (3, 5)  # "Denver Broncos"
    assert qa.answer_token_span(offsets, sequence_ids, 15, 18) == (6, 6)  # a one-token answer at the edge
    assert qa.answer_token_span(offsets, sequence_ids, 15, 25) == (0, 0)  # runs past the window -> [CLS]


def test_train_features_label_the_answer_tokens(tokenizer):
    questions = [question("Who won Super Bowl 50?", "Denver Broncos"), question("What was the score?", "24-10"),
                 question("When?", "2016")]
    features = qa.train_features(tokenizer, questions, max_length=128, stride=32)
    assert len(features) == 3  # short contexts: one feature each
    enc = qa.tokenize(tokenizer, questions, 128, 32)
    for i, (feature, q) in enumerate(zip(features, questions)):
        assert set(feature) == {"input_ids", "attention_mask", "start_positions", "end_positions"}
        assert 0 < feature["start_positions"] <= feature["end_positions"]
        assert enc.sequence_ids(i)[feature["start_positions"]] == 1  # inside the context, not the question
        assert span_text(feature, enc["offset_mapping"][i], CONTEXT) == q["answers"][0]
    first = features[0]
    assert tokenizer.decode(first["input_ids"][first["start_positions"]:first["end_positions"] + 1]) == "denver broncos"


def long_context(n_sentences: int = 40) -> str:
    filler = [f"Sentence number {i} talks about the weather in a town with no name." for i in range(n_sentences)]
    filler[27] = "The lighthouse keeper was called Oswin Tarrant and lived alone."
    return " ".join(filler)


def test_long_context_is_split_with_stride_and_only_windows_holding_the_answer_are_labelled(tokenizer):
    context = long_context()
    q = question("Who kept the lighthouse?", "Oswin Tarrant", context)
    enc = qa.tokenize(tokenizer, [q], max_length=64, stride=16)
    features = qa.train_features(tokenizer, [q], max_length=64, stride=16)
    assert len(features) == len(enc["input_ids"]) >= 8 and all(len(f["input_ids"]) <= 64 for f in features)
    # consecutive windows overlap by exactly `stride` context tokens
    for i in range(len(features) - 1):
        ctx = [o for o, s in zip(enc["offset_mapping"][i], enc.sequence_ids(i)) if s == 1]
        nxt = [o for o, s in zip(enc["offset_mapping"][i + 1], enc.sequence_ids(i + 1)) if s == 1]
        assert ctx[-16:] == nxt[:16]
    labelled = [i for i, f in enumerate(features) if f["start_positions"] > 0]
    assert 1 <= len(labelled) <= 2  # the answer sits in one window, or two when it falls in an overlap
    for i in labelled:
        assert span_text(features[i], enc["offset_mapping"][i], context) == "Oswin Tarrant"
    unlabelled = [f for i, f in enumerate(features) if i not in labelled]
    assert unlabelled and all((f["start_positions"], f["end_positions"]) == (0, 0) for f in unlabelled)


def test_eval_features_keep_context_offsets_only(tokenizer):
    context = long_context()
    questions = [question("Who kept the lighthouse?", "Oswin Tarrant", context), question("When?", "2016")]
    inputs, meta = qa.eval_features(tokenizer, questions, max_length=64, stride=16)
    assert len(inputs) == len(meta) and [m["example"] for m in meta][-1] == 1 and meta[0]["example"] == 0
    assert set(inputs[0]) == {"input_ids", "attention_mask"}  # no token_type_ids: DistilBERT has none
    for features, m in zip(inputs, meta):
        assert len(m["offsets"]) == len(features["input_ids"])
        assert m["offsets"][0] is None and m["offsets"][-1] is None  # [CLS], final [SEP]
        assert any(o is not None for o in m["offsets"])


def test_best_answer_takes_the_best_valid_span_over_all_windows():
    context = "alpha beta gamma delta"
    offsets_a = [None, None, None, (0, 5), (6, 10), None]  # [CLS] q [SEP] alpha beta [SEP]
    offsets_b = [None, None, None, (11, 16), (17, 22), None]  # second window: gamma delta
    low = [0.0] * 6
    a = (torch.tensor([9.0, 0, 0, 1, 0, 0]).numpy(), torch.tensor([9.0, 0, 0, 0, 1, 0]).numpy(), offsets_a)
    b = (torch.tensor([0.0, 0, 0, 3, 0, 0]).numpy(), torch.tensor([0.0, 0, 0, 0, 3, 0]).numpy(), offsets_b)
    assert qa.best_answer(context, [a]) == "alpha beta"  # [CLS] scores highest but is not in the context
    assert qa.best_answer(context, [a, b]) == "gamma delta"  # 3 + 3 beats 1 + 1
    backwards = (torch.tensor([0.0, 0, 0, 0, 5, 0]).numpy(), torch.tensor([0.0, 0, 0, 5, 0, 0]).numpy(), offsets_a)
    assert qa.best_answer(context, [backwards]) == "beta"  # end before start is never chosen
    assert qa.best_answer(context, [(torch.tensor(low).numpy(), torch.tensor(low).numpy(), [None] * 6)]) == ""
    assert qa.best_answer(context, [b], max_answer_tokens=1) in {"gamma", "delta"}


class OracleQA(torch.nn.Module):
    """Puts the highest start/end logits on the first occurrence of `answers[i]`'s tokens in the context, shifted
    by `shift` tokens at the end: a stand-in model whose right answers are known."""

    def __init__(self, tokenizer, answers: list[str], shift: int = 0):
        super().__init__()
        self.targets = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
        self.shift = shift

    def forward(self, input_ids, attention_mask):
        start = torch.zeros(input_ids.shape, dtype=torch.float)
        end = torch.zeros(input_ids.shape, dtype=torch.float)
        for row, ids in enumerate(input_ids.tolist()):
            context_from = ids.index(102) + 1  # after the question's [SEP]
            for target in self.targets:
                for k in range(context_from, len(ids) - len(target) + 1):
                    if ids[k:k + len(target)] == target:
                        start[row, k] = end[row, k + len(target) - 1 + self.shift] = 10.0
        return types.SimpleNamespace(start_logits=start, end_logits=end)


def qa_datamodule(tokenizer, questions, **kwargs):
    dm = qa.QADataModule(questions[:1], questions, tokenizer, batch_size=kwargs.pop("batch_size", 2), **kwargs)
    dm.setup()
    return dm


def test_predictions_pool_windows_and_score_with_squad_em_f1(tokenizer):
    questions = [question("Who kept the lighthouse?", "Oswin Tarrant", long_context()),
                 question("Who lost?", "Carolina Panthers")]
    dm = qa_datamodule(tokenizer, questions, max_length=64, doc_stride=16)
    assert len(dm.val_meta) > len(questions)  # the long context became several windows
    oracle = OracleQA(tokenizer, ["oswin tarrant", "carolina panthers"])
    assert qa.predict_answers(oracle, dm) == ["Oswin Tarrant", "Carolina Panthers"]  # original casing, from offsets
    assert qa.evaluate_qa(oracle, dm) == {"exact_match": 1.0, "f1": 1.0, "n": 2}
    # one token too far: "Oswin Tarrant and" (P 2/3, R 1 -> F1 0.8) and "Carolina Panthers 24" (same), EM 0
    shifted = qa.evaluate_qa(OracleQA(tokenizer, ["oswin tarrant", "carolina panthers"], shift=1), dm)
    assert shifted["exact_match"] == 0.0 and shifted["f1"] == pytest.approx(0.8)


@pytest.mark.parametrize("padding", ["dynamic", "length-grouped", "max_length"])
def test_qa_feature_token_counts_per_padding_mode(tokenizer, padding):
    kb = load_corpus("synthetic-kb", 30)
    dm = qa.QADataModule(kb.questions[:40], kb.questions[40:], tokenizer, batch_size=8, max_length=128,
                         doc_stride=32, padding=padding)
    dm.setup()
    counts = dm.epoch_token_counts("train")
    lengths = dm.train_set.lengths()
    assert counts["real_tokens"] == sum(lengths) and counts["samples"] == len(lengths) == 40
    if padding == "max_length":
        assert counts["padded_tokens"] == 40 * 128
    else:  # each batch padded to its longest feature, in the sampler's order
        order = list(dm.train_sampler())
        batches = [order[i:i + 8] for i in range(0, len(order), 8)]
        assert counts["padded_tokens"] == sum(len(b) * max(lengths[j] for j in b) for b in batches)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "start_positions", "end_positions"}


def test_split_by_article_and_bad_stride(tokenizer):
    kb = load_corpus("synthetic-kb", 50)
    train, val = qa.split_questions(kb.questions, kb.passages, val_size=20, seed=0)
    assert len(val) == 20 and not {q["gold_passage_id"] for q in train} & {q["gold_passage_id"] for q in val}
    assert qa.split_questions(kb.questions, kb.passages, seed=3) == qa.split_questions(kb.questions, kb.passages,
                                                                                       seed=3)
    with pytest.raises(ValueError, match=r"doc_stride must be in \(0, max_length=64\), got 64"):
        qa.QADataModule(train, val, tokenizer, max_length=64, doc_stride=64)


@requires_real_data
def test_real_squad_answers_land_on_their_tokens(tokenizer):
    squad = load_corpus("squad")
    questions = squad.questions[:300]
    enc = qa.tokenize(tokenizer, questions, 128, 32)
    features = qa.train_features(tokenizer, questions, 128, 32)
    exact = labelled = 0
    for i, feature in enumerate(features):
        if feature["start_positions"] == 0:
            continue
        q = questions[enc["overflow_to_sample_mapping"][i]]
        text = span_text(feature, enc["offset_mapping"][i], q["context"])
        assert normalize_answer(q["answers"][0]) in normalize_answer(text)  # never misses the answer
        labelled += 1
        exact += text == q["answers"][0]
    # the rest are answers inside a longer token ("gold" in "golden", "5" in "50"): the recipe labels that token
    assert labelled >= 300 and exact / labelled >= 0.95
