"""Masked-language-model domain adaptation (Maina et al. 2025): the LightningModule, its data and one fit.

```python
plan = parallel.plan("ddp", batch_size=64, processes=2)        # the precision study: steps.plan_for(params)
dm = MLMAdaptationDataModule(corpus, tokenizer, batch_size=plan.loader_batch_size, seed=seed)
module = MLMModule(models.load_model(name, "mlm"), lr=lr, head="masked")
record = fit_mlm(module, dm, plan, run.meter, precision="bf16-mixed", epochs=3, record_dir=run.dir)
record.history        # per epoch: val_mlm_accuracy, val_loss, val_perplexity, train_loss (exact over DDP ranks)
record.precision      # what really ran (lowres.parallel.precision_record)
```
Validation masks are drawn once, per example, with a fixed seed: every epoch, precision, strategy, batch size
and training seed is scored on the same masked positions.

`head="masked"` (default) runs the MLM head (hidden -> vocabulary logits) on the masked positions only: the loss is
the same cross-entropy over the same tokens, but the vocabulary projection, which dominates a small model's step
(tiny-bert: ~80% of its FLOPs), shrinks ~7x. `head="all"` is transformers' own forward (logits for every position),
the computation the paper measured.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import lightning as L
import torch
from torchmetrics.aggregation import MeanMetric

from lowres import parallel, train
from lowres.data.modules import CountingCollator, MLMDataModule, TokenizedDataset

VAL_MASK_SEED = 20250101  # fixed: training seeds vary the training, never the validation questions' masks
RECORD_FILE = "fit_record.json"
HEADS = ("masked", "all")
DISTILBERT_HEAD = ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector")  # applied in this order


def has_separable_head(model) -> bool:
    """True when the model's MLM head can be applied to hidden states on its own: BERT family (`cls`), RoBERTa
    family (`lm_head`), DistilBERT (its four head layers)."""
    return any(isinstance(getattr(model, name, None), torch.nn.Module) for name in ("cls", "lm_head")) or all(
        hasattr(model, name) for name in DISTILBERT_HEAD)


def apply_head(model, hidden):
    """Vocabulary logits of `hidden` through the model's own MLM head (same layers as its forward)."""
    for name in ("cls", "lm_head"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return getattr(model, name)(hidden)
    for name in DISTILBERT_HEAD:
        hidden = getattr(model, name)(hidden)
    return hidden


class MLMForward(torch.nn.Module):
    """One MLM step's computation -> (loss as a 1-element tensor, logits of the masked positions, their labels).

    A module, so torch.nn.DataParallel can scatter its inputs and gather its outputs (losses per GPU, masked
    logits concatenated). `head="masked"` encodes every token but projects only the masked ones to the vocabulary."""

    def __init__(self, model, head: str = "masked"):
        super().__init__()
        parallel.check_choice("mlm head", head, HEADS)
        if head == "masked" and not has_separable_head(model):
            raise ValueError(f"head='masked' needs an MLM head lowres can apply on its own (BERT, RoBERTa or "
                             f"DistilBERT families); {type(model).__name__} has none; valid for this model: head='all'")
        self.model, self.head = model, head

    def forward(self, input_ids, attention_mask, labels, **inputs):
        masked = labels != -100
        if self.head == "all":
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **inputs)
            return out.loss.reshape(1), out.logits[masked], labels[masked]
        encoder = getattr(self.model, self.model.base_model_prefix)
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        logits = apply_head(self.model, hidden[masked])
        target = labels[masked]
        # no masked token in this (small) batch: a zero loss that still reaches every parameter (DDP needs that)
        loss = torch.nn.functional.cross_entropy(logits, target) if len(target) else hidden.sum() * 0.0
        return loss.reshape(1), logits, target


