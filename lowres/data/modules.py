"""Lightning DataModules: tokenization in `setup`, dynamic padding by transformers' collators, optional
length-grouped batching, and counts of real and padded tokens per epoch (energy scales with tokens
processed, padding included)."""
from __future__ import annotations

import dataclasses

import lightning as L
import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

PADDING_MODES = ("dynamic", "length-grouped", "max_length")


@dataclasses.dataclass
class TokenCounter:
    """What the collator saw since the last reset: the MeterCallback reads it per window."""

    samples: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0

    def add(self, batch) -> None:
        mask = batch["attention_mask"]
        self.samples += int(mask.shape[0])
        self.real_tokens += int(mask.sum())
        self.padded_tokens += int(mask.numel())
        self.batches += 1

    def reset(self) -> None:
        self.samples = self.real_tokens = self.padded_tokens = self.batches = 0

    def snapshot(self) -> dict:
        return dataclasses.asdict(self)


class CountingCollator:
    """Wraps a transformers collator and counts the tokens of every batch it builds."""

    def __init__(self, inner, counter: TokenCounter | None):
        self.inner, self.counter = inner, counter

    def __call__(self, features):
        batch = self.inner(features)
        if self.counter is not None:
            self.counter.add(batch)
        return batch


class TokenizedDataset(torch.utils.data.Dataset):
    def __init__(self, encodings: list[dict]):
        self.encodings = encodings

    def __len__(self):
        return len(self.encodings)

    def __getitem__(self, i):
        return self.encodings[i]

    def lengths(self) -> list[int]:
        return [len(e["input_ids"]) for e in self.encodings]


def check_padding(padding: str) -> None:
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding!r}; valid: {', '.join(PADDING_MODES)}")


class TokenDataModule(L.LightningDataModule):
    """Shared machinery: samplers per padding mode, counting collators, eval loader."""

    def __init__(self, tokenizer, batch_size: int = 16, max_length: int = 128, padding: str = "dynamic",
                 eval_batch_size: int | None = None, seed: int = 0, num_workers: int = 0):
        super().__init__()
        check_padding(padding)
        self.tokenizer, self.batch_size, self.max_length, self.padding = tokenizer, batch_size, max_length, padding
        self.eval_batch_size, self.seed, self.num_workers = eval_batch_size or batch_size, seed, num_workers
        self.train_counter, self.val_counter = TokenCounter(), TokenCounter()
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None):
        """Tokenize once (Lightning calls setup on every fit/validate; the sets are kept)."""
        if self.train_set is None:
            self.train_set, self.val_set = self.build_sets()

    def build_sets(self) -> tuple:
        """(train set, val set): the corpus's splits through the subclass's `encode`."""
        return self.encode(self.corpus.train), self.encode(self.corpus.val)

    def make_collator(self, counter):
        """Dynamic (or max_length) padding by transformers' collator, counting tokens; MLM modules mask too."""
        from transformers import DataCollatorWithPadding

        return CountingCollator(DataCollatorWithPadding(self.tokenizer, **self.pad_kwargs()), counter)

    def pad_kwargs(self) -> dict:
        if self.padding == "max_length":
            return {"padding": "max_length", "max_length": self.max_length}
        return {"padding": "longest"}

    def train_sampler(self):
        generator = torch.Generator().manual_seed(self.seed)
        if self.padding == "length-grouped":
            from transformers.trainer_pt_utils import LengthGroupedSampler

            return LengthGroupedSampler(self.batch_size, lengths=self.train_set.lengths(), generator=generator)
        return RandomSampler(self.train_set, generator=generator)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=self.train_sampler(),
                          collate_fn=self.make_collator(self.train_counter), num_workers=self.num_workers)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.eval_batch_size, sampler=SequentialSampler(self.val_set),
                          collate_fn=self.make_collator(self.val_counter), num_workers=self.num_workers)

    def epoch_token_counts(self, split: str = "train") -> dict:
        """Real and padded tokens of one pass over a split, by iterating its loader once (no model)."""
        counter = type(self.train_counter)()
        dataset = self.train_set if split == "train" else self.val_set
        sampler = self.train_sampler() if split == "train" else SequentialSampler(dataset)
        size = self.batch_size if split == "train" else self.eval_batch_size
        for _ in DataLoader(dataset, batch_size=size, sampler=sampler, collate_fn=self.make_collator(counter)):
            pass
        return counter.snapshot()


class ClassificationDataModule(TokenDataModule):
    """Single sentences or sentence pairs -> input_ids/attention_mask/labels, padded per batch."""

    def __init__(self, corpus, tokenizer, **kwargs):
        super().__init__(tokenizer, **kwargs)
        self.corpus = corpus

    def encode(self, rows: list[dict]) -> TokenizedDataset:
        texts = [r["text"] for r in rows]
        pairs = [r["text_pair"] for r in rows] if rows and rows[0].get("text_pair") is not None else None
        enc = self.tokenizer(texts, pairs, truncation=True, max_length=self.max_length)
        return TokenizedDataset([{"input_ids": ids, "attention_mask": mask, "labels": r["label"]}
                                 for ids, mask, r in zip(enc["input_ids"], enc["attention_mask"], rows)])


