"""Corpora by name: real datasets from LOWRES_DATA_DIR in their original formats, or seeded synthetic ones.

Shapes (plain Python, so every study and test can build them):
- TextCorpus: train/val lists of strings (MLM domain adaptation).
- ClassificationCorpus: train/val lists of {"text", "text_pair", "label"}.
- Seq2SeqCorpus: train/val lists of {"source", "target", "references"} (summaries, or SQuAD answers as text to
  generate; `references` holds every accepted answer).
- KnowledgeBase: passages [{"passage_id", "title", "text"}] and questions
  [{"id", "question", "answers", "answer_starts", "gold_passage_id", "context"}].
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import random
from pathlib import Path

from lowres.data import synthetic
from lowres.paths import data_dir


class DatasetNotAvailable(LookupError):
    """A dataset name that is unknown or whose files are missing; the message says how to provide it."""


@dataclasses.dataclass
class TextCorpus:
    name: str
    train: list
    val: list
    kind: str = "text"


@dataclasses.dataclass
class ClassificationCorpus:
    name: str
    train: list
    val: list
    num_labels: int = 2
    label_names: tuple = ("negative", "positive")
    is_pair: bool = False
    kind: str = "classification"


@dataclasses.dataclass
class Seq2SeqCorpus:
    name: str
    train: list
    val: list
    kind: str = "seq2seq"

    @property
    def task(self) -> str:
        return seq2seq_task(self.name)

    @property
    def source_template(self) -> str | None:
        """How a source was written from its parts (QA: question and context); None: the document itself."""
        return GENERATIVE_QA_TEMPLATE if self.task == "qa" else None


@dataclasses.dataclass
class KnowledgeBase:
    name: str
    passages: list
    questions: list
    kind: str = "kb"


# name -> (kind, files needed under LOWRES_DATA_DIR)
REAL = {
    "vizwiz": ("text", ["vizwiz/skills_train.csv", "vizwiz/skills_val.csv"]),
    "sst2": ("classification", ["sst2/train.tsv", "sst2/dev.tsv"]),
    "mrpc": ("classification", ["mrpc/train.tsv", "mrpc/dev.tsv"]),
    "squad": ("kb", ["squad/dev-v1.1.passages.jsonl", "squad/dev-v1.1.questions.jsonl.gz"]),
}
SYNTHETIC = {"synthetic-vizwiz": "text", "synthetic-sentiment": "classification", "synthetic-kb": "kb",
             "synthetic-summaries": "seq2seq"}
HUB_ONLY = {"rte": "classification", "mnli": "classification", "imdb": "classification", "qnli": "classification",
            "xsum": "seq2seq", "cnn_dailymail": "seq2seq", "samsum": "seq2seq"}
# hub summarization sets: (dataset id, config, document column, summary column, evaluation split)
HUB_SUMMARIZATION = {"xsum": ("EdinburghNLP/xsum", None, "document", "summary", "validation"),
                     "cnn_dailymail": ("abisee/cnn_dailymail", "3.0.0", "article", "highlights", "validation"),
                     "samsum": ("Samsung/samsum", None, "dialogue", "summary", "validation")}
GENERATIVE_QA_TEMPLATE = "question: {question} context: {context}"  # flan-t5's own SQuAD wording
QA_TRAIN_SHARE = 0.8  # generative QA on a knowledge base: this share of its passages trains, the rest evaluates


def dataset_names() -> list[str]:
    return sorted(REAL) + sorted(SYNTHETIC) + sorted(HUB_ONLY)


def kinds() -> dict[str, str]:
    """Every dataset name -> its kind (text, classification, kb)."""
    return {**{k: v[0] for k, v in REAL.items()}, **SYNTHETIC, **HUB_ONLY}


def dataset_kind(name: str) -> str:
    check_available(name)
    return kinds()[name]


def check_available(name: str) -> None:
    """Raise DatasetNotAvailable naming the valid names or the missing files; cheap, reads nothing."""
    if name in SYNTHETIC:
        return
    if name in HUB_ONLY:
        from lowres.models import online

        if online():
            return
        raise DatasetNotAvailable(f"dataset {name!r} is read from the Hugging Face hub; set LOWRES_ONLINE=1 "
                                  f"(needs internet). Offline choices: {', '.join(sorted(REAL) + sorted(SYNTHETIC))}")
    if name not in REAL:
        raise DatasetNotAvailable(f"unknown dataset {name!r}; valid: {', '.join(dataset_names())}")
    root = data_dir()
    if root is None:
        raise DatasetNotAvailable(f"dataset {name!r} needs LOWRES_DATA_DIR (a folder holding "
                                  f"{', '.join(REAL[name][1])}); offline default: synthetic datasets")
    missing = [f for f in REAL[name][1] if not (root / f).is_file()]
    if missing:
        raise DatasetNotAvailable(f"dataset {name!r}: missing {', '.join(missing)} under LOWRES_DATA_DIR={root}")


def subsample(rows: list, size: int | None, seed: int) -> list:
    """A seeded random subset (order kept stable); None or a size >= len keeps everything."""
    if size is None or size >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), size))
    return [rows[i] for i in keep]


def read_tsv(path: Path, encoding: str = "utf-8") -> list[dict]:
    with open(path, encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_csv_column(path: Path, column: str) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [row[column].strip() for row in csv.DictReader(fh) if (row.get(column) or "").strip()]


def load_vizwiz() -> TextCorpus:
    root = data_dir() / "vizwiz"
    return TextCorpus("vizwiz", read_csv_column(root / "skills_train.csv", "QSN"),
                      read_csv_column(root / "skills_val.csv", "QSN"))


def load_sst2() -> ClassificationCorpus:
    rows = {split: read_tsv(data_dir() / "sst2" / f"{split}.tsv") for split in ("train", "dev")}
    convert = lambda rs: [{"text": r["sentence"].strip(), "text_pair": None, "label": int(r["label"])} for r in rs]  # noqa: E731
    return ClassificationCorpus("sst2", convert(rows["train"]), convert(rows["dev"]))


def load_mrpc() -> ClassificationCorpus:
    rows = {split: read_tsv(data_dir() / "mrpc" / f"{split}.tsv", encoding="utf-8-sig") for split in ("train", "dev")}
    convert = lambda rs: [{"text": r["#1 String"], "text_pair": r["#2 String"], "label": int(r["Quality"])} for r in rs]  # noqa: E731
    return ClassificationCorpus("mrpc", convert(rows["train"]), convert(rows["dev"]),
                                label_names=("not_equivalent", "equivalent"), is_pair=True)


def load_squad() -> KnowledgeBase:
    root = data_dir() / "squad"
    passages = [json.loads(line) for line in (root / "dev-v1.1.passages.jsonl").read_text().splitlines() if line]
    passages = [{"passage_id": p["passage_id"], "title": p["title"], "text": p["context"]} for p in passages]
    with gzip.open(root / "dev-v1.1.questions.jsonl.gz", "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for line in fh if line.strip()]
    questions = [{"id": q["id"], "question": q["question"], "answers": [a["text"] for a in q["answers"]],
                  "answer_starts": [a["answer_start"] for a in q["answers"]], "gold_passage_id": q["passage_id"],
                  "context": q["context"]} for q in raw]
    return KnowledgeBase("squad", passages, questions)


def load_hub_classification(name: str) -> ClassificationCorpus:
    """Online path for GLUE/IMDB tasks through `datasets` (only with LOWRES_ONLINE=1)."""
    from datasets import load_dataset

    spec = {"rte": ("glue", "rte", "sentence1", "sentence2", "validation"),
            "mnli": ("glue", "mnli", "premise", "hypothesis", "validation_matched"),
            "qnli": ("glue", "qnli", "question", "sentence", "validation"),
            "imdb": ("imdb", None, "text", None, "test")}[name]
    ds = load_dataset(spec[0], spec[1])
    convert = lambda split: [{"text": r[spec[2]], "text_pair": r[spec[3]] if spec[3] else None,  # noqa: E731
                              "label": int(r["label"])} for r in ds[split]]
    labels = ds["train"].features["label"].names
    return ClassificationCorpus(name, convert("train"), convert(spec[4]), num_labels=len(labels),
                                label_names=tuple(labels), is_pair=spec[3] is not None)


def load_hub_summarization(name: str) -> Seq2SeqCorpus:
    """Online path for XSum / CNN-DailyMail / SAMSum through `datasets` (only with LOWRES_ONLINE=1)."""
    from datasets import load_dataset

    hub_id, config, document, summary, evaluation = HUB_SUMMARIZATION[name]
    ds = load_dataset(hub_id, config)
    convert = lambda split: [{"source": r[document], "target": r[summary], "references": [r[summary]]}  # noqa: E731
                             for r in ds[split]]
    return Seq2SeqCorpus(name, convert("train"), convert(evaluation))


def kb_as_generation(kb: KnowledgeBase, seed: int = 0) -> Seq2SeqCorpus:
    """A knowledge base's questions (SQuAD, synthetic-kb) as text to generate (GENERATIVE_QA_TEMPLATE), split by
    passage so no evaluated passage was seen in training; the first answer is the target, all are references."""
    passage_ids = sorted({q["gold_passage_id"] for q in kb.questions})
    random.Random(seed).shuffle(passage_ids)
    train_passages = set(passage_ids[:int(QA_TRAIN_SHARE * len(passage_ids))])
    rows = {True: [], False: []}
    for q in kb.questions:
        rows[q["gold_passage_id"] in train_passages].append(
            {"source": GENERATIVE_QA_TEMPLATE.format(question=q["question"], context=q["context"]),
             "target": q["answers"][0],
             "references": q["answers"], "question": q["question"], "context": q["context"]})
    return Seq2SeqCorpus(kb.name, rows[True], rows[False])


def seq2seq_task(name: str) -> str:
    """What a seq2seq corpus trains: generative QA on a knowledge base's questions, else summarization."""
    return "qa" if kinds().get(name) == "kb" else "summarization"


