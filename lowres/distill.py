"""A short distillation of a layer-dropped student (minilm-half) towards its teacher (minilm) on unlabeled text.

DistilBERT's student, initialised from one teacher layer in two, was then trained to match its teacher (soft MLM
targets + a cosine loss on hidden states). MiniLM ships without an MLM head, so here the student matches the
teacher's last hidden states (MSE over real tokens) and their mean-pooled sentence embeddings (cosine), on the
sentences of one of our corpora with the labels thrown away. Optional (distil_vs_bert's `distill_steps`, 0 = off):
the undistilled minilm-half is the pure "one layer in two" initialisation.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import lightning as L
import torch

from lowres.paths import cache_dir

DISTILL_VERSION = "v1"  # bump when the loss or the recipe changes so caches rebuild


def unlabeled_texts(dataset: str, count: int, seed: int) -> list[str]:
    """Up to `count` training sentences of a corpus, labels dropped (a pair gives both of its sentences)."""
    from lowres import data

    corpus = data.load_corpus(dataset, train_size=count, val_size=1, seed=seed)
    texts = [part for row in corpus.train for part in (row["text"], row.get("text_pair")) if part]
    return texts[:count]


def mean_pooled(states, mask):
    """Sentence embeddings as all-MiniLM-L6-v2 pools them: the mean of the real tokens' states."""
    return (states * mask).sum(1) / mask.sum(1)


class DistillModule(L.LightningModule):
    """The student learns the frozen teacher's token states (MSE) and sentence embeddings (1 - cosine)."""

    def __init__(self, student, teacher, lr: float = 1e-4):
        super().__init__()
        self.student, self.teacher, self.lr = student.train(), teacher.eval().requires_grad_(False), lr

    def training_step(self, batch, batch_idx):
        mask = batch["attention_mask"].unsqueeze(-1).to(torch.float32)
        with torch.no_grad():
            target = self.teacher(**batch).last_hidden_state
        states = self.student(**batch).last_hidden_state
        state_loss = ((states - target) ** 2 * mask).sum() / (mask.sum() * states.shape[-1])
        pooled = torch.nn.functional.cosine_similarity(mean_pooled(states, mask), mean_pooled(target, mask))
        cosine_loss = 1 - pooled.mean()
        loss = state_loss + cosine_loss
        self.log("distill_loss", loss, batch_size=batch["input_ids"].shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.student.parameters(), lr=self.lr)


def recipe(student: str, teacher: str, dataset: str, steps: int, batch_size: int, max_length: int, lr: float,
           seed: int) -> dict:
    return {"student": student, "teacher": teacher, "dataset": dataset, "steps": steps, "batch_size": batch_size,
            "max_length": max_length, "lr": lr, "seed": seed, "version": DISTILL_VERSION}


def distilled_dir(**recipe_fields) -> Path:
    digest = hashlib.sha256(json.dumps(recipe_fields, sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir() / "models" / f"{recipe_fields['student']}-distilled-{digest}"


def distill(student: str = "minilm-half", teacher: str = "minilm", dataset: str = "sst2", steps: int = 200,
            batch_size: int = 32, max_length: int = 64, lr: float = 1e-4, seed: int = 0) -> Path:
    """Distil `student` towards `teacher` for `steps` batches of `dataset`'s training text; the saved student's
    directory (cached per recipe, with its tokenizer and `lowres_distillation.json` recording the recipe, the
    number of sentences and the last step's loss)."""
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    from lowres import models, train

    fields = recipe(student, teacher, dataset, steps, batch_size, max_length, lr, seed)
    target = distilled_dir(**fields)
    if (target / "config.json").is_file():
        return target
    L.seed_everything(seed, verbose=False)
    tokenizer = models.load_tokenizer(student)
    texts = unlabeled_texts(dataset, steps * batch_size, seed)
    features = [tokenizer(text, truncation=True, max_length=max_length) for text in texts]
    loader = DataLoader(features, batch_size=batch_size, shuffle=True, collate_fn=DataCollatorWithPadding(tokenizer))
    module = DistillModule(models.load_model(student, "base"), models.load_model(teacher, "base"), lr=lr)
    trainer = train.make_trainer(max_epochs=-1, max_steps=steps, limit_val_batches=0)
    with warnings.catch_warnings():  # the frozen teacher is in eval mode on purpose
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        trainer.fit(module, train_dataloaders=loader)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    module.student.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    record = {**fields, "texts": len(texts), "final_loss": float(trainer.callback_metrics["distill_loss"])}
    (tmp / "lowres_distillation.json").write_text(json.dumps(record, indent=1))
    return models.publish_built(tmp, target)