class MLMDataModule(TokenDataModule):
    """Text -> masked-LM batches (15% masking by transformers' DataCollatorForLanguageModeling)."""

    def __init__(self, corpus, tokenizer, mlm_probability: float = 0.15, **kwargs):
        super().__init__(tokenizer, **kwargs)
        self.corpus, self.mlm_probability = corpus, mlm_probability

    def encode(self, texts: list[str]) -> TokenizedDataset:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_special_tokens_mask=True)
        keys = ("input_ids", "attention_mask", "special_tokens_mask")
        return TokenizedDataset([dict(zip(keys, values)) for values in zip(*(enc[k] for k in keys))])

    def masking_collator(self):
        """transformers' MLM collator with this module's seed (DDP workers refuse its `seed=`: see
        lowres.mlm.MLMAdaptationDataModule, which masks from the global RNG instead)."""
        from transformers import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(self.tokenizer, mlm_probability=self.mlm_probability, seed=self.seed)

    def make_collator(self, counter):
        inner = self.masking_collator()
        if self.padding == "max_length":
            inner = MaxLengthMLMCollator(inner, self.tokenizer, self.max_length)
        return CountingCollator(inner, counter)


class MaxLengthMLMCollator:
    """Pads every example to max_length before masking (the paper-style fixed-length baseline)."""

    def __init__(self, inner, tokenizer, max_length: int):
        self.inner, self.tokenizer, self.max_length = inner, tokenizer, max_length

    def __call__(self, features):
        padded = self.tokenizer.pad(features, padding="max_length", max_length=self.max_length)
        rows = [{k: padded[k][i] for k in padded} for i in range(len(features))]
        return self.inner(rows)


class Seq2SeqCounter(TokenCounter):
    """Encoder and decoder tokens: a seq2seq step processes both (labels are padded with -100)."""

    def add(self, batch) -> None:
        super().add(batch)
        labels = batch["labels"]
        self.real_tokens += int((labels != -100).sum())
        self.padded_tokens += int(labels.numel())


class Seq2SeqDataModule(TokenDataModule):
    """{"source", "target"} rows -> input_ids/attention_mask/labels, padded per batch by transformers'
    DataCollatorForSeq2Seq (labels padded with -100; the model shifts them into decoder inputs itself)."""

    def __init__(self, corpus, tokenizer, max_target_length: int = 64, **kwargs):
        super().__init__(tokenizer, **kwargs)
        self.corpus, self.max_target_length = corpus, max_target_length
        self.train_counter, self.val_counter = Seq2SeqCounter(), Seq2SeqCounter()

    def encode(self, rows: list[dict]) -> TokenizedDataset:
        enc = self.tokenizer([r["source"] for r in rows], truncation=True, max_length=self.max_length)
        targets = self.tokenizer(text_target=[r["target"] for r in rows], truncation=True,
                                 max_length=self.max_target_length)["input_ids"]
        return TokenizedDataset([{"input_ids": ids, "attention_mask": mask, "labels": labels}
                                 for ids, mask, labels in zip(enc["input_ids"], enc["attention_mask"], targets)])

    def make_collator(self, counter):
        from transformers import DataCollatorForSeq2Seq

        return CountingCollator(DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=-100, **self.pad_kwargs()),
                                counter)


def fill_counts(measurement, counter: TokenCounter) -> None:
    """Copy a collator's counts into a Meter window's Measurement."""
    measurement.steps = counter.batches
    measurement.samples = counter.samples
    measurement.tokens = counter.real_tokens
    measurement.padded_tokens = counter.padded_tokens


def classification_datamodule(params) -> ClassificationDataModule:
    """The set-up DataModule of a study that fine-tunes a classifier (lowres.config.ClassificationTrainParams plus
    max_length; batch_size auto starts at 1 until lowres.batch_fit.resolve sets it): its corpus (`.corpus`) and the model's tokenizer (`.tokenizer`)."""
    from lowres import models
    from lowres.data.corpora import load_corpus

    corpus = load_corpus(params.dataset, train_size=params.train_size, val_size=params.val_size, seed=params.seed)
    batch_size = 1 if params.batch_size == "auto" else params.batch_size  # auto: settled by lowres.batch_fit
    datamodule = ClassificationDataModule(corpus, models.load_tokenizer(params.model), batch_size=batch_size,
                                          max_length=params.max_length, seed=params.seed)
    datamodule.setup()
    return datamodule