def seq2seq_dataset_names() -> list[str]:
    """Datasets with source/target pairs: the seq2seq kind, and the knowledge bases' questions as generative QA."""
    return [n for n, kind in kinds().items() if kind == "seq2seq"] + ["squad", "synthetic-kb"]


def load_seq2seq_corpus(name: str, train_size: int | None = None, val_size: int | None = None,
                        seed: int = 0) -> Seq2SeqCorpus:
    """A corpus to fine-tune a seq2seq model on: synthetic-summaries, squad or synthetic-kb (generative QA: its
    entities are drawn with another seed than the rag study's knowledge base, so a reader trained here meets new
    ones there) or a hub set."""
    if name not in seq2seq_dataset_names():
        raise DatasetNotAvailable(f"dataset {name!r} has no source/target pairs; valid: "
                                  f"{', '.join(seq2seq_dataset_names())}")
    check_available(name)
    if name == "synthetic-summaries":
        train, val = default_sizes(train_size, val_size)
        return Seq2SeqCorpus(name, synthetic.synthetic_summaries(train, seed),
                             synthetic.synthetic_summaries(val, seed + 10_000))
    if name == "synthetic-kb":  # two questions per entity: enough pairs for both splits
        passages, questions = synthetic.synthetic_kb(sum(default_sizes(train_size, val_size)), seed=seed + 20_000)
        corpus = kb_as_generation(KnowledgeBase(name, passages, questions), seed)
    else:
        corpus = kb_as_generation(load_squad(), seed) if name == "squad" else load_hub_summarization(name)
    corpus.train = subsample(corpus.train, train_size, seed)
    corpus.val = subsample(corpus.val, val_size, seed)
    return corpus