class MLMModule(train.HFModule):
    """Masked LM with AdamW + linear warm-up/decay; validation masked-token accuracy, loss and perplexity per
    epoch, synced over DDP ranks by torchmetrics (token-weighted, so exact rather than a mean of rank means).
    `self.model` is the transformers model (what the optimizer sees); `self.net` computes the step (and is what
    DataParallel wraps)."""

    def __init__(self, model, lr: float = 5e-5, weight_decay: float = 0.01, warmup_ratio: float = 0.06,
                 head: str = "masked"):
        super().__init__(model, lr=lr, weight_decay=weight_decay, warmup_ratio=warmup_ratio)
        self.net = MLMForward(model, head)
        self.hparams["head"] = head
        self.val_accuracy, self.val_loss, self.train_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.history: list[dict] = []

    def _shared_step(self, batch, stage):
        losses, logits, target = self.net(**batch)
        loss = losses.mean()  # DataParallel returns one loss per GPU
        n_masked = len(target)
        if stage == "train":
            self.train_loss.update(loss.detach(), weight=max(n_masked, 1))
            self.log("train_loss", loss, prog_bar=True, batch_size=max(n_masked, 1))
            return loss
        if n_masked:
            self.val_accuracy.update((logits.argmax(-1) == target).float())
            self.val_loss.update(loss.detach(), weight=n_masked)
        return loss

    def on_validation_epoch_end(self):
        accuracy, loss = float(self.val_accuracy.compute()), float(self.val_loss.compute())
        self.val_accuracy.reset()
        self.val_loss.reset()
        if self.trainer.sanity_checking:
            return
        scores = {"val_mlm_accuracy": accuracy, "val_loss": loss, "val_perplexity": math.exp(min(loss, 50.0))}
        self.log_dict(scores, sync_dist=True)  # already global; sync only keeps Lightning's DDP check quiet
        self.history.append({"epoch": self.current_epoch, **scores})

    def on_train_epoch_end(self):
        loss = float(self.train_loss.compute())
        self.train_loss.reset()
        for row in self.history:
            if row["epoch"] == self.current_epoch:
                row["train_loss"] = loss


def premask(dataset: TokenizedDataset, tokenizer, mlm_probability: float,
            seed: int = VAL_MASK_SEED) -> TokenizedDataset:
    """Mask every example once with transformers' collator under a fixed seed (the global RNG is restored after)."""
    from transformers import DataCollatorForLanguageModeling

    if not len(dataset):
        return dataset
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        batch = collator([dict(e) for e in dataset.encodings])
    lengths = [len(e["input_ids"]) for e in dataset.encodings]  # right padding: the first `n` positions are real
    return TokenizedDataset([{"input_ids": batch["input_ids"][i, :n].tolist(), "attention_mask": [1] * n,
                              "labels": batch["labels"][i, :n].tolist()} for i, n in enumerate(lengths)])


class MLMAdaptationDataModule(MLMDataModule):
    """MLMDataModule for domain adaptation: fresh masks every training batch from the global RNG (seeded by
    `run.seed_everything`; transformers' `seed=` form refuses to run inside DDP worker processes), and fixed
    validation masks (`premask`) padded with labels = -100."""

    def build_sets(self) -> tuple:
        return self.encode(self.corpus.train), premask(self.encode(self.corpus.val), self.tokenizer,
                                                       self.mlm_probability)

    def masking_collator(self):
        from transformers import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(self.tokenizer, mlm_probability=self.mlm_probability)

    def val_dataloader(self):
        from torch.utils.data import DataLoader, SequentialSampler
        from transformers import DataCollatorForTokenClassification

        padded = DataCollatorForTokenClassification(self.tokenizer, **self.pad_kwargs())  # pads labels with -100
        return DataLoader(self.val_set, batch_size=self.eval_batch_size, sampler=SequentialSampler(self.val_set),
                          collate_fn=CountingCollator(padded, self.val_counter), num_workers=self.num_workers)