def default_sizes(train_size: int | None, val_size: int | None) -> tuple[int, int]:
    """Sizes of generated data: the ones asked for, else 2,000 train and 200 validation examples."""
    return (2000 if train_size is None else train_size), (200 if val_size is None else val_size)


def load_corpus(name: str, train_size: int | None = None, val_size: int | None = None, seed: int = 0):
    """Load a corpus by name; sizes take seeded subsets of real data and set the size of synthetic data."""
    check_available(name)
    train, val = default_sizes(train_size, val_size)
    if name == "synthetic-vizwiz":
        return TextCorpus(name, synthetic.synthetic_vizwiz(train, seed), synthetic.synthetic_vizwiz(val, seed + 10_000))
    if name == "synthetic-sentiment":
        return ClassificationCorpus(name, synthetic.synthetic_sentiment(train, seed),
                                    synthetic.synthetic_sentiment(val, seed + 10_000))
    if kinds()[name] == "seq2seq":
        return load_seq2seq_corpus(name, train_size, val_size, seed)
    if name == "synthetic-kb":  # train_size counts its passages (default 200), val_size its questions
        passages, questions = synthetic.synthetic_kb(200 if train_size is None else train_size, seed=seed)
        return KnowledgeBase(name, passages, subsample(questions, val_size, seed))
    loaders = {"vizwiz": load_vizwiz, "sst2": load_sst2, "mrpc": load_mrpc, "squad": load_squad}
    corpus = loaders[name]() if name in loaders else load_hub_classification(name)
    if isinstance(corpus, KnowledgeBase):
        corpus.questions = subsample(corpus.questions, val_size, seed)
        return corpus
    corpus.train = subsample(corpus.train, train_size, seed)
    corpus.val = subsample(corpus.val, val_size, seed)
    return corpus