def majority_accuracy(datamodule: MLMAdaptationDataModule) -> float:
    """Masked-token accuracy of always predicting the validation masks' most frequent token: the score a model
    that learned only token frequencies (no context) reaches; adaptation must beat it."""
    from lowres.classification_metrics import majority_share

    return majority_share(t for e in datamodule.val_set.encodings for t in e["labels"] if t != -100)


def step_flops(module: MLMModule, datamodule: MLMAdaptationDataModule, per_device_batch: int,
               sample_size: int = 8) -> float | None:
    """FLOPs of one training step (forward + backward of `module.net`) on one device, counted by torch on a real
    batch of `sample_size` examples and scaled to the batch (linear in batch at fixed length). Only with
    padding='max_length': with dynamic padding the step shape varies and an MFU would be a guess. With
    head='masked' the head's share follows the sample's masked count (15% on average): an estimate."""
    from lowres.meters.flops import training_step_flops

    if datamodule.padding != "max_length":
        return None
    size = min(sample_size, per_device_batch, len(datamodule.train_set))
    with torch.random.fork_rng(devices=[]):  # masking draws from the global RNG: leave the run's stream as it was
        torch.manual_seed(VAL_MASK_SEED)
        batch = datamodule.make_collator(None)([datamodule.train_set[i] for i in range(size)])
    flops = training_step_flops(module.net, dict(batch), loss_fn=lambda net, b: net(**b)[0].sum())
    return float(flops) * per_device_batch / size


@dataclasses.dataclass
class FitRecord:
    history: list  # one dict per epoch
    precision: dict  # parallel.precision_record
    parallel: dict  # ParallelPlan.to_dict()
    trainer: L.Trainer

    def final(self) -> dict:
        return dict(self.history[-1]) if self.history else {}

    def metrics(self) -> dict:
        """What result.json keeps: final scores, per-epoch scores keyed by epoch, and how the run really ran."""
        per_epoch = {str(row["epoch"]): {k: v for k, v in row.items() if k != "epoch"} for row in self.history}
        final = {k: v for k, v in self.final().items() if k != "epoch"}
        return {**final, "epochs": per_epoch, "precision": self.precision, "parallel": self.parallel}


def fit_mlm(module: MLMModule, datamodule: MLMAdaptationDataModule, parallel_plan: parallel.ParallelPlan, meter,
            precision: str = "32-true", epochs: int = 1, max_steps: int = -1, record_dir: str | Path = ".",
            flops_per_step: float | None = None, callbacks=(), **trainer_kwargs) -> FitRecord:
    """Fit under the Meter (windows `train`, `train_epoch_<n>`, `validate_epoch_<n>`; under DDP gathered from every
    rank), with the plan's strategy; `callbacks` are added after lowres's own. An out-of-memory error propagates as
    torch.OutOfMemoryError naming the batch."""
    from lowres.meters.callback import MeterCallback

    parallel.wrap_data_parallel(module, parallel_plan)
    record_path = Path(record_dir) / RECORD_FILE
    record_path.unlink(missing_ok=True)  # a previous fit's record must never pass for this one's
    export = parallel.RankZeroExport(meter, record_path)
    callbacks = [parallel.TorchThreads(parallel_plan.torch_threads),
                 MeterCallback(meter, datamodule.train_counter, val_token_counter=datamodule.val_counter,
                               flops_per_step=flops_per_step), export, *callbacks]
    trainer = train.make_trainer(precision, max_epochs=epochs, max_steps=max_steps, callbacks=callbacks,
                                 accelerator=parallel_plan.accelerator, devices=parallel_plan.lightning_devices,
                                 strategy=parallel_plan.lightning_strategy, num_sanity_val_steps=0, **trainer_kwargs)
    with parallel.oom_as_finding(parallel_plan):
        trainer.fit(module, datamodule=datamodule)
    record = export.collect()
    return FitRecord(record["history"], parallel.precision_record(trainer, precision, parallel_plan.accelerator),
                     parallel_plan.to_dict(), trainer)
